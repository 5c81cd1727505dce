//! The importing side: a task that pulls the moving slots from their source and applies them
//! through this shard's writer, starting over after any failure until the slots are no
//! longer importing at its epoch.

use super::Import;
use crate::repl::link::Link;
use crate::store::oplog::{Change, Op, OplogError, Pieces};
use crate::store::slots::SlotTable;
use crate::store::writer::{Txn, VersionMap, WriteOp, Writer};
use crate::store::Store;
use anyhow::{anyhow, bail};
use fjord_common::ownership::SlotState;
use fjord_common::repl::{Frame, SlotSyncRequest, PROTOCOL_VERSION};
use fjord_common::slotset::SlotSet;
use fjord_common::Reply;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What the task needs of its shard.
pub struct Importer {
    pub store: Arc<Store>,
    pub writer: Writer,
    pub password: Option<String>,
    pub stats: Arc<super::MoveStats>,
}

/// Runs `import` until it is over, stopped or refused; `began` gets the answer to `FJORD
/// IMPORT` (OK once the slots are importing here, or why they cannot be).
pub async fn run(importer: Importer, import: Arc<Import>, began: oneshot::Sender<Reply>) {
    let stats = Arc::clone(&importer.stats);
    let counted = attempts(importer, &import, began).await;
    // Added and taken away by each import, so that one superseded by the next cannot zero
    // the next one's slots.
    if counted {
        stats.importing.sub(import.slots.len() as i64);
    }
}

/// The attempts of `run`; true if the import's slots were counted in the importing gauge.
async fn attempts(importer: Importer, import: &Import, began: oneshot::Sender<Reply>) -> bool {
    let mut began = Some(began);
    let mut counted = false;
    let mut stop = import.stop.subscribe();
    let mut retry = RETRY_FIRST;
    loop {
        let begin = BeginImport {
            epoch: import.epoch,
            slots: import.slots.clone(),
            // Only when asked: a retry must not take back slots a rollback gave back.
            revive: began.is_some(),
        };
        let reply = submit(&importer.writer, Box::new(begin)).await;
        match reply {
            Reply::Status(ref s) if s == "OVER" => {
                import.finish("done", None);
                if let Some(tx) = began.take() {
                    let _ = tx.send(Reply::error(format!(
                        "ERR the move of epoch {} is past its import here",
                        import.epoch
                    )));
                }
                return counted;
            }
            Reply::Error(e) => {
                tracing::warn!(error = %e, slots = %import.slots, "import refused");
                import.finish("failed", Some(e.to_string()));
                if let Some(tx) = began.take() {
                    let _ = tx.send(Reply::Error(e));
                }
                return counted;
            }
            _ => {}
        }
        // Whatever an earlier attempt left goes: the snapshot brings the slots whole.
        if let Ok(Reply::Error(e)) = importer
            .writer
            .flush(import.slots.clone(), None)
            .await
            .await
        {
            import.failed_attempt(format!("emptying the slots: {e}"));
        } else {
            if let Some(tx) = began.take() {
                let _ = tx.send(Reply::ok());
            } else {
                importer.stats.restarts.inc();
            }
            if !counted {
                importer.stats.importing.add(import.slots.len() as i64);
                counted = true;
            }
            import.restart();
            let pulled = tokio::select! {
                r = pull(&importer, import) => r,
                _ = stop.changed() => {
                    import.finish("stopped", None);
                    return counted;
                }
            };
            match pulled {
                Ok(()) => {
                    tracing::info!(slots = %import.slots, epoch = import.epoch, keys = import.keys(), "import over");
                    import.finish("done", None);
                    return counted;
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    tracing::warn!(source = %import.source, error = %why, retry_in_ms = retry.as_millis() as u64, "import interrupted; starting over");
                    import.failed_attempt(why);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = stop.changed() => {
                import.finish("stopped", None);
                return counted;
            }
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}

async fn submit(writer: &Writer, op: Box<dyn WriteOp>) -> Reply {
    match writer.submit(vec![op]).await.await {
        Ok(mut replies) => replies
            .pop()
            .unwrap_or_else(|| Reply::error("ERR no reply")),
        Err(_) => Reply::error("ERR the shard is shutting down"),
    }
}

/// One attempt: the snapshot, then the stream, until the link breaks (an error) or the
/// slots are no longer importing at this epoch (owned here, or given back).
async fn pull(importer: &Importer, import: &Import) -> anyhow::Result<()> {
    let mut link = Link::connect(&import.source, importer.password.as_deref()).await?;
    let request = SlotSyncRequest {
        protocol: PROTOCOL_VERSION,
        epoch: import.epoch,
        slots: import.slots.clone(),
    };
    link.send(&request.to_args()).await?;
    let next_id = match link.frame().await? {
        Frame::FullSync { next_id, .. } => next_id,
        other => bail!("unexpected answer to FJORD SLOTSYNC: {other:?}"),
    };
    let versions = Arc::new(Mutex::new(VersionMap::default()));
    let started = Instant::now();
    let mut pieces = Pieces::default();
    loop {
        match link.frame().await? {
            Frame::Snap(chunk) => {
                let op = Op::decode(0, chunk)?;
                let bytes = op.len();
                let changes = pieces.join(0, op.changes()?)?;
                if changes.is_empty() {
                    continue;
                }
                if apply(importer, import, vec![(0, changes, bytes)], &versions).await? {
                    return Ok(());
                }
                throttle(import, started).await;
            }
            Frame::SnapEnd if pieces.is_pending() => {
                bail!("the source's snapshot ended in the middle of a value")
            }
            Frame::SnapEnd => break,
            other => bail!("unexpected frame during the snapshot: {other:?}"),
        }
    }
    import.set_through(next_id - 1);
    import.set_state("streaming");
    tracing::info!(source = %import.source, slots = %import.slots, keys = import.keys(), ms = started.elapsed().as_millis() as u64, "snapshot of the slots imported; following the source");
    loop {
        match link.frame().await? {
            Frame::SlotOps { through, entries } => {
                // A batch of entries checks the slots as the writer applies it; a quiet
                // frame checks them here.
                let over = if entries.is_empty() {
                    !importing(&importer.store, &import.slots, import.epoch)
                } else {
                    let entries = entries
                        .into_iter()
                        .map(|raw| {
                            let op = Op::decode(through, raw)?;
                            Ok((op.id, op.changes()?, op.len()))
                        })
                        .collect::<Result<Vec<_>, OplogError>>()?;
                    apply(importer, import, entries, &versions).await?
                };
                if over {
                    return Ok(());
                }
                import.set_through(through);
            }
            other => bail!("unexpected frame from the source: {other:?}"),
        }
    }
}

/// Applies entries (id, changes, bytes received) through the writer; true if the import
/// is over.
async fn apply(
    importer: &Importer,
    import: &Import,
    received: Vec<(u64, Vec<Change>, u64)>,
    versions: &Arc<Mutex<VersionMap>>,
) -> anyhow::Result<bool> {
    let mut entries = Vec::with_capacity(received.len());
    let mut bytes = 0;
    for (id, changes, len) in received {
        if let Some(slot) = changes
            .iter()
            .find_map(|c| change_slot(c).filter(|s| !import.slots.contains(*s)))
        {
            bail!("the source sent a change to slot {slot}, which is not imported");
        }
        bytes += len;
        entries.push((id, changes));
    }
    let batch = ImportBatch {
        epoch: import.epoch,
        slots: import.slots.clone(),
        entries,
        versions: Arc::clone(versions),
    };
    match submit(&importer.writer, Box::new(batch)).await {
        Reply::Int(keys) => {
            let keys = keys.max(0) as u64;
            import.applied(keys, bytes);
            importer.stats.keys.inc_by(keys);
            importer.stats.bytes.inc_by(bytes);
            Ok(false)
        }
        Reply::Status(ref s) if s == "OVER" => Ok(true),
        Reply::Error(e) => Err(anyhow!("applying the source's entries: {e}")),
        other => Err(anyhow!(
            "unexpected reply applying the source's entries: {other:?}"
        )),
    }
}

/// Keeps the snapshot under `--max-rate`.
async fn throttle(import: &Import, started: Instant) {
    let Some(rate) = import.max_rate else {
        return;
    };
    let due = Duration::from_secs_f64(import.keys() as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        tokio::time::sleep(wait).await;
    }
}

/// The slot a change is about, if it is about one key or member.
pub fn change_slot(change: &Change) -> Option<u16> {
    match change {
        Change::Put(k, _)
        | Change::Delete(k)
        | Change::PutMember(k, _)
        | Change::DeleteMember(k)
        | Change::Piece { key: k, .. } => Some(u16::from_be_bytes(k.get(..2)?.try_into().ok()?)),
        Change::Garbage { .. } | Change::NextVersion(_) | Change::SlotStates(_) => None,
    }
}

/// Whether every slot of `slots` is importing at `epoch` in `table`.
fn all_importing(table: &SlotTable, slots: &SlotSet, epoch: u64) -> bool {
    slots.slots().all(|s| {
        let r = table.get(s);
        r.state == SlotState::Importing && r.epoch == epoch
    })
}

/// [`all_importing`] as committed: the stream's quiet frames end an import that is over.
pub(crate) fn importing(store: &Store, slots: &SlotSet, epoch: u64) -> bool {
    all_importing(&store.slot_table(), slots, epoch)
}

/// Marks the slots importing at the epoch: `OVER` if the move of that epoch already went
/// past that here (owned; or given back, unless `revive`: the mover tries the batch again),
/// an error for a newer epoch or for a slot holding live keys (a slot at this epoch holds
/// an earlier attempt's, emptied next).
struct BeginImport {
    epoch: u64,
    slots: SlotSet,
    revive: bool,
}

impl WriteOp for BeginImport {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let table = txn.slot_table();
        for slot in self.slots.slots() {
            let r = table.get(slot);
            let given_back = r.state == SlotState::Gone && self.revive;
            if r.epoch == self.epoch && r.state != SlotState::Importing && !given_back {
                return Reply::status("OVER");
            }
            let earlier_attempt = r.epoch == self.epoch;
            let keys = txn.slot_count(slot);
            if !earlier_attempt && keys > 0 {
                return Reply::error(format!(
                    "ERR slot {slot} holds {keys} keys here: refusing to import into it"
                ));
            }
        }
        crate::cmd::slots::change_slots(txn, &self.slots, SlotState::Importing, self.epoch, None)
            .map_or_else(|e| e, |_| Reply::ok())
    }
}

/// Entries of the source, applied as this shard's writes if the slots still import.
struct ImportBatch {
    epoch: u64,
    slots: SlotSet,
    entries: Vec<(u64, Vec<Change>)>,
    versions: Arc<Mutex<VersionMap>>,
}

impl WriteOp for ImportBatch {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        if !all_importing(&txn.slot_table(), &self.slots, self.epoch) {
            return Reply::status("OVER");
        }
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys = 0;
        for (id, changes) in &self.entries {
            match txn.apply_imported(*id, changes, &mut versions) {
                Ok(n) => keys += n,
                Err(e) => return Reply::error(format!("ERR {e}")),
            }
        }
        Reply::Int(keys as i64)
    }
}
