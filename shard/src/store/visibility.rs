//! Reads see a write only once it is acknowledged (MySQL's AFTER_SYNC): a write committed
//! here but not yet acknowledged by the in-sync replicas is in fjall and the row cache, and a
//! read that returned it would tell of a value a failover may lose.
//!
//! Each commit marks, before its batch becomes visible, the slots it touches with its op id
//! (a FLUSHALL marks them all); the acknowledgement gate records the last op whose replies it
//! released. A read of a key whose slot carries a mark above that waits until the mark is
//! released; a keyspace-wide read (DBSIZE, SCAN, KEYS, RANDOMKEY) waits for every commit made
//! before it. When nothing is held (no replicas, asynchronous acks, or all acknowledged) a
//! read costs one comparison of two atomics. The granularity is the slot, not the key: a read
//! may wait for an unrelated write to the same slot, never the other way round.
//!
//! A replica marks the ops it applies the same way; what releases them is its primary's
//! word (each OPS and PING frame carries the last op the primary acknowledged), so a read
//! through the proxy on a replica never sees a write a failover could take back either.
//! Only connections that bound their lag wait (`FJORD READLAG`, [`crate::cmd::wait_visible`]);
//! a client of the replica itself sees all it holds.

use fjord_common::SLOT_COUNT;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Visibility {
    /// The op id of the last commit that touched each slot.
    by_slot: Vec<AtomicU64>,
    /// The op id of the last commit that touched every slot (a FLUSHALL).
    all: AtomicU64,
    /// The highest op id marked.
    latest: AtomicU64,
    /// The highest op id whose group's replies were released (acknowledged).
    released: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Default for Visibility {
    fn default() -> Self {
        Self {
            by_slot: (0..SLOT_COUNT).map(|_| AtomicU64::new(0)).collect(),
            all: AtomicU64::new(0),
            latest: AtomicU64::new(0),
            released: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        }
    }
}

impl Visibility {
    /// Before a commit of op `id` becomes visible: it touches `slot`.
    pub(crate) fn mark(&self, slot: u16, id: u64) {
        self.by_slot[usize::from(slot)].fetch_max(id, Ordering::AcqRel);
        self.latest.fetch_max(id, Ordering::AcqRel);
    }

    /// Before a commit of op `id` that touches every slot becomes visible.
    pub(crate) fn mark_all(&self, id: u64) {
        self.all.fetch_max(id, Ordering::AcqRel);
        self.latest.fetch_max(id, Ordering::AcqRel);
    }

    /// The replies of the group of op `id` (and of every op before it) were released.
    pub(crate) fn release(&self, id: u64) {
        self.released.fetch_max(id, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// The last op released.
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Acquire)
    }

    /// Resolves at the next release (create it before checking what it waits for).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// After a full sync replaced the store: everything in it counts as written by op `id`
    /// of the new history, released once the primary says so; the marks and the release of
    /// the history before are void.
    pub(crate) fn restart_at(&self, id: u64) {
        for mark in &self.by_slot {
            mark.store(0, Ordering::Release);
        }
        self.all.store(id, Ordering::Release);
        self.latest.store(id, Ordering::Release);
        self.released.store(0, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Whether every marked commit is released: reads need not look further.
    pub fn all_released(&self) -> bool {
        self.latest.load(Ordering::Acquire) <= self.released.load(Ordering::Acquire)
    }

    /// The op a read of keys in `slots` (`None`: the whole keyspace) must wait for, if any.
    pub fn wait_for(&self, slots: Option<&mut dyn Iterator<Item = u16>>) -> Option<u64> {
        let released = self.released.load(Ordering::Acquire);
        if self.latest.load(Ordering::Acquire) <= released {
            return None;
        }
        let needed = match slots {
            None => self.latest.load(Ordering::Acquire),
            Some(slots) => slots
                .map(|s| self.by_slot[usize::from(s)].load(Ordering::Acquire))
                .max()
                .unwrap_or(0)
                .max(self.all.load(Ordering::Acquire)),
        };
        (needed > released).then_some(needed)
    }

    /// Waits until op `id` is released.
    pub async fn wait(&self, id: u64) {
        loop {
            let changed = self.changed.notified();
            if self.released.load(Ordering::Acquire) >= id {
                return;
            }
            changed.await;
        }
    }
}
