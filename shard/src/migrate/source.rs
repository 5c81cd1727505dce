//! The source's side of a move: a connection that sent `FJORD SLOTSYNC` becomes a stream of
//! the slots' entries to the shard importing them.
//!
//! As for a replica's full sync, the snapshot and a pin on the oplog at its next op are taken
//! together under the commit lock, so that the snapshot and the tail meet exactly. Then the
//! tail goes out filtered to the slots: one entry per op that changed them, and the id of the
//! last op read, so the importer knows how far it is caught up even when nothing it imports
//! changes.

use crate::repl::primary::{link_refusal, send, sync_point};
use crate::server::Server;
use crate::store::oplog::{Change, Op, OpBuilder, OpKind, OplogError};
use bytes::Bytes;
use fjord_common::repl::{Frame, SlotSyncRequest};
use fjord_common::slotset::SlotSet;
use fjord_common::Reply;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// A frame at least this often, so the importer can tell a quiet source from a dead one.
const KEEPALIVE: Duration = Duration::from_millis(100);
/// Most bytes of oplog read per frame.
const OPS_READ_BYTES: u64 = 1 << 20;
/// Bytes of changes per snapshot chunk.
const SNAP_CHUNK_BYTES: usize = 32 * 1024;

/// Serves an importer on `stream` until the link breaks.
pub async fn serve(
    stream: TcpStream,
    req: SlotSyncRequest,
    server: Arc<Server>,
) -> std::io::Result<()> {
    let (mut read, mut write) = stream.into_split();
    if let Some(refusal) = refusal(&server, &req) {
        return send(&mut write, Reply::error(refusal)).await;
    }
    // Nothing comes back on this link but its end.
    let closed = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let result = stream_slots(&server, &req, &mut write, &closed).await;
    closed.abort();
    result
}

/// Why this shard will not serve the request, if it will not.
fn refusal(server: &Server, req: &SlotSyncRequest) -> Option<String> {
    if let Some(refusal) = link_refusal(server, req.protocol, "import") {
        return Some(refusal);
    }
    let table = server.store.slot_table();
    table.refusal(req.slots.slots(), false).map(|r| {
        format!(
            "ERR slot {} is {} here, not served: {r}",
            r.slot,
            r.state.name()
        )
    })
}

async fn stream_slots(
    server: &Arc<Server>,
    req: &SlotSyncRequest,
    write: &mut OwnedWriteHalf,
    closed: &tokio::task::JoinHandle<()>,
) -> std::io::Result<()> {
    let (snapshot, pin, history, term) = match sync_point(server).await {
        Some(Ok(point)) => point,
        Some(Err(e)) => return send(write, Reply::error(format!("ERR {e}"))).await,
        None => return Ok(()),
    };
    tracing::info!(slots = %req.slots, epoch = req.epoch, next_id = pin.next_id(), "streaming slots to an importing shard");
    let frame = Frame::FullSync {
        history,
        term,
        next_id: pin.next_id(),
        bytes_before: pin.bytes(),
    };
    send(write, frame.to_reply()).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let store = Arc::clone(&server.store);
    let slots = req.slots.clone();
    let reader = tokio::task::spawn_blocking(move || {
        store.snapshot_chunks(&snapshot, Some(&slots), SNAP_CHUNK_BYTES, |chunk| {
            tx.blocking_send(chunk).is_ok()
        })
    });
    while let Some(chunk) = rx.recv().await {
        send(write, Frame::Snap(chunk).to_reply()).await?;
    }
    match reader.await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Ok(()),
        Ok(Err(e)) => return Err(std::io::Error::other(e.to_string())),
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    }
    send(write, Frame::SnapEnd.to_reply()).await?;

    let oplog = server.store.oplog();
    let mut commits = oplog.subscribe();
    let mut told = pin.next_id() - 1;
    let mut sent = Instant::now();
    loop {
        if closed.is_finished() {
            return Ok(());
        }
        if server.store.is_replica() {
            let why = "ERR this shard became a replica: import from its primary";
            return send(write, Reply::error(why)).await;
        }
        commits.borrow_and_update();
        let ops = match oplog.read(&pin, OPS_READ_BYTES) {
            Ok(ops) => ops,
            Err(e @ OplogError::PinLost(_)) => {
                return send(write, Reply::error(format!("ERR {e}"))).await;
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        let mut entries = Vec::new();
        for op in &ops {
            match op.kind {
                OpKind::FlushAll => {
                    let why = "ERR the source was flushed: the import starts over";
                    return send(write, Reply::error(why)).await;
                }
                OpKind::Term => {}
                OpKind::Changes => {
                    let changes = op
                        .changes()
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    if let Some(entry) = filtered(op, &changes, &req.slots) {
                        entries.push(entry);
                    }
                }
            }
        }
        let through = pin.next_id() - 1;
        if !entries.is_empty() || through > told || sent.elapsed() >= KEEPALIVE {
            send(write, Frame::SlotOps { through, entries }.to_reply()).await?;
            told = through;
            sent = Instant::now();
        }
        if ops.is_empty() {
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(KEEPALIVE.saturating_sub(sent.elapsed())) => {}
            }
        }
    }
}

/// The changes of `op` to `slots`, as an entry of their own; `None` if it made none. Garbage
/// markers and the version counter stay behind: versions are the importer's own.
fn filtered(op: &Op, changes: &[Change], slots: &SlotSet) -> Option<Bytes> {
    let mut entry = OpBuilder::new(OpKind::Changes, op.term, 0);
    for change in changes {
        let Some(slot) = super::target::change_slot(change) else {
            continue;
        };
        if !slots.contains(slot) {
            continue;
        }
        match change {
            Change::Put(k, v) => entry.put(k, v),
            Change::Delete(k) => entry.delete(k),
            Change::PutMember(k, v) => entry.put_member(k, v),
            Change::DeleteMember(k) => entry.delete_member(k),
            _ => {}
        }
    }
    (!entry.is_empty()).then(|| Bytes::from(entry.finish()))
}
