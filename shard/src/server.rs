//! Connections: accept, decode requests, execute in order, write replies.
//!
//! A connection task reads what the socket has, decodes every complete request, and executes
//! them in order. Writes are gathered and go to the writer together, and are not awaited one
//! by one: a pipeline of SETs is one request to the writer and lands in one group commit.
//! Before a command that reads, the task sends and waits for its own earlier writes, so a
//! client always reads its own writes. Replies leave in request order, in one
//! socket write per batch of requests.

use crate::cmd::{self, Ctx, Outcome};
use crate::config::ShardConfig;
use crate::metrics::ShardMetrics;
use crate::repl::LinkRequest;
use crate::repl::Replication;
use crate::store::writer::{Inline, PendingReplies, PendingReply, WriteOp, Writer};
use crate::store::Store;
use bytes::BytesMut;
use fjord_common::admin::Observed;
use fjord_common::budget::{Budget, Share};
use fjord_common::client::{ClientRegistry, ClientState, Host};
use fjord_common::command::resolve;
use fjord_common::metrics::CommandLabel;
use fjord_common::{info, process};
use fjord_common::{Proto, Reply, RequestDecoder};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Process-wide state shared by all connections.
pub struct Server {
    pub store: Arc<Store>,
    pub writer: Writer,
    pub config: ShardConfig,
    pub clients: ClientRegistry,
    pub cursors: CursorTable,
    pub metrics: ShardMetrics,
    pub started: Instant,
    pub run_id: String,
    pub local_addr: SocketAddr,
    /// Whom this shard follows and who follows it ([`crate::repl`]).
    pub repl: Arc<Replication>,
    /// Slots this shard pulls from another ([`crate::migrate`]).
    pub imports: Arc<crate::migrate::Imports>,
    /// Bytes buffered by all clients in half-received requests.
    buffered: Budget,
    /// Woken by SHUTDOWN ([`Server::shutdown_requested`]).
    shutdown: tokio::sync::Notify,
    /// Whether the stop flushes the memtables (SHUTDOWN NOSAVE clears it).
    save_on_shutdown: std::sync::atomic::AtomicBool,
}

impl Server {
    pub fn new(
        store: Arc<Store>,
        writer: Writer,
        repl: Arc<Replication>,
        config: ShardConfig,
        local_addr: SocketAddr,
    ) -> Self {
        let metrics = ShardMetrics::new(&store, config.record_metrics);
        repl.stats.register(&metrics.registry);
        let imports = Arc::new(crate::migrate::Imports::default());
        imports.stats.register(&metrics.registry);
        repl.ack_stats.register(&metrics.registry);
        Self {
            metrics,
            repl,
            store,
            writer,
            buffered: Budget::new(
                config.client_query_buffer_limit,
                config.client_memory_budget,
            ),
            config,
            clients: ClientRegistry::default(),
            cursors: CursorTable::default(),
            started: Instant::now(),
            run_id: process::new_run_id(),
            imports,
            local_addr,
            shutdown: tokio::sync::Notify::new(),
            save_on_shutdown: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Asks the shard to stop, as SIGTERM does.
    pub fn request_shutdown(&self, save: bool) {
        self.save_on_shutdown.store(save, Ordering::Relaxed);
        self.shutdown.notify_one();
    }

    /// Returns once SHUTDOWN has asked the shard to stop.
    pub async fn shutdown_requested(&self) {
        self.shutdown.notified().await
    }

    /// Whether the stop flushes the memtables.
    pub fn save_on_shutdown(&self) -> bool {
        self.save_on_shutdown.load(Ordering::Relaxed)
    }

    /// The INFO text for the requested sections (default sections when none).
    pub fn info_text(&self, wanted: &info::Sections) -> String {
        let want = |s: &str| wanted.wants(s);
        let store = &self.store;
        let ss = &store.stats;
        let mut out = String::new();
        if want("server") {
            let port = self.local_addr.port();
            out.push_str(&info::server_section(
                "shard",
                "standalone",
                port,
                &self.run_id,
                self.started,
            ));
        }
        if want("clients") {
            out.push_str(&info::clients_section(
                self.clients.len(),
                self.config.max_clients,
                self.buffered.held(),
            ));
        }
        if want("memory") {
            let (rows_held, rows_capacity) = store.row_cache().usage();
            let (members_held, members_capacity) = store.member_cache().usage();
            let (filter_bytes, filter_state) = store.key_filter_status();
            out.push_str(&info::memory_section(&format!(
                "fjall_cache_bytes:{}\r\nfjall_cache_capacity:{}\r\nfjall_write_buffer_bytes:{}\r\n\
                 row_cache_bytes:{rows_held}\r\nrow_cache_capacity:{rows_capacity}\r\n\
                 member_cache_bytes:{members_held}\r\nmember_cache_capacity:{members_capacity}\r\n\
                 key_filter_bytes:{filter_bytes}\r\nkey_filter_state:{filter_state}\r\n",
                store.database().cache_size(),
                store.database().cache_capacity(),
                store.database().write_buffer_size(),
            )));
        }
        if want("persistence") {
            let fsyncs = ss.fsyncs.get();
            let fsync_avg_micros = ss.fsync_seconds.get_sample_sum() * 1e6
                / ss.fsync_seconds.get_sample_count().max(1) as f64;
            out.push_str(&format!(
                "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\n\
                 rdb_last_save_time:{}\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n\
                 aof_last_write_status:{}\r\nfsync_mode:{}\r\nfsync_count:{fsyncs}\r\nfsync_avg_micros:{:.0}\r\n\
                 write_groups:{}\r\ninline_write_groups:{}\r\nwrites:{}\r\ndisk_bytes:{}\r\njournal_count:{}\r\njournal_bytes:{}\r\njournal_replayed_bytes:{}\r\n\r\n",
                ss.key_changes.get(),
                ss.last_fsync_unix.load(Ordering::Relaxed),
                if store.is_writable() { "ok" } else { "err" },
                self.config.fsync.name(),
                fsync_avg_micros,
                ss.group_writes.get_sample_count(),
                ss.inline_groups.get(),
                ss.writes.get(),
                store.disk_bytes(),
                store.database().journal_count(),
                store.database().journal_disk_space().unwrap_or(0),
                ss.journal_replayed_bytes.load(Ordering::Relaxed),
            ));
        }
        if want("stats") {
            out.push_str(&format!(
                "# Stats\r\n{}expired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{}\r\n\
                 keyspace_misses:{}\r\nkey_filter_skips:{}\r\ncompactions_completed:{}\r\n\r\n",
                self.metrics.traffic.info_lines(),
                ss.expired_keys.get(),
                ss.keyspace_hits.get(),
                ss.keyspace_misses.get(),
                ss.key_filter_skips.get(),
                store.database().compactions_completed(),
            ));
        }
        let oplog = store.oplog();
        let (first, last) = (oplog.first_id(), oplog.last_id());
        let (role, role_lines) = self.repl.info_lines(store);
        let replication = info::Replication {
            role,
            role_lines,
            replid: oplog.history(),
            offset: last,
            backlog_size: oplog.options().retention_bytes,
            backlog_first: first,
            backlog_len: (last + 1).saturating_sub(first),
        };
        info::shared_sections(wanted, &replication, &self.metrics.commands, &mut out);
        if want("cluster") {
            out.push_str(&info::cluster_section(false));
        }
        if want("keyspace") {
            let expires = store.approximate_expiring_keys();
            out.push_str(&info::keyspace_section(store.total_keys(), expires));
        }
        info::finish(out)
    }
}

impl Host for Server {
    fn requirepass(&self) -> Option<&str> {
        self.config.requirepass.as_deref()
    }

    fn clients(&self) -> &ClientRegistry {
        &self.clients
    }

    fn cluster_support(&self) -> bool {
        false
    }

    fn reset_stats(&self) {
        self.metrics.traffic.reset();
        let ss = &self.store.stats;
        for c in [
            &ss.expired_keys,
            &ss.keyspace_hits,
            &ss.keyspace_misses,
            &ss.key_filter_skips,
        ] {
            c.reset();
        }
    }

    /// Parameters CONFIG GET knows, with their current values.
    fn config_params(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        vec![
            ("save", String::new()),
            ("appendonly", "yes".into()),
            ("appendfsync", c.fsync.name().into()),
            ("databases", "1".into()),
            ("maxmemory", "0".into()),
            ("maxmemory-policy", "noeviction".into()),
            ("maxclients", c.max_clients.to_string()),
            ("port", self.local_addr.port().to_string()),
            ("bind", self.local_addr.ip().to_string()),
            ("dir", c.data_dir.display().to_string()),
            ("timeout", "0".into()),
            ("proto-max-bulk-len", c.max_bulk_len.to_string()),
            (
                "client-query-buffer-limit",
                c.client_query_buffer_limit.to_string(),
            ),
            ("cluster-enabled", "no".into()),
            ("requirepass", c.requirepass.clone().unwrap_or_default()),
        ]
    }
}

/// Positions of SCAN cursors in flight, bounded in count and bytes (oldest forgotten first).
#[derive(Default)]
pub struct CursorTable {
    inner: Mutex<CursorTableInner>,
}

#[derive(Default)]
struct CursorTableInner {
    next_id: u64,
    positions: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
    bytes: usize,
}

const MAX_CURSORS: usize = 100_000;
const MAX_CURSOR_BYTES: usize = 64 * 1024 * 1024;
const CURSOR_ID_MASK: u64 = (1 << 48) - 1;

impl CursorTable {
    /// Remembers a position and returns the cursor naming it.
    pub fn save(&self, slot: u16, data_key: Vec<u8>) -> u64 {
        let Ok(mut t) = self.inner.lock() else {
            return u64::from(slot) << 48 | 1;
        };
        t.next_id = (t.next_id % CURSOR_ID_MASK) + 1;
        let id = t.next_id;
        t.bytes += data_key.len();
        if let Some(old) = t.positions.insert(id, data_key) {
            t.bytes -= old.len();
        }
        t.order.push_back(id);
        while t.order.len() > MAX_CURSORS || t.bytes > MAX_CURSOR_BYTES {
            let Some(old) = t.order.pop_front() else {
                break;
            };
            if let Some(k) = t.positions.remove(&old) {
                t.bytes -= k.len();
            }
        }
        u64::from(slot) << 48 | id
    }

    /// The position a cursor names, if still remembered. Kept, so a retried call works.
    pub fn position(&self, cursor: u64) -> Option<Vec<u8>> {
        let t = self.inner.lock().ok()?;
        t.positions.get(&(cursor & CURSOR_ID_MASK)).cloned()
    }
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: watch::Receiver<bool>) {
    process::accept_loop(listener, shutdown, |stream, addr| {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let mut stream = stream;
            match handle(&mut stream, addr, &server).await {
                Err(e) => tracing::debug!(error = %e, %addr, "connection ended with an error"),
                Ok(Some((LinkRequest::Replica(request), pending))) => {
                    let served = crate::repl::primary::serve(stream, pending, request, server);
                    if let Err(e) = served.await {
                        tracing::info!(error = %e, %addr, "replication link to a replica ended");
                    }
                }
                Ok(Some((LinkRequest::Slots(request), _))) => {
                    let served = crate::migrate::source::serve(stream, request, server);
                    if let Err(e) = served.await {
                        tracing::info!(error = %e, %addr, "the stream of slots to an importing shard ended");
                    }
                }
                Ok(None) => {}
            }
        });
    })
    .await
}

/// A connection that asked to become a replication link, with what it sent after asking.
type Handover = (LinkRequest, BytesMut);

async fn handle(
    stream: &mut TcpStream,
    addr: SocketAddr,
    server: &Server,
) -> std::io::Result<Option<Handover>> {
    stream.set_nodelay(true)?;
    let mut out = BytesMut::with_capacity(16 * 1024);
    let traffic = &server.metrics.traffic;
    if server.clients.len() >= server.config.max_clients {
        traffic.rejected.inc();
        Reply::error("ERR max number of clients reached").encode(Proto::Resp2, &mut out);
        stream.write_all(&out).await?;
        return Ok(None);
    }
    traffic.accepted.inc();
    let info = server.clients.register(addr, stream.local_addr()?);
    let id = info.id;
    let mut conn = ClientState::new(server, info, false);
    let mut guard = server.buffered.share();
    let result = serve_connection(stream, server, &mut conn, &mut out, &mut guard).await;
    server.clients.unregister(id);
    result
}

async fn serve_connection(
    stream: &mut TcpStream,
    server: &Server,
    conn: &mut ClientState,
    out: &mut BytesMut,
    guard: &mut Share<'_>,
) -> std::io::Result<Option<Handover>> {
    let mut decoder = RequestDecoder::new(server.config.limits());
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut replies = Replies {
        pending: VecDeque::new(),
        writes: Vec::new(),
        submitted: VecDeque::new(),
        writer: &server.writer,
        metrics: &server.metrics,
    };
    let traffic = &server.metrics.traffic;
    loop {
        decoder.reserve_for_read(&mut buf, 16 * 1024);
        let n = stream.read_buf(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        let read_at = Instant::now();
        traffic.bytes_in.inc_by(n as u64);
        let mut close = false;
        let mut handover = None;
        loop {
            let args = match decoder.decode(&mut buf) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    let reply = Slot::Ready(e.to_reply());
                    replies.push(out, conn.proto, reply, CommandLabel::UNKNOWN, read_at);
                    close = true;
                    break;
                }
            };
            traffic.commands.inc();
            let resolved = match resolve(&args) {
                Ok(r) => r,
                Err(e) => {
                    let reply = Slot::Ready(Reply::error(e));
                    let label = CommandLabel::of_request(&args);
                    replies.push(out, conn.proto, reply, label, read_at);
                    continue;
                }
            };
            conn.info.touch(resolved);
            // A read must see this connection's earlier writes.
            if !resolved.effective().is_write() {
                replies.drain(out, conn.proto).await;
            }
            // And no one's unacknowledged ones.
            if let Some(id) = cmd::read_barrier(&server.store, conn, &resolved, &args) {
                if let Err(refusal) = cmd::wait_visible(server, conn, id).await {
                    let label = CommandLabel::of(resolved.spec);
                    replies.push(out, conn.proto, Slot::Ready(refusal), label, read_at);
                    continue;
                }
            }
            let outcome = cmd::execute(&mut Ctx { server, conn }, resolved, &args);
            let slot = match outcome {
                Outcome::Reply(r) => Slot::Ready(r),
                Outcome::Write(op) => replies.write(op).await,
                Outcome::Flush { slots, max_rate } => {
                    // After this connection's earlier writes, as it was sent.
                    replies.submit().await;
                    Slot::Flush(server.writer.flush(slots, max_rate).await)
                }
                Outcome::Blocking(f) => Slot::Blocking(tokio::task::spawn_blocking(f)),
                Outcome::Later(task) => Slot::Blocking(task),
                Outcome::Sync(request) => {
                    // The rest of the connection is the link: nothing after it is a command.
                    handover = Some(request);
                    break;
                }
                Outcome::Close(r) => {
                    close = true;
                    Slot::Ready(r)
                }
                Outcome::Shutdown { save } => {
                    // After the replies of this connection's earlier writes.
                    replies.drain(out, conn.proto).await;
                    tracing::info!(client = conn.info.id, save, "SHUTDOWN");
                    server.request_shutdown(save);
                    close = true;
                    break;
                }
            };
            // Nothing is pending when HELLO runs (it reads), so switching protocol cannot
            // change how an earlier reply is encoded.
            let label = CommandLabel::of(resolved.spec);
            replies.push(out, conn.proto, slot, label, read_at);
            if close {
                break;
            }
        }
        replies.drain(out, conn.proto).await;
        if !guard.update(buf.len() + decoder.held_bytes()) {
            Reply::error("ERR client buffers exceed the shard's limit (client_query_buffer_limit or client_memory_budget); closing")
                .encode(conn.proto, out);
            close = true;
        }
        if !out.is_empty() {
            traffic.bytes_out.inc_by(out.len() as u64);
            stream.write_all(out).await?;
            out.clear();
            if out.capacity() > 1024 * 1024 {
                *out = BytesMut::with_capacity(16 * 1024);
            }
        }
        if let Some(request) = handover {
            return Ok(Some((request, buf)));
        }
        if close {
            return Ok(None);
        }
    }
}

/// One reply waiting its turn: ready, or pending on the writer or a blocking scan.
enum Slot {
    Ready(Reply),
    /// The next reply of the oldest request of writes not yet used up.
    Write,
    Flush(PendingReply),
    Blocking(tokio::task::JoinHandle<Reply>),
}

/// Most writes gathered before they go to the writer: bounds one request's size.
const MAX_GATHERED_WRITES: usize = 1024;

/// A connection's replies in request order, each counted in the metrics once it is known,
/// and the writes whose replies are to come.
struct Replies<'a> {
    pending: VecDeque<(Slot, CommandLabel, Instant)>,
    /// Writes gathered and not yet sent to the writer.
    writes: Vec<Box<dyn WriteOp>>,
    /// Requests sent to the writer, oldest first, with the replies not yet used.
    submitted: VecDeque<Submitted>,
    writer: &'a Writer,
    metrics: &'a ShardMetrics,
}

enum Submitted {
    /// The replies to come, and how many writes the request holds.
    Waiting(PendingReplies, usize),
    Answered(std::vec::IntoIter<Reply>),
}

impl Replies<'_> {
    /// Gathers a write; its reply comes with the others of its request.
    async fn write(&mut self, op: Box<dyn WriteOp>) -> Slot {
        self.writes.push(op);
        if self.writes.len() >= MAX_GATHERED_WRITES {
            self.submit().await;
        }
        Slot::Write
    }

    /// Commits the gathered writes here if nothing of this connection is still queued and
    /// the writer allows it, else sends them to the writer as one request.
    async fn submit(&mut self) {
        if !self.writes.is_empty() {
            let mut ops = std::mem::take(&mut self.writes);
            let queued = self
                .submitted
                .iter()
                .any(|s| matches!(s, Submitted::Waiting(..)));
            if !queued {
                let count = ops.len();
                match self.writer.commit_inline(ops) {
                    Ok(Inline::Answered(replies)) => {
                        self.submitted
                            .push_back(Submitted::Answered(replies.into_iter()));
                        return;
                    }
                    Ok(Inline::Held(rx)) => {
                        self.submitted.push_back(Submitted::Waiting(rx, count));
                        return;
                    }
                    Err(back) => ops = back,
                }
            }
            let count = ops.len();
            let rx = self.writer.submit(ops).await;
            self.submitted.push_back(Submitted::Waiting(rx, count));
        }
    }

    /// The reply of the oldest write not yet answered.
    async fn next_write(&mut self) -> Reply {
        loop {
            let Some(front) = self.submitted.front_mut() else {
                return Reply::error("ERR internal error: no write pending");
            };
            match front {
                Submitted::Waiting(rx, count) => {
                    // Every write of a request the writer (or, on a deposed primary, the
                    // acknowledgement gate) dropped gets the error.
                    let replies = rx.await.unwrap_or_else(|_| {
                        vec![Reply::error(crate::repl::acks::ABANDONED); *count]
                    });
                    *front = Submitted::Answered(replies.into_iter());
                }
                Submitted::Answered(replies) => match replies.next() {
                    Some(reply) => return reply,
                    None => {
                        self.submitted.pop_front();
                    }
                },
            }
        }
    }

    /// Encodes `slot` at once if it is ready and nothing is ahead of it, else queues it.
    fn push(
        &mut self,
        out: &mut BytesMut,
        proto: Proto,
        slot: Slot,
        label: CommandLabel,
        read_at: Instant,
    ) {
        match slot {
            Slot::Ready(r) if self.pending.is_empty() => {
                self.metrics.commands.record(label, &r, read_at);
                r.encode(proto, out);
            }
            other => self.pending.push_back((other, label, read_at)),
        }
    }

    /// Sends the gathered writes, waits for every queued reply, in order, and encodes it.
    async fn drain(&mut self, out: &mut BytesMut, proto: Proto) {
        self.submit().await;
        while let Some((slot, label, read_at)) = self.pending.pop_front() {
            let reply = match slot {
                Slot::Ready(r) => r,
                Slot::Write => self.next_write().await,
                Slot::Flush(rx) => rx
                    .await
                    .unwrap_or_else(|_| Reply::error("ERR the shard is shutting down")),
                Slot::Blocking(h) => h
                    .await
                    .unwrap_or_else(|_| Reply::error("ERR internal error while scanning")),
            };
            self.metrics.commands.record(label, &reply, read_at);
            reply.encode(proto, out);
        }
    }
}

impl Observed for Server {
    fn registry(&self) -> &prometheus::Registry {
        &self.metrics.registry
    }

    fn sample(&self) {
        self.metrics.traffic.clients.set(self.clients.len() as i64);
        self.metrics.sample(&self.store);
        self.repl.sample_lag(self.store.oplog().last_id());
    }

    /// Ready while the store takes writes: after a failed write or fsync the shard refuses
    /// them until restarted.
    fn ready(&self) -> Result<(), String> {
        match self.store.is_writable() {
            true => Ok(()),
            false => Err("the store refuses writes after a failed write or fsync".into()),
        }
    }
}
