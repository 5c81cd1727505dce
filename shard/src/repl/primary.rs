//! The primary's side of a replication link: a connection that sent `FJORD SYNC` becomes a
//! stream of this shard's oplog to that replica.
//!
//! If the replica holds this history up to an op this shard still has, with the same term,
//! the stream resumes after it (`CONTINUE`). Otherwise — another history, a suffix this
//! shard never had, an op trimmed by retention — it gets a full sync: under the commit
//! lock, a fjall snapshot and a pin on the oplog at the snapshot's next op, so the snapshot
//! and the tail meet exactly; the snapshot goes out in key order, then the tail. Acks come
//! back on the same connection.

use super::PeerGuard;
use crate::server::Server;
use crate::store::oplog::{OplogError, Pin};
use bytes::{Bytes, BytesMut};
use fjord_common::repl::{Frame, SyncRequest, PROTOCOL_VERSION};
use fjord_common::{Proto, Reply};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// How often a link carries a PING (the replica's measure of its primary's silence, and the
/// stamps of the primary's lease).
pub const PING_EVERY: Duration = Duration::from_millis(100);
/// Most bytes of entries in one OPS frame.
const OPS_FRAME_BYTES: u64 = 1 << 20;
/// Bytes of changes per snapshot chunk.
const SNAP_CHUNK_BYTES: usize = 256 * 1024;

/// Serves a replica on `stream` until the link breaks. `pending` holds what the replica
/// sent after its `FJORD SYNC`.
pub async fn serve(
    stream: TcpStream,
    pending: BytesMut,
    req: SyncRequest,
    server: Arc<Server>,
) -> std::io::Result<()> {
    let ip = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let (read, mut write) = stream.into_split();
    if let Some(refusal) = refusal(&server, &req) {
        send(&mut write, Reply::error(refusal)).await?;
        return Ok(());
    }
    let guard = Arc::clone(&server.repl).add_peer(ip, req.port);
    let oplog = server.store.oplog();
    let pin = match resume(&server, &req) {
        Some(pin) => {
            let history = oplog.history();
            let term = oplog.term();
            send(&mut write, Frame::Continue { history, term }.to_reply()).await?;
            tracing::info!(replica = %guard.peer.ip, port = req.port, from = req.next_id, "replica resumes from the oplog");
            pin
        }
        None => {
            // Its store is about to be replaced: what it acknowledged before is gone.
            server.repl.control.forget_acks(&guard.peer.addr());
            match full_sync(&server, &mut write, &guard).await? {
                Some(pin) => pin,
                None => return Ok(()),
            }
        }
    };
    guard.peer.set_online();
    let acks = tokio::spawn(read_acks(
        read,
        pending,
        Arc::clone(&server),
        Arc::clone(&guard.peer),
    ));
    let result = stream_tail(&server, &mut write, &pin, &acks).await;
    acks.abort();
    drop(guard);
    result
}

/// Why this shard will not serve the request, if it will not.
fn refusal(server: &Server, req: &SyncRequest) -> Option<String> {
    link_refusal(server, req.protocol, "sync")
}

/// Why this shard serves no link of `protocol`: another version, or it is a replica (to
/// `verb` from its primary instead).
pub(crate) fn link_refusal(server: &Server, protocol: u64, verb: &str) -> Option<String> {
    if protocol != PROTOCOL_VERSION {
        return Some(format!(
            "ERR fjord replication protocol {protocol} is not spoken here (this shard speaks {PROTOCOL_VERSION})"
        ));
    }
    if server.store.is_replica() {
        return Some(format!(
            "ERR this shard is a replica: {verb} from its primary"
        ));
    }
    None
}

/// Where a snapshot and the tail meet: a fjall snapshot and a pin at the next op, taken
/// together under the commit lock, with the history and term they belong to.
pub(crate) type SyncPoint = (fjall::Snapshot, Pin, String, u64);

/// Takes a [`SyncPoint`]; `None` if the store went away.
pub(crate) async fn sync_point(server: &Server) -> Option<Result<SyncPoint, OplogError>> {
    server
        .writer
        .exclusive(|store| {
            let snapshot = store.database().snapshot();
            let oplog = store.oplog();
            oplog
                .pin(oplog.last_id() + 1)
                .map(|pin| (snapshot, pin, oplog.history(), oplog.term()))
        })
        .await
}

/// A pin at the replica's next op if it can resume: same history, that op still held (or
/// the next to come), and the op before it of the term the replica has.
fn resume(server: &Server, req: &SyncRequest) -> Option<Pin> {
    let oplog = server.store.oplog();
    if req.history != oplog.history() || req.next_id == 0 || req.next_id > oplog.last_id() + 1 {
        return None;
    }
    let before = req.next_id - 1;
    let term_matches = match before {
        0 => true,
        id => oplog.read_one(id).is_ok_and(|op| op.term == req.last_term),
    };
    if !term_matches {
        return None;
    }
    oplog.pin(req.next_id).ok()
}

/// Sends a snapshot and returns the pin where the tail starts (`None` if the store went
/// away).
async fn full_sync(
    server: &Arc<Server>,
    write: &mut OwnedWriteHalf,
    guard: &PeerGuard,
) -> std::io::Result<Option<Pin>> {
    let (snapshot, pin, history, term) = match sync_point(server).await {
        Some(Ok(point)) => point,
        Some(Err(e)) => {
            send(write, Reply::error(format!("ERR {e}"))).await?;
            return Ok(None);
        }
        None => return Ok(None),
    };
    let next_id = pin.next_id();
    tracing::info!(replica = %guard.peer.ip, port = guard.peer.port, next_id, "full sync of a replica");
    let frame = Frame::FullSync {
        history,
        term,
        next_id,
        bytes_before: pin.bytes(),
    };
    send(write, frame.to_reply()).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let store = Arc::clone(&server.store);
    let reader = tokio::task::spawn_blocking(move || {
        store.snapshot_chunks(&snapshot, None, SNAP_CHUNK_BYTES, |chunk| {
            tx.blocking_send(chunk).is_ok()
        })
    });
    let mut chunks = 0u64;
    while let Some(chunk) = rx.recv().await {
        send(write, Frame::Snap(chunk).to_reply()).await?;
        chunks += 1;
    }
    match reader.await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Ok(None),
        Ok(Err(e)) => return Err(std::io::Error::other(e.to_string())),
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    }
    send(write, Frame::SnapEnd.to_reply()).await?;
    tracing::info!(replica = %guard.peer.ip, port = guard.peer.port, chunks, "snapshot sent; streaming the tail");
    Ok(Some(pin))
}

/// Streams the oplog from the pin on, with a PING every [`PING_EVERY`] and whenever
/// replies were released with no entries to carry the news, until the link breaks or the
/// replica stops reading acks.
async fn stream_tail(
    server: &Server,
    write: &mut OwnedWriteHalf,
    pin: &Pin,
    acks: &tokio::task::JoinHandle<()>,
) -> std::io::Result<()> {
    let oplog = server.store.oplog();
    let visible = &server.store.visible;
    let mut commits = oplog.subscribe();
    let mut pinged = std::time::Instant::now();
    // The last release this replica was told of.
    let mut told = 0;
    loop {
        if acks.is_finished() {
            return Ok(());
        }
        let released_again = visible.changed();
        let released = visible.released();
        commits.borrow_and_update();
        let ops = match oplog.read(pin, OPS_FRAME_BYTES) {
            Ok(ops) => ops,
            Err(e @ OplogError::PinLost(_)) => {
                tracing::warn!(error = %e, "a replica fell too far behind; it will full-sync when it reconnects");
                return Ok(());
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        // Also while busy: the stamps renew this primary's lease.
        if pinged.elapsed() >= PING_EVERY || (ops.is_empty() && released > told) {
            let ping = Frame::Ping {
                last_id: oplog.last_id(),
                released,
                stamp: super::control::stamp(),
            };
            send(write, ping.to_reply()).await?;
            pinged = std::time::Instant::now();
            told = released;
        }
        if let Some(first) = ops.first() {
            let frame = Frame::Ops {
                first_id: first.id,
                released,
                entries: ops.iter().map(|op| op.raw().clone()).collect(),
            };
            send(write, frame.to_reply()).await?;
            told = released;
            continue;
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = released_again => {}
            _ = tokio::time::sleep(PING_EVERY.saturating_sub(pinged.elapsed())) => {}
        }
    }
}

/// Reads the replica's acks until the link ends.
async fn read_acks(
    mut read: OwnedReadHalf,
    mut buf: BytesMut,
    server: Arc<Server>,
    peer: Arc<super::Peer>,
) {
    let mut decoder = fjord_common::RequestDecoder::new(fjord_common::Limits::default());
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(parts)) => match Frame::parse(parts) {
                    Ok(Frame::Ack { id, stamp }) => {
                        let last = server.store.oplog().last_id();
                        server.repl.on_ack(&peer, id, stamp, last);
                    }
                    Ok(other) => {
                        tracing::warn!(frame = ?other, "unexpected frame from a replica; closing its link");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "closing a replica's link");
                        return;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "closing a replica's link");
                    return;
                }
            }
        }
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

pub(crate) async fn send(write: &mut OwnedWriteHalf, reply: Reply) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    reply.encode(Proto::Resp2, &mut out);
    write.write_all(&out).await
}
