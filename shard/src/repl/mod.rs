//! Replication: a shard is a primary, or a replica that pulls its primary's oplog.
//!
//! The wire contract is [`fjord_common::repl`]. A replica's link ([`replica`]) connects to
//! its primary, asks for the ops after the last one it holds (or gets a full sync: a
//! consistent snapshot, then the tail), applies them through its own writer — which stores
//! the same oplog entries, so it can be promoted or feed another replica — and acknowledges
//! each batch once it is committed. The primary's side ([`primary`]) serves any number of
//! replicas, each from a pin on the oplog.
//!
//! The role is persisted with the store (`meta` key `replicaof`): a replica restarts as a
//! replica of the same primary. `REPLICAOF host port` makes a shard a replica, `REPLICAOF NO
//! ONE` a primary again, starting a new term in its history. A replica refuses client
//! writes with Redis's `READONLY` error and leaves active expiry to its primary (its deletes
//! reach it through the oplog); it removes the members of dead collections itself, as every
//! store does ([`crate::store::garbage`]).

pub mod acks;
pub mod control;
pub mod link;
pub mod primary;
pub mod replica;

use crate::store::Store;
use fjord_common::metrics;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What a connection asked to become: a stream of this shard's oplog to a replica, or of
/// some slots' entries to a shard importing them.
#[derive(Debug)]
pub enum LinkRequest {
    Replica(fjord_common::repl::SyncRequest),
    Slots(fjord_common::repl::SlotSyncRequest),
}

/// This shard's replication state: whom it follows, who follows it.
pub struct Replication {
    /// The primary to follow (`host:port`); `None` while this shard is a primary. The link
    /// task watches it.
    target: watch::Sender<Option<String>>,
    /// Replicas streaming from this shard.
    replicas: Mutex<Vec<Arc<Peer>>>,
    /// This shard's link to its primary.
    link: Mutex<LinkStatus>,
    next_peer: AtomicU64,
    /// Woken by every ack, for WAIT.
    acked: tokio::sync::Notify,
    /// How replies wait for replicas ([`acks`]).
    acks: acks::AckPolicy,
    /// Replies waiting for the in-sync set, oldest first.
    held: Mutex<std::collections::VecDeque<acks::Held>>,
    pub stats: ReplStats,
    pub ack_stats: acks::AckStats,
    /// What the controller has told this shard ([`control`]).
    pub control: control::Control,
    /// As a replica: when (this shard's clock, [`control::stamp`]) the primary last sent a
    /// heartbeat whose every announced op is applied here; 0 = not since the link came up.
    fresh_at: AtomicU64,
}

/// A replica as its primary sees it.
pub struct Peer {
    id: u64,
    pub ip: String,
    /// The port it serves clients on (what it said in `FJORD SYNC`).
    pub port: u16,
    /// The last op id it acknowledged.
    acked: AtomicU64,
    /// Streaming (past the full sync, if there was one).
    online: std::sync::atomic::AtomicBool,
    last_ack: Mutex<Instant>,
    /// Its place in the in-sync set ([`acks::Membership`]).
    membership: std::sync::atomic::AtomicU8,
    /// The last op when it joined the set: it is in sync once it has acknowledged it.
    join_point: AtomicU64,
}

impl Peer {
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    pub fn ack(&self, id: u64) {
        self.acked.fetch_max(id, Ordering::AcqRel);
        *self.last_ack.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// `ip:port`: how the recorded in-sync set names it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn set_online(&self) {
        self.online.store(true, Ordering::Release);
    }

    pub(crate) fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    fn seconds_since_ack(&self) -> u64 {
        self.last_ack
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            .as_secs()
    }
}

/// A replica's view of its link, for ROLE and INFO.
#[derive(Clone, Debug)]
pub struct LinkStatus {
    /// Redis's words: `connect` (waiting to retry), `connecting`, `sync`, `connected`.
    pub state: &'static str,
    /// When the last frame came from the primary.
    pub last_io: Option<Instant>,
    /// How the last sync went: `full` or `incremental`.
    pub last_sync: Option<&'static str>,
    /// The primary's last op id, as its latest frame told.
    pub primary_last_id: u64,
    /// The newest term the link's primary has shown: its term when the link started, raised
    /// by the term markers it streamed since (0 before it answered).
    pub primary_term: u64,
}

/// The replication series.
pub struct ReplStats {
    /// Syncs a replica made, by kind (`full`, `incremental`).
    pub syncs: IntCounterVec,
    /// Replicas streaming from this shard.
    pub replicas: IntGauge,
    /// 1 while this shard is a replica with its link up.
    pub link_up: IntGauge,
    pub lag_ops: IntGauge,
    pub lag_seconds: prometheus::Gauge,
}

impl Default for ReplStats {
    fn default() -> Self {
        Self {
            syncs: IntCounterVec::new(
                Opts::new(
                    "fjord_shard_replica_syncs_total",
                    "Syncs this shard made as a replica: full (snapshot, then the tail) or incremental",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            replicas: IntGauge::new(
                "fjord_shard_replicas",
                "Replicas connected to this shard",
            )
            .expect("valid metric"),
            link_up: IntGauge::new(
                "fjord_shard_replica_link_up",
                "1 while this shard is a replica whose link to its primary is up",
            )
            .expect("valid metric"),
            lag_ops: IntGauge::new(
                "fjord_shard_replica_lag_ops",
                "Ops this replica is behind its primary's last op as the primary last told it (0 on a primary)",
            )
            .expect("valid metric"),
            lag_seconds: prometheus::Gauge::new(
                "fjord_shard_replica_lag_seconds",
                "Seconds since this replica last heard from its primary, on its own clock (the primary sends at least every 100 ms; 0 on a primary)",
            )
            .expect("valid metric"),
        }
    }
}

impl ReplStats {
    pub fn register(&self, registry: &Registry) {
        metrics::register(registry, self.syncs.clone());
        metrics::register(registry, self.replicas.clone());
        metrics::register(registry, self.link_up.clone());
        metrics::register(registry, self.lag_ops.clone());
        metrics::register(registry, self.lag_seconds.clone());
    }
}

impl Replication {
    /// The state of a store that follows `replica_of` (persisted, or given at start).
    /// `controller_term` and `leader` are the store's ([`control`]).
    pub fn new(
        replica_of: Option<String>,
        acks: acks::AckOptions,
        controller_term: u64,
        leader: u64,
    ) -> Self {
        Self {
            control: control::Control::new(controller_term, leader),
            acks: acks::AckPolicy::new(acks),
            held: Mutex::new(std::collections::VecDeque::new()),
            ack_stats: acks::AckStats::default(),
            target: watch::Sender::new(replica_of),
            replicas: Mutex::new(Vec::new()),
            link: Mutex::new(LinkStatus {
                state: "connect",
                last_io: None,
                last_sync: None,
                primary_last_id: 0,
                primary_term: 0,
            }),
            next_peer: AtomicU64::new(1),
            acked: tokio::sync::Notify::new(),
            stats: ReplStats::default(),
            fresh_at: AtomicU64::new(0),
        }
    }

    /// The primary followed, if this shard is a replica.
    pub fn primary(&self) -> Option<String> {
        self.target.borrow().clone()
    }

    /// Follows `primary` from now on (`None`: becomes a primary), persisted in `store`.
    pub fn follow(&self, store: &Store, primary: Option<String>) -> Result<(), String> {
        store
            .set_replica_of(primary.as_deref())
            .map_err(|e| format!("ERR {e}"))?;
        if primary.is_some() {
            // What it committed and never had acknowledged is a replica's data now: reads
            // waiting for those acknowledgements go on.
            store.visible.release(store.oplog().last_id());
        }
        self.target.send_replace(primary);
        Ok(())
    }

    fn link(&self) -> MutexGuard<'_, LinkStatus> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn link_status(&self) -> LinkStatus {
        self.link().clone()
    }

    /// The link's primary showed `term` (`None`: a new link, not answered yet).
    pub(crate) fn primary_showed(&self, term: Option<u64>) {
        let mut link = self.link();
        link.primary_term = term.map_or(0, |t| t.max(link.primary_term));
    }

    /// Whether a fence ends the link: the controller's term is newer than any its primary
    /// has shown. A primary that has shown it is that term's primary (the controller
    /// confirmed it, then attached this replica to it), so the link goes on: restarting it
    /// would take this replica out of the in-sync set for nothing.
    pub(crate) fn link_fenced(&self) -> bool {
        self.control.term() > self.link().primary_term
    }

    pub(crate) fn set_link_state(&self, state: &'static str) {
        let mut link = self.link();
        link.state = state;
        if state == "connecting" {
            // Perhaps another primary, with other op ids.
            link.primary_last_id = 0;
            self.fresh_at.store(0, Ordering::Release);
        }
        drop(link);
        self.stats.link_up.set(i64::from(state == "connected"));
    }

    /// A frame came from the primary, whose last op is `primary_last_id` (0: not told).
    pub(crate) fn note_io(&self, primary_last_id: u64) {
        let mut link = self.link();
        link.last_io = Some(Instant::now());
        link.primary_last_id = link.primary_last_id.max(primary_last_id);
    }

    /// This replica holds every op its primary had at the heartbeat heard at `at`.
    pub(crate) fn note_fresh(&self, at: u64) {
        self.fresh_at.fetch_max(at, Ordering::AcqRel);
    }

    /// How far behind its primary this replica's data may be, in ms of its own clock: the
    /// time since the primary's last heartbeat whose ops are all applied here. `u64::MAX`
    /// while its link is not streaming; 0 on a primary.
    pub fn staleness_ms(&self) -> u64 {
        if self.primary().is_none() {
            return 0;
        }
        match self.fresh_at.load(Ordering::Acquire) {
            0 => u64::MAX,
            at => control::stamp().saturating_sub(at),
        }
    }

    /// Sets the lag gauges (a replica's view: ops behind its primary's last known op, and
    /// seconds since its primary's last frame).
    pub fn sample_lag(&self, own_last_id: u64) {
        let link = self.link_status();
        let replica = self.primary().is_some();
        let ops = match replica {
            true => link.primary_last_id.saturating_sub(own_last_id),
            false => 0,
        };
        let seconds = match (replica, link.last_io) {
            (true, Some(at)) => at.elapsed().as_secs_f64(),
            _ => 0.0,
        };
        self.stats.lag_ops.set(ops as i64);
        self.stats.lag_seconds.set(seconds);
    }

    pub(crate) fn note_sync(&self, kind: &'static str) {
        self.link().last_sync = Some(kind);
        self.stats.syncs.with_label_values(&[kind]).inc();
    }

    /// Registers a replica that opened a link; it is forgotten when the guard drops.
    pub fn add_peer(self: &Arc<Self>, ip: String, port: u16) -> PeerGuard {
        let peer = Arc::new(Peer {
            id: self.next_peer.fetch_add(1, Ordering::Relaxed),
            ip,
            port,
            acked: AtomicU64::new(0),
            online: std::sync::atomic::AtomicBool::new(false),
            last_ack: Mutex::new(Instant::now()),
            membership: std::sync::atomic::AtomicU8::new(0),
            join_point: AtomicU64::new(0),
        });
        let mut peers = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        peers.push(Arc::clone(&peer));
        self.stats.replicas.set(peers.len() as i64);
        PeerGuard {
            peer,
            repl: Arc::clone(self),
        }
    }

    pub(crate) fn peers(&self) -> Vec<Arc<Peer>> {
        self.replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `wanted` replicas have acknowledged `id`, or `timeout` passes; returns
    /// how many have.
    pub async fn wait_for(&self, id: u64, wanted: usize, timeout: Option<Duration>) -> usize {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let notified = self.acked.notified();
            let count = self.acked_by(id);
            if count >= wanted {
                return count;
            }
            match deadline {
                Some(at) => {
                    if tokio::time::timeout_at(at, notified).await.is_err() {
                        return self.acked_by(id);
                    }
                }
                None => notified.await,
            }
        }
    }

    /// How many streaming replicas have acknowledged `id` (WAIT).
    pub fn acked_by(&self, id: u64) -> usize {
        self.peers()
            .iter()
            .filter(|p| p.is_online() && p.acked() >= id)
            .count()
    }

    /// The lines of INFO's Replication section that depend on the role, in Redis's order:
    /// `(role, lines)`.
    pub fn info_lines(&self, store: &Store) -> (&'static str, String) {
        let mut out = String::new();
        if let Some(primary) = self.primary() {
            let link = self.link_status();
            let (host, port) = split_addr(&primary);
            let up = link.state == "connected";
            let last_io = link
                .last_io
                .map(|t| t.elapsed().as_secs() as i64)
                .unwrap_or(-1);
            let offset = store.oplog().last_id();
            out.push_str(&format!(
                "master_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\n\
                 master_last_io_seconds_ago:{last_io}\r\nmaster_sync_in_progress:{}\r\n\
                 slave_read_repl_offset:{offset}\r\nslave_repl_offset:{offset}\r\n\
                 slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n\
                 fjord_last_sync:{}\r\nfjord_full_syncs:{}\r\nfjord_incremental_syncs:{}\r\n",
                if up { "up" } else { "down" },
                u8::from(link.state == "sync"),
                link.last_sync.unwrap_or("none"),
                self.stats.syncs.with_label_values(&["full"]).get(),
                self.stats.syncs.with_label_values(&["incremental"]).get(),
            ));
        }
        let peers = self.peers();
        out.push_str(&format!("connected_slaves:{}\r\n", peers.len()));
        let last = store.oplog().last_id();
        for (i, p) in peers.iter().enumerate() {
            let state = if p.is_online() {
                "online"
            } else {
                "wait_bgsave"
            };
            out.push_str(&format!(
                "slave{i}:ip={},port={},state={state},offset={},lag={}\r\n",
                p.ip,
                p.port,
                p.acked(),
                if p.acked() >= last {
                    0
                } else {
                    p.seconds_since_ack()
                },
            ));
        }
        out.push_str(&format!(
            "fjord_insync_replicas:{}\r\nfjord_replica_acks:{}\r\nfjord_min_insync_replicas:{}\r\n",
            self.insync_count(),
            self.acks.acks().name(),
            self.acks.min_insync()
        ));
        let role = if self.primary().is_some() {
            "slave"
        } else {
            "master"
        };
        (role, out)
    }

    /// ROLE's reply, as Redis shapes it.
    pub fn role_reply(&self, store: &Store) -> fjord_common::Reply {
        use fjord_common::Reply;
        let offset = store.oplog().last_id() as i64;
        match self.primary() {
            Some(primary) => {
                let (host, port) = split_addr(&primary);
                let link = self.link_status();
                Reply::Array(vec![
                    Reply::text("slave"),
                    Reply::text(host),
                    Reply::Int(port.parse().unwrap_or(0)),
                    Reply::text(link.state),
                    Reply::Int(if link.state == "connected" {
                        offset
                    } else {
                        -1
                    }),
                ])
            }
            None => Reply::Array(vec![
                Reply::text("master"),
                Reply::Int(offset),
                Reply::Array(
                    self.peers()
                        .iter()
                        .filter(|p| p.is_online())
                        .map(|p| {
                            Reply::Array(vec![
                                Reply::text(&p.ip),
                                Reply::text(p.port.to_string()),
                                Reply::text(p.acked().to_string()),
                            ])
                        })
                        .collect(),
                ),
            ]),
        }
    }
}

/// Removes its replica from the primary's list when the link ends.
pub struct PeerGuard {
    pub peer: Arc<Peer>,
    repl: Arc<Replication>,
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        self.repl.leave(&self.peer, "link ended");
        let mut peers = self.repl.replicas.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|p| p.id != self.peer.id);
        self.repl.stats.replicas.set(peers.len() as i64);
    }
}

/// `host:port` → (`host`, `port`).
fn split_addr(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').unwrap_or((addr, "0"))
}
