//! Pipelined connections to one shard, shared by every client of the proxy.
//!
//! A shard gets a few long-lived connections. Each is one task that owns a channel of requests:
//! a writer half takes everything queued and sends it in one write, a reader half decodes
//! replies and hands each to the request that is oldest in flight (a shard answers in order).
//! The requests of one client read to a shard all use one connection, so they stay in order;
//! the next read may use another (every earlier reply has arrived by then): the first
//! connection that is not backed up, so that under normal load one connection carries many
//! clients per write. A request is one command, or a batch: every single-shard command one client read
//! sent to this shard, encoded once by the client's task and answered with one message, so a
//! pipeline costs one channel hop per shard rather than one per command. Nothing is retried:
//! a request that may have reached the shard and got no reply fails with a CLUSTERDOWN error
//! naming the shard, and the connection is rebuilt with backoff while new requests for it
//! fail at once.
//!
//! Each request says which protocol its replies must be in: a client's commands are
//! answered in the client's protocol, so a RESP3 client gets the shard's maps, sets and
//! doubles as the shard made them, and a RESP2 client the shard's RESP2 forms, both exactly
//! as Redis shapes them, with no per-command knowledge in the proxy. A batch's replies go to
//! its client unread, as the frames that arrived ([`Reply::Frame`]); only errors are read,
//! since the proxy follows some (a slot's new owner, a replica's primary). A connection switches
//! with `HELLO` when the next request wants the other protocol (its reply is dropped); the
//! proxy's own requests, whose replies it reads, are RESP2.

use crate::metrics::BackendMetrics;
use bytes::{Bytes, BytesMut};
use fjord_common::{Proto, Reply, ReplyDecoder};
use prometheus::local::LocalHistogram;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What one request to a shard yields: its reply, or why there is none.
pub type BackendResult = Result<Reply, String>;

/// The replies to a batch, in request order. Fewer than were sent only if the connection
/// failed; `failed` then says why, and the rest of the batch gets that error.
pub struct BatchReplies {
    pub replies: Vec<Reply>,
    pub failed: Option<String>,
}

/// A request on its way to a shard: commands encoded in RESP, the protocol of their
/// replies, and where the replies go.
struct Request {
    commands: Bytes,
    proto: Proto,
    sink: Sink,
}

/// Where the replies to a request go.
enum Sink {
    One(oneshot::Sender<BackendResult>),
    Batch {
        count: usize,
        replies: Vec<Reply>,
        tx: oneshot::Sender<BatchReplies>,
    },
    /// The connection's own `HELLO`, switching protocols: its reply goes nowhere.
    Switch,
}

impl Sink {
    /// Commands the request holds.
    fn commands(&self) -> usize {
        match self {
            Sink::One(_) => 1,
            Sink::Batch { count, .. } => *count,
            Sink::Switch => 0,
        }
    }

    /// Commands still waiting for a reply.
    fn outstanding(&self) -> usize {
        match self {
            Sink::One(_) => 1,
            Sink::Batch { count, replies, .. } => count - replies.len(),
            Sink::Switch => 0,
        }
    }

    /// Hands the replies on, `last` completing them.
    fn finish(self, last: Reply) {
        match self {
            Sink::One(tx) => {
                let _ = tx.send(Ok(last));
            }
            Sink::Batch {
                mut replies, tx, ..
            } => {
                replies.push(last);
                let _ = tx.send(BatchReplies {
                    replies,
                    failed: None,
                });
            }
            Sink::Switch => {}
        }
    }

    /// Fails every command not yet answered.
    fn fail(self, why: String) {
        match self {
            Sink::One(tx) => {
                let _ = tx.send(Err(why));
            }
            Sink::Batch { replies, tx, .. } => {
                let _ = tx.send(BatchReplies {
                    replies,
                    failed: Some(why),
                });
            }
            Sink::Switch => {}
        }
    }
}

/// How connections to shards behave.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    pub connections: usize,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub max_backoff: Duration,
    pub password: Option<String>,
    /// The staleness a replica may show in the reads sent to it (`replica_max_lag_ms`);
    /// `Some` only on connections to replicas, which then begin with `FJORD READLAG`.
    pub read_lag_ms: Option<u64>,
    /// What `read_lag_ms` becomes on connections to replicas.
    pub replica_max_lag_ms: u64,
}

impl BackendOptions {
    /// The options of connections to a replica, for READONLY reads.
    pub fn for_replica_reads(&self) -> Self {
        Self {
            read_lag_ms: Some(self.replica_max_lag_ms),
            ..self.clone()
        }
    }
}

/// How long a replica that refused a read as too stale, or failed, gets no more READONLY
/// reads (they go to the primary meanwhile).
const HOLD_OFF: Duration = Duration::from_millis(500);

/// Requests queued per connection before senders wait.
const QUEUE: usize = 4096;
/// Most bytes gathered into one write to a shard.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// The proxy's connections to one shard.
pub struct ShardBackend {
    pub id: String,
    pub addr: String,
    conns: Vec<Lane>,
    status: Arc<Status>,
    /// Turned true when a new topology no longer routes to this address for this shard.
    retired: tokio::sync::watch::Sender<bool>,
    /// Until when (ms of [`fjord_common::process::uptime_ms`]) a replica gets no READONLY
    /// reads.
    held_off_until: AtomicU64,
    /// Until [`ShardBackend::start`]: the queues' receiving ends, for the connections.
    unstarted: Mutex<Option<Unstarted>>,
}

/// What a built backend's connections start with.
struct Unstarted {
    options: BackendOptions,
    queues: Vec<(mpsc::Receiver<Request>, Arc<AtomicUsize>)>,
}

/// One connection's queue, and how many commands are queued or in flight on it.
struct Lane {
    tx: mpsc::Sender<Request>,
    load: Arc<AtomicUsize>,
}

/// Commands outstanding on a connection before the next client read spills to another one:
/// one busy connection carries more clients per write (fewer system calls and wake-ups on
/// both sides: measured +10-20% pipelined SET and GET against two connections used evenly;
/// 256 spilled too early under `-P 16`), while a backed-up one (a slow shard read) does not
/// hold up everyone.
const SPILL_AT: usize = 1024;

/// What the connections report about the shard.
pub struct Status {
    /// Whether the last connection attempt succeeded and the connection still stands.
    up: AtomicBool,
    /// Set when the backend starts: the connections count into it.
    metrics: OnceLock<BackendMetrics>,
}

impl ShardBackend {
    /// Builds the backend's queues without connecting: requests queue up until
    /// [`ShardBackend::start`]. A reload builds the new shards' backends so and starts them
    /// once the new routing is in force, which keeps the per-shard costs (tasks, metric
    /// series) out of the time a reload takes to swap in.
    pub fn build(id: &str, addr: &str, options: &BackendOptions) -> Arc<Self> {
        let (conns, queues) = (0..options.connections.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let load = Arc::new(AtomicUsize::new(0));
                (
                    Lane {
                        tx,
                        load: Arc::clone(&load),
                    },
                    (rx, load),
                )
            })
            .unzip();
        Arc::new(Self {
            id: id.to_string(),
            addr: addr.to_string(),
            conns,
            status: Arc::new(Status {
                up: AtomicBool::new(false),
                metrics: OnceLock::new(),
            }),
            retired: tokio::sync::watch::Sender::new(false),
            held_off_until: AtomicU64::new(0),
            unstarted: Mutex::new(Some(Unstarted {
                options: options.clone(),
                queues,
            })),
        })
    }

    /// Starts the connection tasks (once; later calls do nothing); they connect in the
    /// background and live as long as this.
    pub fn start(&self, metrics: BackendMetrics) {
        let unstarted = self
            .unstarted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(Unstarted { options, queues }) = unstarted else {
            return;
        };
        let _ = self.status.metrics.set(metrics.clone());
        for (rx, load) in queues {
            let conn = Connection {
                shard: self.id.clone(),
                addr: self.addr.clone(),
                options: options.clone(),
                status: Arc::clone(&self.status),
                metrics: metrics.clone(),
                load,
                retired: self.retired.subscribe(),
            };
            tokio::spawn(conn.run(rx));
        }
    }

    /// A replica refused a read as too stale, or failed it: send READONLY reads to the
    /// primary for a while.
    pub fn hold_off(&self) {
        let until = fjord_common::process::uptime_ms() + HOLD_OFF.as_millis() as u64;
        self.held_off_until.fetch_max(until, Ordering::Relaxed);
    }

    pub fn held_off(&self) -> bool {
        self.held_off_until.load(Ordering::Relaxed) > fjord_common::process::uptime_ms()
    }

    /// The topology in force no longer routes here (the shard failed over, or moved): what
    /// it was already sent gets up to `RETIRE_GRACE` for its replies (a shard removed from
    /// the topology answers them), then everything queued or in flight fails, as does any
    /// request still on the old topology, rather than wait for a primary that has been
    /// deposed. Their outcome is unknown, so none is re-sent.
    pub fn retire(&self) {
        self.retired.send_replace(true);
    }

    /// Whether the shard answered on its last connection attempt.
    pub fn is_up(&self) -> bool {
        self.status.up.load(Ordering::Relaxed)
    }

    /// The connection for a client's next requests: the first one not backed up, else the
    /// least busy. Only safe to change between reads of a client, when all its earlier
    /// requests are answered ([`crate::router::Target`]).
    pub fn pick_lane(&self) -> usize {
        let load = |i: usize| self.conns[i].load.load(Ordering::Relaxed);
        (0..self.conns.len())
            .find(|&i| load(i) < SPILL_AT)
            .unwrap_or_else(|| (0..self.conns.len()).min_by_key(|&i| load(i)).unwrap_or(0))
    }

    /// Queues a command on connection `lane` ([`ShardBackend::pick_lane`]), to be answered
    /// in `proto`; the receiver yields the reply. Waits only while that connection's queue
    /// is full.
    pub async fn send(
        &self,
        lane: usize,
        args: &[Bytes],
        proto: Proto,
    ) -> oneshot::Receiver<BackendResult> {
        let (tx, rx) = oneshot::channel();
        let mut commands = BytesMut::new();
        fjord_common::resp::encode_request(args, &mut commands);
        self.queue(lane, commands.freeze(), proto, Sink::One(tx))
            .await;
        rx
    }

    /// Queues `count` commands already encoded in `commands`, to be answered in `proto`;
    /// the receiver yields their replies in order.
    pub async fn send_batch(
        &self,
        lane: usize,
        commands: Bytes,
        count: usize,
        proto: Proto,
    ) -> oneshot::Receiver<BatchReplies> {
        let (tx, rx) = oneshot::channel();
        let sink = Sink::Batch {
            count,
            replies: Vec::with_capacity(count),
            tx,
        };
        self.queue(lane, commands, proto, sink).await;
        rx
    }

    async fn queue(&self, lane: usize, commands: Bytes, proto: Proto, sink: Sink) {
        let conn = &self.conns[lane % self.conns.len()];
        let count = sink.commands();
        conn.load.fetch_add(count, Ordering::Relaxed);
        let req = Request {
            commands,
            proto,
            sink,
        };
        if let Err(mpsc::error::SendError(req)) = conn.tx.send(req).await {
            conn.load.fetch_sub(count, Ordering::Relaxed);
            if let Some(metrics) = self.status.metrics.get() {
                metrics.unavailable.inc_by(count as u64);
            }
            req.sink.fail(self.down("the proxy is shutting down"));
        }
    }

    /// The CLUSTERDOWN text for this shard.
    pub fn down(&self, why: &str) -> String {
        down(&self.id, &self.addr, why)
    }

    /// The CLUSTERDOWN text for a replica that did not answer a read within `wait`
    /// (`replica_max_lag_ms`).
    pub fn too_slow(&self, wait: std::time::Duration) -> String {
        self.down(&format!(
            "no answer within {} ms (replica_max_lag_ms)",
            wait.as_millis()
        ))
    }
}

/// The CLUSTERDOWN text for a shard that cannot answer.
pub fn down(shard: &str, addr: &str, why: &str) -> String {
    format!("CLUSTERDOWN shard {shard} ({addr}) is unavailable: {why}")
}

/// Waits for a reply, turning a dropped request into the shard's CLUSTERDOWN error.
pub async fn receive(rx: oneshot::Receiver<BackendResult>, shard: &ShardBackend) -> BackendResult {
    rx.await
        .unwrap_or_else(|_| Err(shard.down("the connection was lost before the reply arrived")))
}

/// Waits for a batch's replies; a dropped batch fails as a whole, like a dropped request.
pub async fn receive_batch(
    rx: &mut oneshot::Receiver<BatchReplies>,
    shard: &ShardBackend,
) -> BatchReplies {
    rx.await.unwrap_or_else(|_| BatchReplies {
        replies: Vec::new(),
        failed: Some(shard.down("the connection was lost before the reply arrived")),
    })
}

/// Sends a command that sets up a new connection and checks its answer.
async fn handshake(stream: &mut TcpStream, args: &[&str]) -> Result<(), String> {
    let mut out = BytesMut::new();
    fjord_common::resp::encode_request(args, &mut out);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(256);
    let mut decoder = ReplyDecoder::default();
    loop {
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err(format!(
                "the shard closed the connection during {}",
                args[0]
            ));
        }
        match decoder.decode(&mut buf) {
            Ok(Some(Reply::Error(e))) => return Err(format!("{} refused: {e}", args[0])),
            Ok(Some(_)) => return Ok(()),
            Ok(None) => continue,
            Err(e) => return Err(format!("undecodable {} reply: {e}", args[0])),
        }
    }
}

/// One connection to a shard, rebuilt whenever it breaks.
struct Connection {
    shard: String,
    addr: String,
    options: BackendOptions,
    status: Arc<Status>,
    metrics: BackendMetrics,
    /// Commands queued or in flight here ([`Lane::load`]); lowered as they are answered.
    load: Arc<AtomicUsize>,
    retired: tokio::sync::watch::Receiver<bool>,
}

/// How long a retired backend's connections wait for the replies to what they had sent.
const RETIRE_GRACE: Duration = Duration::from_millis(500);

/// Why a retired backend's requests fail.
const RETIRED: &str =
    "it is no longer the shard's primary in the topology in force; a write's outcome is unknown";

impl Connection {
    fn set_up(&self, up: bool) {
        self.status.up.store(up, Ordering::Relaxed);
        self.metrics.up.set(i64::from(up));
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            if *self.retired.borrow() {
                // Fail whatever still comes, until the backend is dropped.
                while let Some(req) = rx.recv().await {
                    self.load.fetch_sub(req.sink.commands(), Ordering::Relaxed);
                    req.sink.fail(down(&self.shard, &self.addr, RETIRED));
                }
                return;
            }
            let why = match self.connect().await {
                Ok(stream) => {
                    backoff = Duration::from_millis(50);
                    self.set_up(true);
                    tracing::info!(shard = %self.shard, addr = %self.addr, "connected to shard");
                    match self.serve(stream, &mut rx).await {
                        Some(why) => why,
                        None => return,
                    }
                }
                Err(why) => why,
            };
            self.set_up(false);
            tracing::warn!(shard = %self.shard, addr = %self.addr, error = %why, retry_in_ms = backoff.as_millis() as u64, "shard connection down");
            // While down, requests fail at once rather than wait for a shard that is not there.
            let retry_at = Instant::now() + backoff;
            loop {
                tokio::select! {
                    req = rx.recv() => match req {
                        Some(req) => {
                            let count = req.sink.commands();
                            self.load.fetch_sub(count, Ordering::Relaxed);
                            self.metrics.unavailable.inc_by(count as u64);
                            req.sink.fail(down(&self.shard, &self.addr, &why));
                        }
                        None => return,
                    },
                    _ = tokio::time::sleep_until(retry_at) => break,
                    _ = self.retired.wait_for(|r| *r) => break,
                }
            }
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
    }

    async fn connect(&self) -> Result<TcpStream, String> {
        let attempt = async {
            let mut stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            if let Some(password) = &self.options.password {
                handshake(&mut stream, &["AUTH", password.as_str()]).await?;
            }
            if let Some(ms) = self.options.read_lag_ms {
                handshake(&mut stream, &["FJORD", "READLAG", &ms.to_string()]).await?;
            }
            Ok(stream)
        };
        tokio::time::timeout(self.options.connect_timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "connect timed out after {} ms",
                    self.options.connect_timeout.as_millis()
                ))
            })
    }

    /// Runs the connection until it breaks (`Some(why)`) or the backend is dropped (`None`).
    async fn serve(
        &mut self,
        stream: TcpStream,
        rx: &mut mpsc::Receiver<Request>,
    ) -> Option<String> {
        let (mut read, write) = stream.into_split();
        let mut incoming = Incoming {
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: ReplyDecoder::default(),
        };
        let (inflight_tx, mut inflight_rx) = mpsc::unbounded_channel();
        let mut queue = VecDeque::new();
        let mut retired = self.retired.clone();
        let outcome = tokio::select! {
            why = write_loop(write, rx, inflight_tx, &self.metrics) => Some((why?, false)),
            broken = self.read_loop(&mut read, &mut incoming, &mut queue, &mut inflight_rx, false) => Some(broken),
            _ = retired.wait_for(|r| *r) => None,
        };
        let (why, timed_out) = match outcome {
            Some(broken) => broken,
            None => {
                // No longer routed to, but the shard may well answer what it was sent (a
                // shard removed from the topology, a slot's old owner about to refuse):
                // those replies get a moment before the rest fails.
                let drain =
                    self.read_loop(&mut read, &mut incoming, &mut queue, &mut inflight_rx, true);
                let _ = tokio::time::timeout(RETIRE_GRACE, drain).await;
                (RETIRED.to_string(), false)
            }
        };
        // Whichever half broke, every request written and unanswered fails now.
        let metrics = &self.metrics;
        let (mut failed, mut released) = (0, 0);
        while let Some(entry) = queue.pop_front().or_else(|| inflight_rx.try_recv().ok()) {
            failed += entry.sink.outstanding();
            released += entry.sink.commands();
            entry.sink.fail(down(&self.shard, &self.addr, &why));
        }
        self.load.fetch_sub(released, Ordering::Relaxed);
        if metrics.recording {
            metrics.inflight.sub(failed as i64);
        }
        match timed_out {
            true => metrics.timeout.inc_by(failed as u64),
            false => metrics.unavailable.inc_by(failed as u64),
        }
        Some(why)
    }

    /// Reads replies until the connection breaks; returns why, and whether it was a timeout.
    /// Reads replies and hands them out until the connection breaks, or (`until_answered`,
    /// once nothing more is written) until every request sent has its reply.
    async fn read_loop(
        &self,
        read: &mut OwnedReadHalf,
        incoming: &mut Incoming,
        queue: &mut VecDeque<InFlight>,
        inflight_rx: &mut mpsc::UnboundedReceiver<InFlight>,
        until_answered: bool,
    ) -> (String, bool) {
        // Kept for the connection's life: a local histogram allocates its buckets.
        let latencies = self.metrics.duration.local();
        let timeout = self.options.command_timeout;
        loop {
            let oldest = queue.front().map(|f| f.sent + timeout);
            tokio::select! {
                entry = inflight_rx.recv() => match entry {
                    Some(entry) => queue.push_back(entry),
                    None if until_answered && queue.is_empty() => return (String::new(), false),
                    None if until_answered => std::future::pending::<()>().await,
                    // The writer ended; it reports why.
                    None => std::future::pending::<()>().await,
                },
                read = read.read_buf(&mut incoming.buf) => match read {
                    Ok(0) => return ("the shard closed the connection".to_string(), false),
                    Ok(_) => {
                        if let Err(why) = self.deliver(incoming, queue, inflight_rx, &latencies) {
                            return (why, false);
                        }
                        if until_answered && queue.is_empty() && inflight_rx.is_empty() {
                            return (String::new(), false);
                        }
                        let buf = &mut incoming.buf;
                        if buf.capacity() - buf.len() < 4096 {
                            buf.reserve(64 * 1024);
                        }
                    }
                    Err(e) => return (e.to_string(), false),
                },
                _ = sleep_until_opt(oldest) => {
                    return (format!("no reply within {} ms", timeout.as_millis()), true);
                }
            }
        }
    }

    /// Hands every complete reply received to the request it answers.
    fn deliver(
        &self,
        incoming: &mut Incoming,
        queue: &mut VecDeque<InFlight>,
        inflight_rx: &mut mpsc::UnboundedReceiver<InFlight>,
        latencies: &LocalHistogram,
    ) -> Result<(), String> {
        let metrics = &self.metrics;
        if !metrics.recording {
            return self.deliver_frames(incoming, queue, inflight_rx, |_, _| {});
        }
        // One clock reading per read, and the latencies gathered locally: a read often
        // holds the replies of a whole batch.
        let now = Instant::now();
        let (mut ok, mut error) = (0, 0);
        let result = self.deliver_frames(incoming, queue, inflight_rx, |entry, reply| {
            latencies.observe(now.duration_since(entry.sent).as_secs_f64());
            match reply {
                Reply::Error(_) => error += 1,
                _ => ok += 1,
            }
        });
        latencies.flush();
        metrics.ok.inc_by(ok);
        metrics.error.inc_by(error);
        metrics.inflight.sub((ok + error) as i64);
        result
    }

    /// Decodes every complete reply received, tells `seen` of it, and hands it on.
    fn deliver_frames(
        &self,
        incoming: &mut Incoming,
        queue: &mut VecDeque<InFlight>,
        inflight_rx: &mut mpsc::UnboundedReceiver<InFlight>,
        mut seen: impl FnMut(&InFlight, &Reply),
    ) -> Result<(), String> {
        loop {
            if queue.is_empty() {
                while let Ok(entry) = inflight_rx.try_recv() {
                    queue.push_back(entry);
                }
            }
            // A batch's replies go to its client as they came; the proxy reads the others.
            let decoded = match queue.front().map(|entry| &entry.sink) {
                Some(Sink::Batch { .. }) => incoming.decoder.decode_frame(&mut incoming.buf),
                _ => incoming.decoder.decode(&mut incoming.buf),
            };
            let reply = match decoded {
                Ok(Some(reply)) => reply,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("undecodable reply from the shard: {e}")),
            };
            let Some(entry) = queue.front_mut() else {
                return Err("the shard sent a reply nobody asked for".to_string());
            };
            if let Sink::Switch = entry.sink {
                // What follows is in the other protocol only if the switch took.
                if let Reply::Error(e) = reply {
                    return Err(format!("the shard refused HELLO: {e}"));
                }
                queue.pop_front();
                continue;
            }
            seen(&*entry, &reply);
            match &mut entry.sink {
                // Not the batch's last reply: keep it with the others.
                Sink::Batch { count, replies, .. } if replies.len() + 1 < *count => {
                    replies.push(reply)
                }
                _ => {
                    if let Some(done) = queue.pop_front() {
                        self.load.fetch_sub(done.sink.commands(), Ordering::Relaxed);
                        done.sink.finish(reply);
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A connection's replies as they arrive: the bytes read, and the decoder's progress
/// through the reply at their front.
struct Incoming {
    buf: BytesMut,
    decoder: ReplyDecoder,
}

/// A request written to the shard, waiting for its replies.
struct InFlight {
    sink: Sink,
    sent: Instant,
}

/// Sends queued requests in batches; returns why it stopped, `None` when the backend is gone.
async fn write_loop(
    mut write: OwnedWriteHalf,
    rx: &mut mpsc::Receiver<Request>,
    inflight: mpsc::UnboundedSender<InFlight>,
    metrics: &BackendMetrics,
) -> Option<String> {
    let mut out = BytesMut::with_capacity(64 * 1024);
    // A new connection speaks RESP2 until it says otherwise.
    let mut proto = Proto::Resp2;
    loop {
        let first = rx.recv().await?;
        let now = Instant::now();
        let mut next = Some(first);
        let mut yielded = false;
        while let Some(req) = next.take() {
            if metrics.recording {
                // Counted before the reader can see it, so the gauge never dips below zero.
                metrics.inflight.add(req.sink.outstanding() as i64);
            }
            if req.proto != proto {
                proto = req.proto;
                let version = proto.number().to_string();
                fjord_common::resp::encode_request(&["HELLO", version.as_str()], &mut out);
                let switch = InFlight {
                    sink: Sink::Switch,
                    sent: now,
                };
                if inflight.send(switch).is_err() {
                    return Some("the reply reader stopped".to_string());
                }
            }
            out.extend_from_slice(&req.commands);
            // Registered before the bytes leave, so the reader always finds the reply's owner.
            if inflight
                .send(InFlight {
                    sink: req.sink,
                    sent: now,
                })
                .is_err()
            {
                return Some("the reply reader stopped".to_string());
            }
            if out.len() < MAX_BATCH_BYTES {
                next = rx.try_recv().ok();
                if next.is_none() && !yielded {
                    // Let the clients that are ready queue theirs too: one write (and one
                    // wake-up of the shard) then carries several clients' requests.
                    yielded = true;
                    tokio::task::yield_now().await;
                    next = rx.try_recv().ok();
                }
            }
        }
        if let Err(e) = write.write_all(&out).await {
            return Some(e.to_string());
        }
        out.clear();
        if out.capacity() > 4 * MAX_BATCH_BYTES {
            out = BytesMut::with_capacity(64 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ProxyMetrics;

    /// Reads go to the first connection until it is backed up, then to the least busy.
    #[tokio::test]
    async fn lanes_fill_the_first_connection_then_spill() {
        let options = BackendOptions {
            connections: 3,
            connect_timeout: Duration::from_millis(10),
            command_timeout: Duration::from_secs(1),
            max_backoff: Duration::from_secs(1),
            password: None,
            read_lag_ms: None,
            replica_max_lag_ms: 1000,
        };
        let metrics = ProxyMetrics::new(true).backend("s1");
        // Nothing listens there: the connections only retry, which is all this needs.
        let backend = ShardBackend::build("s1", "127.0.0.1:1", &options);
        backend.start(metrics);
        let set = |loads: [usize; 3]| {
            for (lane, load) in backend.conns.iter().zip(loads) {
                lane.load.store(load, Ordering::Relaxed);
            }
        };
        set([SPILL_AT - 1, 0, 0]);
        assert_eq!(backend.pick_lane(), 0);
        set([SPILL_AT, 5, 0]);
        assert_eq!(backend.pick_lane(), 1);
        set([SPILL_AT, SPILL_AT + 1, SPILL_AT + 2]);
        assert_eq!(backend.pick_lane(), 0);
        set([SPILL_AT + 9, SPILL_AT + 1, SPILL_AT + 2]);
        assert_eq!(backend.pick_lane(), 1);
    }
}
