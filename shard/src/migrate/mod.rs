//! Moving slots with their data, as the shards see it: a move is slot-filtered replication.
//!
//! The mover (`fjord-admin reshard`) tells the target `FJORD IMPORT <epoch> <source>
//! <slots>`. The target marks the slots `importing` at the move's epoch (refused if it holds
//! live keys in them), empties them of whatever an earlier attempt left, and pulls from the
//! source over a connection of its own (`FJORD SLOTSYNC`, [`source`]): a consistent snapshot
//! of the slots, then the source's oplog from the snapshot on, filtered to them. It applies
//! both through its own writer as its own writes ([`target`]), so they are durable and
//! acknowledged by its in-sync replicas like any write, and logged in its own oplog. Its
//! progress (`FJORD IMPORTS`) says through which of the source's ops it has applied
//! everything.
//!
//! The mover then freezes the slots on the source (writes refused, reads served), waits until
//! the target has applied the source's ops up to the freeze, sets the slots `gone` on the
//! source, then `owned` on the target: never two writable owners. Each of those is a write
//! on its shard, acknowledged by that shard's in-sync replicas, and epoch-checked, so any
//! step can be repeated after a crash. An import ends when its slots are no longer
//! `importing` at its epoch (owned, or given back by an abort); a broken link, a restarted
//! source or a failover of it starts the import over from a fresh snapshot.

pub mod source;
pub mod target;

use crate::cmd::Outcome;
use crate::server::Server;
use bytes::Bytes;
use fjord_common::metrics;
use fjord_common::number::{parse_i64, parse_usize};
use fjord_common::slotset::SlotSet;
use fjord_common::{error, Reply};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The import under way on this shard, or the last one (for `FJORD IMPORTS`), and the
/// series of moves in and out.
#[derive(Default)]
pub struct Imports {
    current: Mutex<Option<Arc<Import>>>,
    pub stats: Arc<MoveStats>,
}

/// The `fjord_shard_*` series of slot moves.
pub struct MoveStats {
    /// Entries and bytes of changes imported (snapshot and stream).
    pub keys: IntCounter,
    pub bytes: IntCounter,
    /// Imports started over (a broken link, a restarted or failed-over source).
    pub restarts: IntCounter,
    /// Slots being imported now.
    pub importing: IntGauge,
    /// How long slots stayed frozen on this shard before they were given up or taken back:
    /// the pause writes to them saw.
    pub frozen: Histogram,
    frozen_since: Mutex<Option<Instant>>,
}

impl Default for MoveStats {
    fn default() -> Self {
        Self {
            keys: IntCounter::new(
                "fjord_shard_import_keys_total",
                "Keys this shard imported from moving slots' sources (snapshot and stream)",
            )
            .expect("valid metric"),
            bytes: IntCounter::new(
                "fjord_shard_import_bytes_total",
                "Bytes of changes this shard imported from moving slots' sources",
            )
            .expect("valid metric"),
            restarts: IntCounter::new(
                "fjord_shard_import_restarts_total",
                "Imports that started over from a fresh snapshot (a broken link, a restarted or failed-over source)",
            )
            .expect("valid metric"),
            importing: IntGauge::new(
                "fjord_shard_importing_slots",
                "Slots this shard is importing now",
            )
            .expect("valid metric"),
            frozen: Histogram::with_opts(
                HistogramOpts::new(
                    "fjord_shard_slots_frozen_seconds",
                    "How long a batch of slots stayed frozen here before it was handed over or taken back (the pause its writes saw)",
                )
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
            )
            .expect("valid metric"),
            frozen_since: Mutex::new(None),
        }
    }
}

impl MoveStats {
    pub fn register(&self, registry: &Registry) {
        metrics::register(registry, self.keys.clone());
        metrics::register(registry, self.bytes.clone());
        metrics::register(registry, self.restarts.clone());
        metrics::register(registry, self.importing.clone());
        metrics::register(registry, self.frozen.clone());
    }

    /// Slots went frozen here.
    pub fn froze(&self) {
        *self.frozen_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Frozen slots were given up or taken back.
    pub fn thawed(&self) {
        if let Some(at) = self
            .frozen_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            self.frozen.observe(at.elapsed().as_secs_f64());
        }
    }
}

/// One import: what it pulls, from where, and how far it got.
pub struct Import {
    pub epoch: u64,
    pub slots: SlotSet,
    pub source: String,
    /// Keys per second the snapshot is applied at, at most.
    pub max_rate: Option<u64>,
    started: Instant,
    stop: watch::Sender<bool>,
    progress: Mutex<Progress>,
}

#[derive(Clone, Debug)]
struct Progress {
    /// `starting`, `snapshot`, `streaming`, `retrying`, then `done`, `stopped` or `failed`.
    state: &'static str,
    /// Entries put (snapshot and stream) and bytes of changes applied, this attempt.
    keys: u64,
    bytes: u64,
    /// Every change the source's ops up to this one made to the slots is applied here (and
    /// acknowledged by this shard's in-sync replicas); 0 until the snapshot is in.
    through: u64,
    attempts: u64,
    error: String,
}

impl Import {
    fn new(epoch: u64, slots: SlotSet, source: String, max_rate: Option<u64>) -> Self {
        Self {
            epoch,
            slots,
            source,
            max_rate,
            started: Instant::now(),
            stop: watch::channel(false).0,
            progress: Mutex::new(Progress {
                state: "starting",
                keys: 0,
                bytes: 0,
                through: 0,
                attempts: 0,
                error: String::new(),
            }),
        }
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_running(&self) -> bool {
        !matches!(self.progress().state, "done" | "stopped" | "failed")
    }

    /// A new attempt: from an empty slot set and a fresh snapshot.
    fn restart(&self) {
        let mut p = self.progress();
        p.state = "snapshot";
        p.keys = 0;
        p.bytes = 0;
        p.through = 0;
        p.attempts += 1;
    }

    fn set_state(&self, state: &'static str) {
        self.progress().state = state;
    }

    fn applied(&self, keys: u64, bytes: u64) {
        let mut p = self.progress();
        p.keys += keys;
        p.bytes += bytes;
    }

    fn set_through(&self, id: u64) {
        let mut p = self.progress();
        p.through = p.through.max(id);
    }

    fn keys(&self) -> u64 {
        self.progress().keys
    }

    fn failed_attempt(&self, why: String) {
        let mut p = self.progress();
        p.state = "retrying";
        p.error = why;
    }

    fn finish(&self, state: &'static str, why: Option<String>) {
        let mut p = self.progress();
        p.state = state;
        if let Some(why) = why {
            p.error = why;
        }
    }
}

impl Imports {
    /// `FJORD IMPORTS`: field-value pairs of the current or last import; empty if none.
    pub fn status(&self) -> Outcome {
        let Some(import) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return Reply::Array(Vec::new()).into();
        };
        let p = import.progress().clone();
        let text = |s: String| Reply::Bulk(Bytes::from(s));
        let pairs = [
            ("epoch", Reply::Int(import.epoch as i64)),
            ("slots", text(import.slots.to_string())),
            ("source", text(import.source.clone())),
            ("state", text(p.state.to_string())),
            ("keys", Reply::Int(p.keys as i64)),
            ("bytes", Reply::Int(p.bytes as i64)),
            ("through", Reply::Int(p.through as i64)),
            ("attempts", Reply::Int(p.attempts as i64)),
            ("error", text(p.error)),
            (
                "ms",
                Reply::Int(import.started.elapsed().as_millis() as i64),
            ),
        ];
        let mut out = Vec::with_capacity(pairs.len() * 2);
        for (name, value) in pairs {
            out.push(Reply::Bulk(Bytes::from_static(name.as_bytes())));
            out.push(value);
        }
        Reply::Array(out).into()
    }
}

/// The optional `MAXRATE <keys/s>` that ends `FJORD IMPORT` and `FJORD FLUSH`.
pub fn max_rate(args: &[Bytes]) -> Result<Option<u64>, Reply> {
    match args {
        [] => Ok(None),
        [word, rate] if word.eq_ignore_ascii_case(b"maxrate") => parse_usize(rate)
            .filter(|&r| r > 0)
            .map(|r| Some(r as u64))
            .ok_or_else(|| Reply::error(error::NOT_INTEGER)),
        _ => Err(Reply::error(error::SYNTAX)),
    }
}

/// `FJORD IMPORT <epoch> <source> <slots> [MAXRATE <keys/s>]` (`args` from the epoch on).
/// Answers once the slots are importing here (or with why not); the pull goes on in a task.
/// The same request again while it runs changes nothing; with another source (the source
/// failed over), or after the batch was given back (a rollback), it starts over.
pub fn import(server: &Server, args: &[Bytes]) -> Outcome {
    let parsed = (|| -> Result<(u64, String, SlotSet, Option<u64>), Reply> {
        let epoch = parse_i64(&args[0])
            .and_then(|e| u64::try_from(e).ok())
            .ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
        let source = String::from_utf8_lossy(&args[1]).into_owned();
        let slots = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| SlotSet::parse(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Reply::error(error::SLOT_OUT_OF_RANGE))?;
        Ok((epoch, source, slots, max_rate(&args[3..])?))
    })();
    let (epoch, source, slots, max_rate) = match parsed {
        Ok(p) => p,
        Err(reply) => return reply.into(),
    };
    if server.store.is_replica() {
        return Reply::error(error::READONLY).into();
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Reply::error("ERR FJORD IMPORT needs the shard's runtime").into();
    };
    let mut current = server
        .imports
        .current
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // One whose slots are no longer importing is over, whether or not its task noticed yet.
    let live =
        |i: &&Arc<Import>| i.is_running() && target::importing(&server.store, &i.slots, i.epoch);
    if let Some(running) = current.as_ref().filter(live) {
        if running.epoch != epoch || running.slots != slots {
            return Reply::error(format!(
                "ERR an import of slots {} (epoch {}) from {} is under way here",
                running.slots, running.epoch, running.source
            ))
            .into();
        }
        if running.source == source && running.max_rate == max_rate {
            return Reply::ok().into();
        }
    }
    if let Some(previous) = current.as_ref() {
        let _ = previous.stop.send(true);
    }
    tracing::info!(epoch, %slots, %source, ?max_rate, "importing slots");
    let import = Arc::new(Import::new(epoch, slots, source, max_rate));
    *current = Some(Arc::clone(&import));
    let importer = target::Importer {
        store: Arc::clone(&server.store),
        writer: server.writer.clone(),
        password: server.config.requirepass.clone(),
        stats: Arc::clone(&server.imports.stats),
    };
    let (began, answer) = tokio::sync::oneshot::channel();
    runtime.spawn(target::run(importer, import, began));
    Outcome::Later(runtime.spawn(async move {
        answer
            .await
            .unwrap_or_else(|_| Reply::error("ERR the import stopped before it began"))
    }))
}
