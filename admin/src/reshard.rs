//! `reshard`: moves slots with their data from one shard to another while the cluster serves,
//! and `fix`, which finishes or rolls back a move a crash interrupted.
//!
//! The move is recorded in the topology's `moving` section first, at the version its record
//! is published under, which is also the epoch of every slot-state change the move makes.
//! Then, a batch of slots at a time (the shards' side is `fjord_shard::migrate`):
//!
//! 1. the target imports the batch (`FJORD IMPORT`): a snapshot, then the source's oplog;
//! 2. once it lags the source by a few ops, the source freezes the batch (writes wait in the
//!    proxies, reads go on), and the target drains to the source's last op;
//! 3. the source gives the batch up (`gone`, naming the target), then the target takes it
//!    (`owned`): the point of no return is the first of these;
//! 4. the topology is published with the batch moved (version + 1), and the source deletes
//!    the batch's keys through its writer, replicated like any write.
//!
//! Every step is a write acknowledged by the shard's in-sync replicas before the next, and
//! the source's steps carry its term, so a failover in between makes the mover read the
//! topology again. A step that fails before the point of no return rolls the batch back
//! (the source owns it again, the target drops what it imported) and tries it again; after
//! it, the step is repeated until it holds. `fix` decides the same from the shards' own slot
//! states: a batch the source has given up is finished, any other is rolled back. A running
//! mover renews a lease (the time of the file `FILE.move-lease`); once it is older than the
//! controller's `--abandoned-move-secs`, the controller runs `fix` itself.

use crate::node::{self, Node};
use crate::store::{Change, Plan, Store};
use anyhow::{anyhow, bail, Context, Result};
use fjord_common::slotset::SlotSet;
use fjord_common::topology::Topology;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What `reshard` was asked.
pub struct Request {
    pub from: String,
    pub to: String,
    pub slots: Selection,
    pub max_rate: Option<u64>,
    /// Most slots frozen at once.
    pub batch: usize,
    /// Source ops the target may lag by when the batch freezes.
    pub max_lag_ops: u64,
}

pub enum Selection {
    /// This many slots of the source (its first ones).
    Count(usize),
    Slots(SlotSet),
}

/// What a finished move did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub slots: String,
    pub epoch: u64,
    pub keys: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub keys_per_second: f64,
    pub batches: usize,
    /// The longest time a batch's writes waited (freeze to owned), in ms.
    pub max_pause_ms: f64,
    /// Batches started over after a failure before their hand-over.
    pub retries: usize,
}

/// How often the mover looks at the target's progress while it imports.
const POLL: Duration = Duration::from_millis(20);
/// How long a frozen batch may take to drain before the freeze is undone and the batch
/// tried again.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Attempts at a batch before the move gives up (rolled back).
const MAX_ATTEMPTS: usize = 5;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a step of the move is repeated while its shard does not answer (restarting,
/// failing over) before the mover gives up and leaves the rest to `fix`.
const STEP_PATIENCE: Duration = Duration::from_secs(60);
/// How long the target's import may keep failing before the batch is rolled back.
const STALLED: Duration = Duration::from_secs(30);

/// The shards of a move as the topology names them now.
struct Ends {
    source: String,
    target: String,
}

/// Connections to shards, by address.
struct Shards {
    password: Option<String>,
    nodes: HashMap<String, Node>,
}

impl Shards {
    fn new(password: Option<String>) -> Self {
        Self {
            password,
            nodes: HashMap::new(),
        }
    }

    async fn call(
        &mut self,
        addr: &str,
        args: &[&str],
    ) -> Result<redis_protocol::resp2::types::BytesFrame> {
        let node = self
            .nodes
            .entry(addr.to_string())
            .or_insert_with(|| Node::new(addr, self.password.clone()));
        node.call(args, CALL_TIMEOUT)
            .await
            .map_err(|e| anyhow!("{addr}: {} → {e}", args.join(" ")))
    }

    async fn ok(&mut self, addr: &str, args: &[&str]) -> Result<()> {
        self.call(addr, args).await.map(|_| ())
    }

    async fn status(&mut self, addr: &str) -> Result<node::Status> {
        node::Status::parse(self.call(addr, &["FJORD", "STATUS"]).await?)
    }

    /// The target's `FJORD IMPORTS`.
    async fn import(&mut self, addr: &str) -> Result<ImportStatus> {
        let items = node::array(self.call(addr, &["FJORD", "IMPORTS"]).await?)?;
        let mut s = ImportStatus::default();
        let mut it = items.iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match node::text(k)?.as_str() {
                "epoch" => s.epoch = node::number(v)?,
                "slots" => s.slots = node::text(v)?,
                "state" => s.state = node::text(v)?,
                "keys" => s.keys = node::number(v)?,
                "bytes" => s.bytes = node::number(v)?,
                "through" => s.through = node::number(v)?,
                "error" => s.error = node::text(v)?,
                _ => {}
            }
        }
        Ok(s)
    }

    /// Slots of `slots` the shard at `addr` has in `state` at `epoch`.
    async fn in_state(
        &mut self,
        addr: &str,
        slots: &SlotSet,
        state: &str,
        epoch: u64,
    ) -> Result<SlotSet> {
        let mut found = Vec::new();
        for run in node::array(self.call(addr, &["FJORD", "SLOTS"]).await?)? {
            let (run, st, ep) = node::slot_run(run).with_context(|| addr.to_string())?;
            if st == state && ep == epoch {
                found.extend_from_slice(run.ranges());
            }
        }
        Ok(SlotSet::from_ranges(found).intersect(slots))
    }
}

#[derive(Debug, Default)]
struct ImportStatus {
    epoch: u64,
    slots: String,
    state: String,
    keys: u64,
    bytes: u64,
    through: u64,
    error: String,
}

/// Checks the request against the topology; the plan's epoch is set when it is recorded.
pub fn check(store: &Store, req: &Request) -> Result<Plan> {
    let doc = store.load()?;
    let t = &doc.topology;
    if let Some(m) = &t.moving {
        bail!(
            "a move of slots {} from {} to {} (epoch {}) is under way or was interrupted: wait for it, or run `fjord-admin fix`",
            m.slots,
            t.shards[m.from].id,
            t.shards[m.to].id,
            m.epoch
        );
    }
    let shard = |id: &str| {
        t.shards
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| anyhow!("no shard {id:?} in {} (shards: {})", store, ids(t)))
    };
    let (from, to) = (shard(&req.from)?, shard(&req.to)?);
    if from.id == to.id {
        bail!("--from and --to are the same shard ({})", from.id);
    }
    let slots = match &req.slots {
        Selection::Slots(s) => {
            let foreign = s.intersect(&from.slots.complement());
            if !foreign.is_empty() {
                bail!("shard {} does not own slots {foreign}", from.id);
            }
            s.clone()
        }
        Selection::Count(n) => {
            if *n == 0 || *n > from.slots.len() {
                bail!(
                    "--slots {n}: shard {} owns {} slots",
                    from.id,
                    from.slots.len()
                );
            }
            let first: Vec<_> = from
                .slots
                .slots()
                .take(*n)
                .map(|s| fjord_common::slotset::SlotRange { start: s, end: s })
                .collect();
            SlotSet::from_ranges(first)
        }
    };
    if slots.is_empty() {
        bail!("no slots to move");
    }
    Ok(Plan {
        from: from.id.clone(),
        to: to.id.clone(),
        slots,
        epoch: 0,
    })
}

/// Records the move in the topology, at the version that record is published under (its
/// epoch), unless another move was recorded meanwhile or the slots moved.
pub fn record(store: &Store, plan: Plan) -> Result<Plan> {
    let mut recorded = None;
    let (_, written) = store.update(|e| {
        if e.has_moving() || !e.owns(&plan.from, &plan.slots)? {
            return Ok(Change::Skip);
        }
        let plan = Plan {
            epoch: e.version() + 1,
            ..plan.clone()
        };
        e.set_moving(Some(&plan));
        recorded = Some(plan);
        Ok(Change::Write)
    })?;
    match recorded.filter(|_| written) {
        Some(plan) => Ok(plan),
        None => bail!("another move was recorded meanwhile, or the slots moved: look with `fjord-admin check`"),
    }
}

fn ids(t: &Topology) -> String {
    t.shards
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The move's shards' primaries as the topology names them now.
fn ends(store: &Store, plan: &Plan) -> Result<Ends> {
    let doc = store.load()?;
    let addr = |id: &str| {
        doc.topology
            .shards
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.addr.clone())
            .ok_or_else(|| anyhow!("shard {id} is no longer in the topology"))
    };
    Ok(Ends {
        source: addr(&plan.from)?,
        target: addr(&plan.to)?,
    })
}

/// Performs a recorded move, batch by batch, and removes its record.
pub async fn run(
    store: &Store,
    plan: &Plan,
    req: &Request,
    password: Option<String>,
) -> Result<Report> {
    let _lease = store.mover_lease()?;
    let mut shards = Shards::new(password);
    let started = Instant::now();
    let mut report = Report {
        from: plan.from.clone(),
        to: plan.to.clone(),
        slots: plan.slots.to_string(),
        epoch: plan.epoch,
        ..Report::default()
    };
    let all: Vec<u16> = plan.slots.slots().collect();
    let batches: Vec<SlotSet> = all
        .chunks(req.batch.max(1))
        .map(|c| {
            SlotSet::from_ranges(
                c.iter()
                    .map(|&s| fjord_common::slotset::SlotRange { start: s, end: s }),
            )
        })
        .collect();
    let count = batches.len();
    for (i, batch) in batches.into_iter().enumerate() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match move_batch(store, plan, req, &mut shards, &batch, (i + 1, count)).await {
                Ok(moved) => {
                    report.keys += moved.keys;
                    report.bytes += moved.bytes;
                    report.max_pause_ms = report.max_pause_ms.max(moved.pause.as_secs_f64() * 1e3);
                    break;
                }
                Err(Failure::Before(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), batch = %batch, attempt, "the batch failed before its hand-over; rolling it back");
                    roll_back(store, plan, &mut shards, &batch, plan.epoch)
                        .await
                        .context("rolling the batch back (run `fjord-admin fix`)")?;
                    if store.abort_requested()? {
                        finish_record(store).await?;
                        bail!("aborted by `reshard --abort`: batch {batch} is rolled back; {} slots moved before it", moved_before(plan, &batch));
                    }
                    if attempt >= MAX_ATTEMPTS {
                        finish_record(store).await?;
                        return Err(e.context(format!("batch {batch} failed {attempt} times; it is rolled back, and the slots moved before it stay moved")));
                    }
                    report.retries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(Failure::After(e)) => {
                    return Err(e.context(
                        "the batch was handed over but not finished: run `fjord-admin fix`",
                    ));
                }
            }
        }
        report.batches += 1;
    }
    finish_record(store).await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.keys_per_second = report.keys as f64 / report.seconds.max(1e-9);
    Ok(report)
}

/// How many slots of the move come before `batch` (moved already).
fn moved_before(plan: &Plan, batch: &SlotSet) -> usize {
    let first = batch.slots().next().unwrap_or(0);
    plan.slots.slots().take_while(|&s| s < first).count()
}

/// Removes the `moving` record.
async fn finish_record(store: &Store) -> Result<()> {
    store.update(|e| {
        e.set_moving(None);
        Ok(Change::Write)
    })?;
    Ok(())
}

enum Failure {
    /// Before the source gave the batch up: it can be rolled back.
    Before(anyhow::Error),
    /// After: it can only be finished.
    After(anyhow::Error),
}

struct Moved {
    keys: u64,
    bytes: u64,
    pause: Duration,
}

async fn move_batch(
    store: &Store,
    plan: &Plan,
    req: &Request,
    shards: &mut Shards,
    batch: &SlotSet,
    (n, of): (usize, usize),
) -> Result<Moved, Failure> {
    let before = Failure::Before;
    let ends = ends(store, plan).map_err(before)?;
    let epoch = plan.epoch.to_string();
    let slots = batch.to_string();
    let term = shards
        .status(&ends.source)
        .await
        .map_err(before)?
        .oplog_term
        .to_string();
    let mut import = vec!["FJORD", "IMPORT", &epoch, &ends.source, &slots];
    let rate = req.max_rate.map(|r| r.to_string());
    if let Some(rate) = &rate {
        import.extend(["MAXRATE", rate]);
    }
    // What the copy will hold, for the progress's ETA (writes meanwhile change it a little).
    let total = match shards
        .call(&ends.source, &["FJORD", "DBSIZE", &slots])
        .await
    {
        Ok(frame) => node::number(&frame).ok(),
        Err(_) => None,
    };
    shards.ok(&ends.target, &import).await.map_err(before)?;
    // 1. Until the target follows the source closely.
    let mut progress = Progress::new(format!("batch {n}/{of} ({} slots)", batch.len()), total);
    let started = Instant::now();
    let mut retrying_since: Option<Instant> = None;
    let status = loop {
        if aborted(store)? {
            return Err(before(anyhow!("aborted (reshard --abort)")));
        }
        let s = shards.import(&ends.target).await.map_err(before)?;
        if s.epoch != plan.epoch || s.slots != slots {
            return Err(before(anyhow!(
                "the target runs another import ({} of epoch {})",
                s.slots,
                s.epoch
            )));
        }
        if matches!(s.state.as_str(), "failed" | "stopped" | "done") {
            return Err(before(anyhow!(
                "the target's import {}: {}",
                s.state,
                s.error
            )));
        }
        if s.state != "retrying" {
            retrying_since = None;
        } else if retrying_since.get_or_insert_with(Instant::now).elapsed() > STALLED {
            return Err(before(anyhow!(
                "the target's import has been failing for {} s: {}",
                STALLED.as_secs(),
                s.error
            )));
        }
        let last = shards.status(&ends.source).await.map_err(before)?.last_id;
        let lag = last.saturating_sub(s.through);
        if s.state == "streaming" && lag <= req.max_lag_ops {
            break s;
        }
        progress.show(&s, lag, started.elapsed());
        tokio::time::sleep(POLL).await;
    };
    progress.done();
    // 2. Freeze, then drain to the source's last op.
    let frozen_at = Instant::now();
    shards
        .ok(
            &ends.source,
            &[
                "FJORD", "SETSLOTS", &epoch, "frozen", "-", &slots, "TERM", &term,
            ],
        )
        .await
        .map_err(before)?;
    let last = shards.status(&ends.source).await.map_err(before)?.last_id;
    let drained = loop {
        let s = shards.import(&ends.target).await.map_err(before)?;
        if s.through >= last {
            break s;
        }
        if s.state != "streaming" || frozen_at.elapsed() > DRAIN_LIMIT {
            let why = anyhow!(
                "the target did not drain to op {last} (at {}, {}: {})",
                s.through,
                s.state,
                s.error
            );
            return Err(before(why));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    if aborted(store)? {
        return Err(before(anyhow!("aborted (reshard --abort)")));
    }
    // 3. The source gives the batch up, then the target takes it.
    shards
        .ok(
            &ends.source,
            &[
                "FJORD",
                "SETSLOTS",
                &epoch,
                "gone",
                &ends.target,
                &slots,
                "TERM",
                &term,
            ],
        )
        .await
        .map_err(before)?;
    let after = Failure::After;
    take(store, plan, shards, batch).await.map_err(after)?;
    let pause = frozen_at.elapsed();
    // 4. Publish, then delete the batch on the source.
    publish(store, plan, batch).map_err(after)?;
    delete_on_source(store, plan, shards, batch, req.max_rate)
        .await
        .map_err(after)?;
    tracing::info!(batch = format!("{n}/{of}"), slots = %batch, keys = drained.keys.max(status.keys), pause_ms = format!("{:.1}", pause.as_secs_f64() * 1e3), "batch moved");
    Ok(Moved {
        keys: drained.keys,
        bytes: drained.bytes,
        pause,
    })
}

/// A batch's copy as the operator sees it: a line redrawn in place on a terminal (keys, MB,
/// rate, ETA), a log line a second otherwise.
struct Progress {
    what: String,
    total: Option<u64>,
    terminal: bool,
    shown: Option<Instant>,
}

impl Progress {
    fn new(what: String, total: Option<u64>) -> Self {
        use std::io::IsTerminal;
        Self {
            what,
            total,
            terminal: std::io::stderr().is_terminal(),
            shown: None,
        }
    }

    fn show(&mut self, s: &ImportStatus, lag: u64, elapsed: Duration) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        if self.shown.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        self.shown = Some(Instant::now());
        let rate = s.keys as f64 / elapsed.as_secs_f64().max(1e-3);
        let eta = match self.total {
            Some(total) if rate > 0.0 => {
                format!("{:.0} s", total.saturating_sub(s.keys) as f64 / rate)
            }
            _ => "?".into(),
        };
        let total = self.total.map_or("?".to_string(), |t| t.to_string());
        let mb = s.bytes as f64 / 1e6;
        // Until the snapshot is in, the target has applied none of the source's ops.
        let lag = if s.state == "streaming" {
            lag.to_string()
        } else {
            "-".into()
        };
        if self.terminal {
            use std::io::Write;
            eprint!("\r{}: {} {}/{total} keys, {mb:.1} MB, {rate:.0} keys/s, ETA {eta}, lag {lag} ops   ", self.what, s.state, s.keys);
            let _ = std::io::stderr().flush();
        } else {
            tracing::info!(batch = %self.what, state = %s.state, keys = s.keys, of = %total, mb = format!("{mb:.1}"), keys_per_s = rate as u64, eta = %eta, lag_ops = %lag, error = %s.error, "importing");
        }
    }

    fn done(&self) {
        if self.terminal && self.shown.is_some() {
            eprintln!();
        }
    }
}

fn aborted(store: &Store) -> Result<bool, Failure> {
    store.abort_requested().map_err(Failure::Before)
}

/// Which end of a move a step is sent to.
#[derive(Clone, Copy)]
enum End {
    Source,
    Target,
}

/// Sends a step to one end of the move until it holds, for up to [`STEP_PATIENCE`]: the
/// shard may be restarting or failing over, so its address is read from the topology
/// again each time. Every step is idempotent.
async fn repeat(
    store: &Store,
    plan: &Plan,
    shards: &mut Shards,
    end: End,
    args: &[&str],
) -> Result<()> {
    let deadline = Instant::now() + STEP_PATIENCE;
    loop {
        let ends = ends(store, plan)?;
        let addr = match end {
            End::Source => ends.source,
            End::Target => ends.target,
        };
        match shards.ok(&addr, args).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %format!("{e:#}"), "a step of the move did not hold yet; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The target owns the batch.
async fn take(store: &Store, plan: &Plan, shards: &mut Shards, batch: &SlotSet) -> Result<()> {
    let (epoch, slots) = (plan.epoch.to_string(), batch.to_string());
    let args = ["FJORD", "SETSLOTS", &epoch, "owned", "-", &slots];
    repeat(store, plan, shards, End::Target, &args).await
}

/// The topology with `batch` moved.
fn publish(store: &Store, plan: &Plan, batch: &SlotSet) -> Result<()> {
    store.update(|e| {
        let moved = e.owns(&plan.to, batch)?;
        if moved {
            return Ok(Change::Skip);
        }
        e.move_slots(&plan.from, &plan.to, batch)?;
        Ok(Change::Write)
    })?;
    Ok(())
}

/// Deletes the batch's keys on the source (through its writer: its replicas follow), so the
/// slots can move straight back; at most `max_rate` keys/s, as the copy.
async fn delete_on_source(
    store: &Store,
    plan: &Plan,
    shards: &mut Shards,
    batch: &SlotSet,
    max_rate: Option<u64>,
) -> Result<()> {
    let slots = batch.to_string();
    let rate = max_rate.map(|r| r.to_string());
    let mut flush = vec!["FJORD", "FLUSH", &slots];
    if let Some(rate) = &rate {
        flush.extend(["MAXRATE", rate]);
    }
    repeat(store, plan, shards, End::Source, &flush).await
}

/// Undoes a batch that was not handed over: the source owns it again (if it froze it), the
/// target gives it back and drops what it imported. At the move's epoch when the mover does
/// it (it may try the batch again); `fix` uses the next one, so that a mover it took over
/// from, should it wake up, has every further step refused.
async fn roll_back(
    store: &Store,
    plan: &Plan,
    shards: &mut Shards,
    batch: &SlotSet,
    epoch: u64,
) -> Result<()> {
    let (epoch, slots) = (epoch.to_string(), batch.to_string());
    // Without a term: whoever is the source's primary now takes the batch back.
    let owned = ["FJORD", "SETSLOTS", &epoch, "owned", "-", &slots];
    repeat(store, plan, shards, End::Source, &owned).await?;
    let source = ends(store, plan)?.source;
    let gone = ["FJORD", "SETSLOTS", &epoch, "gone", &source, &slots];
    repeat(store, plan, shards, End::Target, &gone).await?;
    repeat(
        store,
        plan,
        shards,
        End::Target,
        &["FJORD", "FLUSH", &slots],
    )
    .await
}

/// Tells each primary which slots are others': a slot it still holds as never moved (owned
/// at epoch 0) but the topology gives another shard becomes `gone` with that shard's address,
/// at the topology's version. Then a command for it that reaches this shard (a hand-edited
/// or very old topology) is refused and sent on instead of being served here. A slot where it
/// holds keys is left as it is and reported (`fjord-admin check` shows it too).
pub async fn claim_ownership(store: &Store, password: Option<String>) -> Result<()> {
    let t = store.load()?.topology;
    let mut shards = Shards::new(password);
    let epoch = t.version.max(1).to_string();
    for s in &t.shards {
        let never_moved = shards
            .in_state(&s.addr, &s.slots.complement(), "owned", 0)
            .await?;
        for other in t.shards.iter().filter(|o| o.id != s.id) {
            let theirs = never_moved.intersect(&other.slots);
            if theirs.is_empty() {
                continue;
            }
            let slots = theirs.to_string();
            let held = shards.call(&s.addr, &["FJORD", "DBSIZE", &slots]).await?;
            if node::number(&held)? > 0 {
                tracing::warn!(shard = %s.id, slots = %theirs, owner = %other.id, "holds keys of slots the topology gives another shard; left as it is");
                continue;
            }
            let args = ["FJORD", "SETSLOTS", &epoch, "gone", &other.addr, &slots];
            shards.ok(&s.addr, &args).await?;
        }
    }
    Ok(())
}

/// `fix`: finishes what the source gave up, rolls back the rest, and removes the record.
pub async fn fix(store: &Store, password: Option<String>) -> Result<Option<String>> {
    let doc = store.load()?;
    let Some(m) = doc.topology.moving.clone() else {
        return Ok(None);
    };
    let t = &doc.topology;
    let plan = Plan {
        from: t.shards[m.from].id.clone(),
        to: t.shards[m.to].id.clone(),
        slots: m.slots.clone(),
        epoch: m.epoch,
    };
    let mut shards = Shards::new(password);
    let ends = ends(store, &plan)?;
    let unpublished = plan.slots.intersect(&t.shards[m.from].slots);
    let published = plan.slots.intersect(&t.shards[m.to].slots);
    let given_up = shards
        .in_state(&ends.source, &unpublished, "gone", plan.epoch)
        .await?;
    let to_roll_back = unpublished.intersect(&given_up.complement());
    if !given_up.is_empty() {
        take(store, &plan, &mut shards, &given_up).await?;
        publish(store, &plan, &given_up)?;
    }
    let finished =
        SlotSet::from_ranges(published.ranges().iter().chain(given_up.ranges()).copied());
    if !finished.is_empty() {
        delete_on_source(store, &plan, &mut shards, &finished, None).await?;
    }
    if !to_roll_back.is_empty() {
        roll_back(store, &plan, &mut shards, &to_roll_back, plan.epoch + 1).await?;
    }
    finish_record(store).await?;
    Ok(Some(format!(
        "move of epoch {} from {} to {}: slots {} are {}'s, slots {} stay {}'s",
        plan.epoch,
        plan.from,
        plan.to,
        if finished.is_empty() {
            "(none)".to_string()
        } else {
            finished.to_string()
        },
        plan.to,
        if to_roll_back.is_empty() {
            "(none)".to_string()
        } else {
            to_roll_back.to_string()
        },
        plan.from
    )))
}

/// `reshard --abort`: asks the running mover to stop before its next hand-over; if no mover
/// runs (its lease is not renewed) or it does not act on it within 10 s, rolls back itself
/// as `fix` does.
pub async fn abort(store: &Store, password: Option<String>) -> Result<String> {
    if store.load()?.topology.moving.is_none() {
        return Ok("no move is under way".into());
    }
    store.update(|e| {
        e.request_abort();
        Ok(Change::Write)
    })?;
    // No mover renewing its lease: nobody else will act on the request.
    let mover_runs = store
        .mover_lease_age()
        .is_some_and(|age| age < crate::store::MOVER_LEASE_TTL);
    let deadline = Instant::now()
        + if mover_runs {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        };
    while Instant::now() < deadline {
        if store.load()?.topology.moving.is_none() {
            return Ok("the move stopped; slots not yet handed over stay with their source".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(fix(store, password)
        .await?
        .unwrap_or_else(|| "the move stopped".into()))
}
