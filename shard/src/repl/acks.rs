//! The in-sync set and the acknowledgement gate: on a primary, a group's replies leave only
//! once every in-sync replica has acknowledged its op (Kafka's ISR; one round trip per group,
//! not per write), so a write acknowledged to a client is on every replica in the set.
//!
//! A replica joins the set once it is close behind (within [`JOIN_LAG`] ops): from then on
//! replies wait for it too, and it counts as in sync once it has acknowledged the op that
//! was the last when it joined (what was acknowledged without it). A replica whose
//! acknowledgement of a held op is later than `replica_ack_timeout_ms`, or whose link ends,
//! leaves the set, and the replies waiting for it go. `min_insync_replicas` sets how many
//! in-sync replicas client writes need; below it they fail with `NOREPLICAS`.
//!
//! Under a controller the set the controller recorded counts as well ([`super::control`]):
//! those replicas are waited for across their reconnections until the controller drops them.
//!
//! Reads wait for the acknowledgement of what they would see ([`crate::store::visibility`]):
//! the gate's releases are what makes a write visible.

use super::{Peer, Replication};
use crate::store::writer::ReplyGate;
use fjord_common::topology::ReplicaAcks;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The reply of a write committed here whose acknowledgement never came: the shard shut
/// down, or was deposed by a failover, first. It may be on a replica or not.
pub const ABANDONED: &str = "ERR the shard stopped before this write was acknowledged (shutdown, or deposed by a failover): its outcome is unknown";

/// Ops a replica may be behind when it joins the in-sync set.
pub const JOIN_LAG: u64 = 1000;
/// How often lagging replicas are looked for, besides at each commit and ack.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// How replies wait for replicas.
#[derive(Clone, Copy, Debug)]
pub struct AckOptions {
    /// Wait for in-sync replicas (false: acknowledge at once, as Redis does).
    pub sync: bool,
    /// In-sync replicas client writes need.
    pub min_insync: usize,
    /// How late an acknowledgement may be before its replica leaves the set.
    pub timeout: Duration,
}

impl Default for AckOptions {
    fn default() -> Self {
        Self {
            sync: true,
            min_insync: 0,
            timeout: Duration::from_millis(1000),
        }
    }
}

/// [`AckOptions`] as a running shard holds them: the controller applies the cluster file's
/// `replication` section to a primary it manages (`FJORD ACKS`), so both can change while it
/// serves.
pub(crate) struct AckPolicy {
    sync: AtomicBool,
    min_insync: AtomicUsize,
    timeout: Duration,
}

impl AckPolicy {
    pub(crate) fn new(options: AckOptions) -> Self {
        Self {
            sync: AtomicBool::new(options.sync),
            min_insync: AtomicUsize::new(options.min_insync),
            timeout: options.timeout,
        }
    }

    pub(crate) fn sync(&self) -> bool {
        self.sync.load(Ordering::Relaxed)
    }

    pub(crate) fn acks(&self) -> ReplicaAcks {
        if self.sync() {
            ReplicaAcks::Sync
        } else {
            ReplicaAcks::Async
        }
    }

    pub(crate) fn min_insync(&self) -> usize {
        self.min_insync.load(Ordering::Relaxed)
    }
}

/// Where a replica stands in the in-sync set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Membership {
    Out = 0,
    /// Replies wait for it; it has yet to acknowledge what was acknowledged without it.
    Joining = 1,
    InSync = 2,
}

/// Replies waiting for acknowledgements, oldest first.
pub(crate) struct Held {
    id: u64,
    at: Instant,
    release: Box<dyn FnOnce() + Send>,
}

/// The gate's series.
pub struct AckStats {
    pub insync: IntGauge,
    pub wait_seconds: Histogram,
    pub leaves: IntCounter,
    pub noreplicas: IntCounter,
}

impl Default for AckStats {
    fn default() -> Self {
        Self {
            insync: IntGauge::new(
                "fjord_shard_insync_replicas",
                "Replicas in the in-sync set (every acknowledged write is on each)",
            )
            .expect("valid metric"),
            wait_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "fjord_shard_ack_wait_duration_seconds",
                    "From a group's commit to its replies' release by the in-sync replicas' acknowledgements",
                )
                .buckets(fjord_common::metrics::LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            leaves: IntCounter::new(
                "fjord_shard_insync_leaves_total",
                "Replicas that left the in-sync set (late acknowledgement or link ended)",
            )
            .expect("valid metric"),
            noreplicas: IntCounter::new(
                "fjord_shard_noreplicas_total",
                "Writes refused with NOREPLICAS (fewer in-sync replicas than min_insync_replicas)",
            )
            .expect("valid metric"),
        }
    }
}

impl AckStats {
    pub fn register(&self, registry: &Registry) {
        fjord_common::metrics::register(registry, self.insync.clone());
        fjord_common::metrics::register(registry, self.wait_seconds.clone());
        fjord_common::metrics::register(registry, self.leaves.clone());
        fjord_common::metrics::register(registry, self.noreplicas.clone());
    }
}

impl Replication {
    /// Whether replies wait for the in-sync set, and how many members client writes need.
    pub fn ack_policy(&self) -> (ReplicaAcks, usize) {
        (self.acks.acks(), self.acks.min_insync())
    }

    /// Changes the policy while serving. Replies already held still wait for their
    /// acknowledgements (or the timeout): they were promised to the in-sync set.
    pub fn set_ack_policy(&self, acks: ReplicaAcks, min_insync: usize) {
        self.acks
            .sync
            .store(acks == ReplicaAcks::Sync, Ordering::Relaxed);
        self.acks.min_insync.store(min_insync, Ordering::Relaxed);
    }

    /// Whether client writes must be refused for want of in-sync replicas (counted once).
    pub fn refuses_writes(&self) -> bool {
        let min = self.acks.min_insync();
        if min == 0 || self.insync_count() >= min {
            return false;
        }
        self.ack_stats.noreplicas.inc();
        true
    }

    /// Replicas fully in sync.
    pub fn insync_count(&self) -> usize {
        self.peers()
            .iter()
            .filter(|p| p.membership() == Membership::InSync)
            .count()
    }

    /// The op every member of the set, and every replica the controller recorded in sync,
    /// has acknowledged (`None`: there is none to wait for).
    fn watermark(&self) -> Option<u64> {
        let members = self
            .peers()
            .iter()
            .filter(|p| p.membership() != Membership::Out)
            .map(|p| p.acked())
            .min();
        match (members, self.control.required_watermark()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Releases the held replies the set has acknowledged, oldest first.
    pub(crate) fn release_ready(&self) {
        let watermark = self.watermark().unwrap_or(u64::MAX);
        let ready: Vec<Held> = {
            let mut held = self.held();
            let n = held.iter().take_while(|h| h.id <= watermark).count();
            held.drain(..n).collect()
        };
        for h in ready {
            self.ack_stats
                .wait_seconds
                .observe(h.at.elapsed().as_secs_f64());
            (h.release)();
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, VecDeque<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A replica acknowledged ops up to `id` (and this primary's clock `stamp`) while the
    /// primary's last is `last_id`: it may
    /// join the set, or become in sync.
    pub(crate) fn on_ack(&self, peer: &Peer, id: u64, stamp: u64, last_id: u64) {
        peer.ack(id);
        self.control.note_ack(&peer.addr(), id, stamp);
        match peer.membership() {
            Membership::Out if peer.is_online() && last_id.saturating_sub(id) <= JOIN_LAG => {
                peer.join(last_id);
                tracing::info!(replica = %peer.ip, port = peer.port, "replica joining the in-sync set");
            }
            Membership::Joining if id >= peer.join_point() => {
                peer.set_membership(Membership::InSync);
                self.ack_stats.insync.set(self.insync_count() as i64);
                tracing::info!(replica = %peer.ip, port = peer.port, "replica in sync");
            }
            _ => {}
        }
        self.release_ready();
        self.acked.notify_waiters();
    }

    /// Takes a replica out of the set (its link ended, or it is too late), releasing what
    /// waited only for it.
    pub(crate) fn leave(&self, peer: &Peer, why: &str) {
        if peer.membership() == Membership::Out {
            return;
        }
        peer.set_membership(Membership::Out);
        self.ack_stats.leaves.inc();
        self.ack_stats.insync.set(self.insync_count() as i64);
        tracing::warn!(replica = %peer.ip, port = peer.port, acked = peer.acked(), reason = why, "replica left the in-sync set");
        self.release_ready();
    }

    /// Drops every held reply (their writes get [`ABANDONED`]): this shard was deposed, so
    /// no acknowledgement will release them.
    pub(crate) fn abandon_held(&self) {
        let dropped = std::mem::take(&mut *self.held()).len();
        if dropped > 0 {
            tracing::warn!(
                writes = dropped,
                "deposed: writes waiting for acknowledgement fail with an unknown outcome"
            );
        }
    }

    /// Takes out of the set every member that has not acknowledged a reply held longer than
    /// the timeout.
    pub(crate) fn drop_late_replicas(&self) {
        let oldest = self.held().front().map(|h| (h.id, h.at));
        let Some((id, at)) = oldest else {
            return;
        };
        if at.elapsed() < self.acks.timeout {
            return;
        }
        for peer in self.peers() {
            if peer.membership() != Membership::Out && peer.acked() < id {
                self.leave(&peer, "acknowledgement overdue");
            }
        }
    }
}

impl ReplyGate for Replication {
    fn wants_grouping(&self) -> bool {
        // The gauge is the count of streaming replicas, read without the list's lock.
        self.stats.replicas.get() > 0
    }

    fn hold(&self, id: u64, release: Box<dyn FnOnce() + Send>) {
        if !self.acks.sync() {
            release();
            return;
        }
        self.held().push_back(Held {
            id,
            at: Instant::now(),
            release,
        });
        // An ack may have come between the commit and now.
        self.release_ready();
        self.drop_late_replicas();
    }
}

/// Looks for late replicas every [`CHECK_EVERY`], so that a replica that stopped (and a
/// client waiting on it) is not left waiting for the next commit or ack.
pub async fn watch_lateness(
    repl: Arc<Replication>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => repl.drop_late_replicas(),
            _ = shutdown.changed() => return,
        }
    }
}

impl Peer {
    pub fn membership(&self) -> Membership {
        match self.membership.load(Ordering::Acquire) {
            1 => Membership::Joining,
            2 => Membership::InSync,
            _ => Membership::Out,
        }
    }

    fn set_membership(&self, m: Membership) {
        self.membership.store(m as u8, Ordering::Release);
    }

    fn join(&self, point: u64) {
        self.join_point.store(point, Ordering::Release);
        self.set_membership(Membership::Joining);
    }

    fn join_point(&self) -> u64 {
        self.join_point.load(Ordering::Acquire)
    }
}
