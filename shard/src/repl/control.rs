//! What a controller (`fjord-admin controller`) tells a shard, and what the shard promises in
//! return, so that a failover never loses an acknowledged write.
//!
//! - **Terms.** Every controller command carries a term, allocated by compare-and-swap on the
//!   topology store. The shard persists the highest it has seen (`meta` key
//!   `controllerterm`) before it acts, and refuses anything older: a deposed controller, or
//!   one that read an old topology, can do nothing.
//! - **Leadership terms.** Controllers elected through etcd also speak for their election:
//!   each connection of theirs starts with `FJORD LEADER n`, n the create revision of the
//!   leadership key (it grows with each election). The shard persists the highest n it has
//!   seen (`meta` key `controllerleader`) and refuses the controller commands of a
//!   connection whose n is older. The new leader probes every shard within its first round,
//!   so a deposed leader that wakes up is refused there even before a shard's term moved.
//! - **Fencing.** `FJORD FENCE term` stops a shard serving clients and, on a replica, ends its
//!   link to any primary of an older term. Acknowledgements are sent under [`Control::ack_lock`]
//!   and the fence takes it, so once FENCE has replied no acknowledgement leaves for the old
//!   primary: that primary can acknowledge no further write (each needs every in-sync
//!   replica), and whichever fenced replica is promoted holds every write it acknowledged.
//! - **Serving.** A shard that has ever had a controller starts fenced after a restart: it
//!   serves again only once the controller confirms it (`FJORD PROMOTE` at its term: still the
//!   primary) or attaches it to the new primary (`FJORD FOLLOW`). A shard never managed serves
//!   at once, as a plain `fjord-shard` always has.
//! - **Leases.** A managed primary with recorded in-sync replicas serves (reads included) only
//!   while each of them has acknowledged one of its clock stamps within
//!   [`LEASE`](fjord_common::repl::LEASE). Fenced replicas acknowledge nothing, so a primary
//!   that froze and woke up after its failover stops serving within the lease; the
//!   controller waits the lease out (plus a margin for clock rates) before it promotes.
//! - **The recorded in-sync set.** A managed primary waits for every replica the controller
//!   recorded as in sync (`FJORD ISR`), by address, across that replica's reconnections, and
//!   never drops one on its own: the controller records a drop in the topology store first,
//!   then tells the primary. So a replica the record calls in sync — the only ones the
//!   controller promotes — holds every acknowledged write. (An unmanaged primary drops a late
//!   replica itself, as before: nobody would promote it.)

use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;

/// The error a shard waiting for its controller gives data commands. Cluster clients retry
/// `TRYAGAIN`; the proxy passes it on.
pub const FENCED: &str =
    "TRYAGAIN this shard waits for its controller (fenced for a failover, or restarted)";

/// The error of a managed primary whose lease ran out.
pub const NO_LEASE: &str =
    "TRYAGAIN this primary's lease ran out: its in-sync replicas have not acknowledged it lately";

/// A shard's standing with its controller.
pub struct Control {
    term: AtomicU64,
    /// The highest leadership term of an elected controller seen; locked while one is
    /// recorded, so that the store keeps the highest.
    leader: Mutex<u64>,
    serving: AtomicBool,
    /// The term, watched by the replication link: a fence ends a link to an older primary.
    changed: watch::Sender<u64>,
    /// Held while an acknowledgement goes to the primary, and while a fence is taken.
    pub(crate) ack_lock: tokio::sync::Mutex<()>,
    /// Replicas (`ip:port` as this primary sees them) whose acknowledgement every write needs.
    required: Mutex<Vec<String>>,
    /// The last op and stamp each replica address acknowledged, over all its links.
    acked_by_addr: Mutex<HashMap<String, Acked>>,
    /// As a replica: when ([`stamp`]) it last sent its primary an acknowledgement (0: not
    /// since it started). A fence reports how long ago that was: the primary's lease ran
    /// from a stamp it read before, so the controller need only wait out the rest.
    last_ack_sent: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct Acked {
    id: u64,
    stamp: u64,
}

fn deposed(leader: u64, seen: u64) -> String {
    format!(
        "ERR deposed controller: leadership term {leader} is older than {seen}, which this shard has seen"
    )
}

/// This process's monotonic clock in ms, for lease stamps (only ever compared with itself).
pub fn stamp() -> u64 {
    // Starts at 1: a stamp of 0 means "none seen".
    fjord_common::process::uptime_ms() + 1
}

impl Control {
    /// The standing of a shard whose store holds controller term `term` and leadership term
    /// `leader`.
    pub fn new(term: u64, leader: u64) -> Self {
        Self {
            term: AtomicU64::new(term),
            leader: Mutex::new(leader),
            serving: AtomicBool::new(term == 0),
            changed: watch::Sender::new(term),
            ack_lock: tokio::sync::Mutex::new(()),
            required: Mutex::new(Vec::new()),
            acked_by_addr: Mutex::new(HashMap::new()),
            last_ack_sent: AtomicU64::new(0),
        }
    }

    /// Notes that an acknowledgement just left for the primary.
    pub(crate) fn ack_sent(&self) {
        self.last_ack_sent.store(stamp(), Ordering::Release);
    }

    /// Milliseconds since the last acknowledgement left for the primary, on this shard's
    /// clock; `None` if none has since this process started.
    pub fn since_ack_sent_ms(&self) -> Option<u64> {
        match self.last_ack_sent.load(Ordering::Acquire) {
            0 => None,
            at => Some(stamp().saturating_sub(at)),
        }
    }

    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }

    /// Whether a controller manages this shard (it has been given a term).
    pub fn is_managed(&self) -> bool {
        self.term() > 0
    }

    /// Whether clients are served (false while fenced).
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Takes `term` as the newest, persisted first; an older one is refused.
    pub fn accept(&self, store: &Store, term: u64) -> Result<(), String> {
        let current = self.term();
        if term < current {
            return Err(format!(
                "ERR stale controller term {term}: this shard has seen term {current}"
            ));
        }
        if term == 0 {
            return Err("ERR controller terms start at 1".into());
        }
        if term > current {
            store
                .set_controller_term(term)
                .map_err(|e| format!("ERR recording the controller term: {e}"))?;
            self.term.store(term, Ordering::Release);
            self.changed.send_replace(term);
        }
        Ok(())
    }

    /// `FJORD LEADER leader`: refused if older than one seen; recorded (durably) if newer.
    pub fn accept_leader(&self, store: &Store, leader: u64) -> Result<(), String> {
        let mut seen = self.leader.lock().unwrap_or_else(|e| e.into_inner());
        if leader < *seen {
            return Err(deposed(leader, *seen));
        }
        if leader > *seen {
            store
                .set_controller_leader(leader)
                .map_err(|e| format!("ERR recording the leadership term: {e}"))?;
            *seen = leader;
            tracing::info!(
                leader,
                "an elected controller speaks for a new leadership term"
            );
        }
        Ok(())
    }

    /// Refuses a controller command from a connection that speaks for an older leadership
    /// term than one seen (one that declared none is judged by the shard terms alone).
    pub fn check_leader(&self, declared: Option<u64>) -> Result<(), String> {
        let seen = self.leader();
        match declared {
            Some(leader) if leader < seen => Err(deposed(leader, seen)),
            _ => Ok(()),
        }
    }

    /// The highest leadership term seen (0: none).
    pub fn leader(&self) -> u64 {
        *self.leader.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses `term` unless it is the one in force (commands that act within a term).
    pub fn check_current(&self, term: u64) -> Result<(), String> {
        match self.term() {
            t if t == term => Ok(()),
            t => Err(format!(
                "ERR controller term {term} is not this shard's term {t}"
            )),
        }
    }

    pub fn set_required(&self, addrs: Vec<String>) {
        *self.required.lock().unwrap_or_else(|e| e.into_inner()) = addrs;
    }

    pub fn required(&self) -> Vec<String> {
        self.required
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn note_ack(&self, addr: &str, id: u64, stamp: u64) {
        let mut acked = self.acked_by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let entry = acked.entry(addr.to_string()).or_default();
        entry.id = entry.id.max(id);
        entry.stamp = entry.stamp.max(stamp);
    }

    /// Whether this shard may serve as a primary now: it is not managed, or it has no
    /// recorded in-sync replica (none could be promoted in its place), or each of them has
    /// acknowledged a stamp younger than [`LEASE`](fjord_common::repl::LEASE).
    pub fn holds_lease(&self) -> bool {
        let required = self.required.lock().unwrap_or_else(|e| e.into_inner());
        if required.is_empty() {
            return true;
        }
        let acked = self.acked_by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let lease = fjord_common::repl::LEASE.as_millis() as u64;
        let now = stamp();
        required.iter().all(|a| {
            acked
                .get(a)
                .is_some_and(|x| x.stamp > 0 && x.stamp + lease > now)
        })
    }

    /// A replica that starts a full sync no longer holds what it acknowledged before.
    pub(crate) fn forget_acks(&self, addr: &str) {
        self.acked_by_addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(addr);
    }

    /// The op every required replica has acknowledged (`None`: none is required).
    pub(crate) fn required_watermark(&self) -> Option<u64> {
        let required = self.required.lock().unwrap_or_else(|e| e.into_inner());
        let acked = self.acked_by_addr.lock().unwrap_or_else(|e| e.into_inner());
        required
            .iter()
            .map(|a| acked.get(a).map_or(0, |x| x.id))
            .min()
    }
}
