//! One client connection: decode requests, route them, write replies in request order.
//!
//! Everything the client sent in one read is decoded and routed at once, then the replies are
//! awaited in order and written in one go. Single-shard commands are gathered into one batch
//! per shard ([`crate::batch`]) and sent when the read is routed, so a pipeline fans out to
//! the shards in parallel at one channel hop per shard; anything else that goes to shards
//! sends the open batches first, so a client's requests to a shard keep their order. At most
//! `max_pipeline` requests are in flight per client, and replies waiting to be written are
//! bounded by `client_output_buffer_limit`.

use crate::batch::Batches;
use crate::cluster;
use crate::proxy::{Listener, Proxy};
use crate::router::{self, Pending, ReplicaRead, Target};
use bytes::{Bytes, BytesMut};
use fjord_common::client::{self, ClientState, Handled};
use fjord_common::command::{resolve, Resolved, Route};
use fjord_common::metrics::{CommandLabel, ResultKind};
use fjord_common::slotset::SlotSet;
use fjord_common::{error, info, process, CommandId, Proto, Reply, RequestDecoder};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Initial size of a client's read and write buffers. 4 KiB halves an idle client's memory
/// (about 40 KiB each with 16 KiB) but cost 10-15% of pipelined throughput when measured.
const IDLE_BUFFER: usize = 16 * 1024;

/// Accepts clients on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    kind: Listener,
    proxy: Arc<Proxy>,
    shutdown: watch::Receiver<bool>,
) {
    process::accept_loop(listener, shutdown, |stream, addr| {
        let _ = stream.set_nodelay(true);
        let laddr = stream.local_addr().unwrap_or(addr);
        let proxy = Arc::clone(&proxy);
        // The stream is generic below, so a TLS stream can take its place later.
        tokio::spawn(async move {
            if let Err(e) = handle(stream, addr, laddr, kind, &proxy).await {
                tracing::debug!(error = %e, %addr, "client connection ended with an error");
            }
        });
    })
    .await
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: SocketAddr,
    laddr: SocketAddr,
    kind: Listener,
    proxy: &Arc<Proxy>,
) -> std::io::Result<()> {
    let traffic = &proxy.metrics.traffic;
    if proxy.clients.len() >= proxy.settings.max_clients {
        traffic.rejected.inc();
        let mut out = BytesMut::new();
        Reply::error("ERR max number of clients reached").encode(Default::default(), &mut out);
        stream.write_all(&out).await?;
        return Ok(());
    }
    traffic.accepted.inc();
    let info = proxy.clients.register(addr, laddr);
    let id = info.id;
    let state = ClientState::new(&**proxy, info, kind != Listener::Standalone);
    let mut session = Session {
        proxy: Arc::clone(proxy),
        kind,
        state,
        batches: Batches::default(),
    };
    let result = session.run(&mut stream).await;
    proxy.clients.unregister(id);
    result
}

struct Session {
    proxy: Arc<Proxy>,
    kind: Listener,
    state: ClientState,
    batches: Batches,
}

/// A reply to come, with what its metrics need.
struct Queued {
    reply: Pending,
    label: CommandLabel,
    /// The protocol the reply is encoded in: the client's once the command has run (HELLO
    /// answers in the protocol it switches to, as in Redis).
    proto: Proto,
    /// When the request was read: its latency is counted from there to its reply.
    read_at: Instant,
    /// A batched command and its shard, kept to be sent on if the shard refuses it as not the
    /// slot's owner ([`Target::follow`]).
    resend: Option<Resend>,
}

/// What sends a batched command on to another shard.
struct Resend {
    shard: usize,
    args: Vec<Bytes>,
    /// The protocol the client spoke when it sent the command.
    proto: Proto,
}

/// What routing one request gave.
struct Routed {
    reply: Pending,
    label: CommandLabel,
    resend: Option<Resend>,
    /// The connection closes after this reply (QUIT).
    close: bool,
}

impl Routed {
    fn reply(reply: impl Into<Pending>, label: CommandLabel) -> Self {
        Routed {
            reply: reply.into(),
            label,
            resend: None,
            close: false,
        }
    }
}

impl Session {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<()> {
        let proxy = Arc::clone(&self.proxy);
        let mut decoder = RequestDecoder::new(proxy.settings.limits());
        let mut share = proxy.budget.share();
        // Buffers grow with what a client sends and receives, and shrink back after a burst.
        let mut buf = BytesMut::with_capacity(IDLE_BUFFER);
        let mut out = BytesMut::with_capacity(IDLE_BUFFER);
        let mut pending: VecDeque<Queued> = VecDeque::new();
        let traffic = &proxy.metrics.traffic;
        loop {
            decoder.reserve_for_read(&mut buf, IDLE_BUFFER);
            let n = stream.read_buf(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            let read_at = Instant::now();
            traffic.bytes_in.inc_by(n as u64);
            let unknown = |reply: Reply, proto: Proto| Queued {
                reply: reply.into(),
                label: CommandLabel::UNKNOWN,
                proto,
                read_at,
                resend: None,
            };
            // One snapshot per batch: every request of the batch routes by the same topology.
            let target = Target::new(&self.proxy.topology, &self.proxy.metrics);
            let mut close = false;
            loop {
                let args = match decoder.decode(&mut buf) {
                    Ok(Some(args)) => args,
                    Ok(None) => break,
                    Err(e) => {
                        pending.push_back(unknown(e.to_reply(), self.state.proto));
                        close = true;
                        break;
                    }
                };
                traffic.commands.inc();
                let routed = self.dispatch(&target, args).await;
                pending.push_back(Queued {
                    reply: routed.reply,
                    label: routed.label,
                    proto: self.state.proto,
                    read_at,
                    resend: routed.resend,
                });
                if routed.close {
                    close = true;
                    break;
                }
                if pending.len() >= proxy.settings.max_pipeline {
                    // Enough in flight: answer these before taking more from this client.
                    if !self.flush(stream, &mut pending, &mut out, &target).await? {
                        return Ok(());
                    }
                }
            }
            if !share.update(buf.len() + decoder.held_bytes()) {
                let closing = Reply::error(
                    "ERR client buffers exceed the proxy's limit (client_query_buffer_limit \
                     or client_memory_budget); closing",
                );
                pending.push_back(unknown(closing, self.state.proto));
                close = true;
            }
            if !self.flush(stream, &mut pending, &mut out, &target).await? || close {
                return Ok(());
            }
        }
    }

    /// Sends the open batches, awaits every pending reply in order and writes them; false if
    /// the client must go (its replies outgrew the output buffer limit).
    async fn flush<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        pending: &mut VecDeque<Queued>,
        out: &mut BytesMut,
        target: &Target,
    ) -> std::io::Result<bool> {
        self.batches.send(target).await;
        let limit = self.proxy.settings.client_output_buffer_limit;
        let metrics = Arc::clone(&self.proxy.metrics);
        while let Some(q) = pending.pop_front() {
            let reply = match q.reply {
                Pending::Batched(id) => {
                    let reply = self.batches.next(id).await;
                    match &q.resend {
                        Some(r) => target.follow(r.shard, &r.args, reply, r.proto).await,
                        None => reply,
                    }
                }
                Pending::FromReplica(read) => {
                    // A replica that does not answer within the lag bound (stopped, or
                    // overloaded) is no better than one that lags: the primary answers.
                    let within = self.replica_wait();
                    let reply = self.batches.next_within(read.batch, Some(within)).await;
                    read.or_primary(reply, target).await
                }
                other => other.resolve().await,
            };
            if metrics.commands.record(q.label, &reply, q.read_at) == ResultKind::ClusterDown {
                metrics.clusterdown_replies.inc();
            }
            reply.encode(q.proto, out);
            if out.len() > limit {
                tracing::warn!(
                    client = self.state.info.id,
                    bytes = out.len(),
                    "closing a client whose replies exceed client_output_buffer_limit"
                );
                pending.clear();
                self.batches.clear();
                return Ok(false);
            }
        }
        self.batches.clear();
        if !out.is_empty() {
            metrics.traffic.bytes_out.inc_by(out.len() as u64);
            stream.write_all(out).await?;
            out.clear();
            if out.capacity() > 1024 * 1024 {
                *out = BytesMut::with_capacity(IDLE_BUFFER);
            }
        }
        Ok(true)
    }

    /// Routes one request.
    async fn dispatch(&mut self, target: &Target, args: Vec<Bytes>) -> Routed {
        let unknown = CommandLabel::UNKNOWN;
        let r = match resolve(&args) {
            // Shard-internal commands do not exist for clients.
            Ok(r) if r.spec.route == Route::Internal => {
                let e = error::unknown_command(&args[0], &args[1..]);
                return Routed::reply(Reply::error(e), unknown);
            }
            Ok(r) => r,
            Err(e) => return Routed::reply(Reply::error(e), CommandLabel::of_request(&args)),
        };
        let label = CommandLabel::of(r.spec);
        self.state.info.touch(r);
        if let Some(refusal) = client::refuse(&self.state, &r) {
            return Routed::reply(refusal, label);
        }
        let proto = self.state.proto;
        let handled = client::execute(&*self.proxy, &mut self.state, r, &args);
        if self.state.proto != proto {
            // The batches open are for the old protocol; what follows opens new ones (on
            // the same connections, so the order holds).
            self.batches.send(target).await;
        }
        match handled {
            Some(Handled::Reply(reply)) => {
                // Redis's encoding tunables set here are set on the shards too, whose
                // encoding follows them (HyperLogLog's `hll-sparse-max-bytes`).
                let tunables = client::tunables_set(r, &args);
                if reply == Reply::ok() && !tunables.is_empty() {
                    self.batches.send(target).await;
                    let pending = router::config_set_on_shards(target, tunables).await;
                    return Routed::reply(pending, label);
                }
                return Routed::reply(reply, label);
            }
            Some(Handled::Close(reply)) => {
                return Routed {
                    close: true,
                    ..Routed::reply(reply, label)
                }
            }
            None => {}
        }
        // Whatever else reaches a shard sends the open batches first, so that it cannot
        // overtake this client's batched commands.
        let proto = self.state.proto;
        let mut resend = None;
        let pending = match r.effective().route {
            Route::Sort if crate::sort::resolved_here(r, &args) => {
                self.batches.send(target).await;
                crate::sort::sort(target, r, args).await
            }
            Route::Gather
                if matches!(self.kind, Listener::Standalone)
                    && router::common_slot(r.effective(), &args).is_err() =>
            {
                self.batches.send(target).await;
                crate::gather::gather(target, r, args)
            }
            Route::SingleSlot | Route::Sort | Route::Gather => {
                match router::single_slot(target, r, &args) {
                    Ok(shard) => match self.replica_for(target, r, shard) {
                        Some(dest) => Pending::FromReplica(Box::new(ReplicaRead {
                            batch: self.batches.push(target, dest, &args, proto),
                            dest,
                            shard,
                            args,
                            proto,
                        })),
                        None => {
                            let id = self.batches.push(target, shard, &args, proto);
                            resend = Some(Resend { shard, args, proto });
                            Pending::Batched(id)
                        }
                    },
                    Err(e) => e.into(),
                }
            }
            Route::Split(merge) => {
                self.batches.send(target).await;
                let metrics = &self.proxy.metrics;
                let replicas = self.reads_replicas(r).then(|| router::FromReplicas {
                    spread: self.state.info.id,
                    wait: self.replica_wait(),
                });
                router::split(target, r, merge, args, replicas, |keys, shards| {
                    metrics.record_split(label, keys, shards)
                })
                .await
            }
            Route::NodeScoped => {
                self.batches.send(target).await;
                router::node_scoped(target, r, &args, self.scope(target)).await
            }
            Route::Local => {
                self.batches.send(target).await;
                self.local(target, r, &args).await
            }
            Route::Unsupported | Route::Internal => {
                Reply::error(error::unknown_command(&args[0], &args[1..])).into()
            }
        };
        Routed {
            resend,
            ..Routed::reply(pending, label)
        }
    }

    /// The replica that serves this read, if it goes to one: a READONLY connection on a
    /// replica listener reading a key of `shard`, which has a replica fit to serve it.
    fn replica_for(&self, target: &Target, r: Resolved, shard: usize) -> Option<usize> {
        match self.reads_replicas(r) {
            true => target.routing.replica_for(shard, self.state.info.id),
            false => None,
        }
    }

    /// How long a read waits for a replica before the primary answers it.
    fn replica_wait(&self) -> Duration {
        Duration::from_millis(self.proxy.settings.replica_max_lag_ms)
    }

    /// Whether this command may be read from replicas: a read on a READONLY connection of
    /// a replica listener.
    fn reads_replicas(&self, r: Resolved) -> bool {
        let spec = r.effective();
        let read = spec.has_flag(fjord_common::command::flags::READONLY) && !spec.is_write();
        matches!(self.kind, Listener::Replica(_)) && self.state.readonly && read
    }

    /// The slots node-scoped commands cover for this client.
    fn scope(&self, target: &Target) -> SlotSet {
        match self.kind {
            Listener::Cluster(i) | Listener::Replica(i) => {
                target.routing.topology.nodes[i].slots.clone()
            }
            Listener::Standalone => SlotSet::all(),
        }
    }

    /// Keyless commands the proxy answers itself (some with figures from the shards).
    async fn local(&self, target: &Target, r: Resolved, args: &[Bytes]) -> Pending {
        match r.spec.id {
            CommandId::Cluster => cluster::cluster(target, self.kind, r, args).await,
            CommandId::Lastsave => router::lastsave(target).await,
            CommandId::Info => {
                let wanted = info::Sections::parse(&args[1..]);
                let proxy = Arc::clone(&self.proxy);
                let kind = self.kind;
                let keys = match wanted.wants("keyspace") {
                    true => Some(router::count_keys(target, &self.scope(target)).await),
                    false => None,
                };
                let totals = match wanted.wants("persistence") || wanted.wants("stats") {
                    true => Some(router::shard_info_totals(target).await),
                    false => None,
                };
                Pending::Later(Box::pin(async move {
                    let keys = match keys {
                        Some(count) => match count.await {
                            Ok(n) => Some(n),
                            Err(e) => return e,
                        },
                        None => None,
                    };
                    let totals = match totals {
                        Some(totals) => totals.await,
                        None => Vec::new(),
                    };
                    Reply::Verbatim(proxy.info_text(&wanted, kind, keys, &totals).into())
                }))
            }
            other => Reply::error(format!("ERR {other:?} has no handler in the proxy")).into(),
        }
    }
}
