//! The replica's side: one task that follows the primary [`super::Replication`] names,
//! reconnecting after any failure and resuming from the last op it holds.

use super::link::Link;
use crate::server::Server;
use crate::store::oplog::{Op, Pieces};
use crate::store::writer::load_snapshot_changes;
use anyhow::{anyhow, bail};
use fjord_common::repl::{Frame, SyncRequest, PROTOCOL_VERSION};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Waits between attempts to reach the primary: the first retry is quick, later ones less so.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Follows the primary named by the replication state until `shutdown` turns true.
pub async fn run(server: Arc<Server>, mut shutdown: watch::Receiver<bool>) {
    let mut target = server.repl.target.subscribe();
    let mut fence = server.repl.control.subscribe();
    let mut retry = RETRY_FIRST;
    loop {
        let primary = target.borrow_and_update().clone();
        let Some(primary) = primary else {
            tokio::select! {
                _ = target.changed() => continue,
                _ = shutdown.changed() => return,
            }
        };
        server.repl.primary_showed(None);
        let session = session(&server, &primary);
        tokio::pin!(session);
        // A new controller term may have deposed this primary: unless the primary has
        // shown that term, the session ends and the next one checks.
        let outcome = loop {
            tokio::select! {
                r = &mut session => break Some(r),
                _ = target.changed() => break None,
                _ = fence.changed() => if server.repl.link_fenced() { break None },
                _ = shutdown.changed() => return,
            }
        };
        // A link that got as far as streaming starts over quickly; one that keeps failing
        // before that backs off.
        if server.repl.link_status().state == "connected" {
            retry = RETRY_FIRST;
        }
        server.repl.set_link_state("connect");
        match outcome {
            None => {
                retry = RETRY_FIRST;
                continue;
            }
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(primary = %primary, error = %format!("{e:#}"), retry_in_ms = retry.as_millis() as u64, "replication link down");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = target.changed() => {}
            _ = shutdown.changed() => return,
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// One connection to the primary: handshake, sync, then the stream, until it breaks.
async fn session(server: &Arc<Server>, primary: &str) -> anyhow::Result<()> {
    server.repl.set_link_state("connecting");
    let mut link = Link::connect(primary, server.config.requirepass.as_deref()).await?;
    let store = &server.store;
    let oplog = store.oplog();
    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        history: oplog.history(),
        next_id: oplog.last_id() + 1,
        last_term: oplog.last_term(),
        port: server.local_addr.port(),
    };
    link.send(&request.to_args()).await?;
    server.repl.set_link_state("sync");
    let answer = link.frame().await?;
    if let Frame::Continue { term, .. } | Frame::FullSync { term, .. } = &answer {
        let current = server.repl.control.term();
        if *term < current {
            bail!("{primary} is at term {term}, older than this shard's controller term {current}: not following a deposed primary");
        }
        server.repl.primary_showed(Some(*term));
    }
    match answer {
        Frame::Continue { history, .. } if history == oplog.history() => {
            server.repl.note_sync("incremental");
            tracing::info!(%primary, from = request.next_id, "replicating: resumed from the oplog");
        }
        Frame::FullSync {
            history,
            term,
            next_id,
            bytes_before,
        } => {
            tracing::info!(%primary, next_id, "replicating: full sync");
            full_sync(server, &mut link, history, term, next_id, bytes_before).await?;
            server.repl.note_sync("full");
            tracing::info!(%primary, keys = store.total_keys(), "replicating: full sync done");
        }
        other => bail!("unexpected answer to FJORD SYNC: {other:?}"),
    }
    server.repl.set_link_state("connected");
    // The primary's last stamp, echoed in every ack.
    let mut stamp = 0;
    let mut heard = Heartbeats::default();
    loop {
        let frame = link.frame().await?;
        let told = match &frame {
            Frame::Ops {
                first_id, entries, ..
            } => first_id + entries.len() as u64 - 1,
            Frame::Ping { last_id, .. } => *last_id,
            _ => 0,
        };
        server.repl.note_io(told);
        match frame {
            Frame::Ops {
                first_id,
                released,
                entries,
            } => {
                let ops = entries
                    .into_iter()
                    .enumerate()
                    .map(|(i, raw)| Op::decode(first_id + i as u64, raw))
                    .collect::<Result<Vec<_>, _>>()?;
                let last = first_id + ops.len() as u64 - 1;
                server
                    .writer
                    .replay(ops)
                    .await
                    .await
                    .map_err(|_| anyhow!("the shard is shutting down"))??;
                store.visible.release(released);
                heard.applied(last, &server.repl);
                server.repl.primary_showed(Some(oplog.last_term()));
                link.ack(server, last, stamp).await?;
            }
            Frame::Ping {
                last_id,
                released,
                stamp: s,
            } => {
                stamp = s;
                store.visible.release(released);
                heard.heard(last_id);
                heard.applied(oplog.last_id(), &server.repl);
                link.ack(server, oplog.last_id(), stamp).await?;
            }
            other => bail!("unexpected frame from the primary: {other:?}"),
        }
    }
}

/// The primary's heartbeats not yet caught up with: its last op when each came, and when
/// (this shard's clock). Once every op a heartbeat announced is applied, this replica is
/// as fresh as its primary was then ([`super::Replication::staleness_ms`]).
#[derive(Default)]
struct Heartbeats {
    pending: std::collections::VecDeque<(u64, u64)>,
}

impl Heartbeats {
    /// Most heartbeats remembered; past it the oldest go, which only overstates the lag.
    const MAX: usize = 256;

    fn heard(&mut self, primary_last_id: u64) {
        if self.pending.len() == Self::MAX {
            self.pending.pop_front();
        }
        self.pending
            .push_back((primary_last_id, super::control::stamp()));
    }

    /// Every op up to `id` is applied here.
    fn applied(&mut self, id: u64, repl: &super::Replication) {
        while let Some(&(last_id, at)) = self.pending.front() {
            if last_id > id {
                break;
            }
            self.pending.pop_front();
            repl.note_fresh(at);
        }
    }
}

/// Replaces this store's contents with the primary's snapshot, then takes up its history.
async fn full_sync(
    server: &Server,
    link: &mut Link,
    history: String,
    term: u64,
    next_id: u64,
    bytes_before: u64,
) -> anyhow::Result<()> {
    let writer = &server.writer;
    let gone = || anyhow!("the shard is shutting down");
    writer
        .exclusive(|store| store.clear_for_full_sync())
        .await
        .ok_or_else(gone)??;
    let mut pieces = Pieces::default();
    loop {
        match link.frame().await? {
            Frame::Snap(chunk) => {
                server.repl.note_io(next_id - 1);
                let changes = pieces.join(0, Op::decode(0, chunk)?.changes()?)?;
                if changes.is_empty() {
                    continue;
                }
                writer
                    .exclusive(move |store| load_snapshot_changes(store, changes))
                    .await
                    .ok_or_else(gone)??;
            }
            Frame::SnapEnd if pieces.is_pending() => {
                bail!("the primary's snapshot ended in the middle of a value")
            }
            Frame::SnapEnd => break,
            other => bail!("unexpected frame during a full sync: {other:?}"),
        }
    }
    writer
        .exclusive(move |store| {
            store
                .oplog()
                .finish_full_sync(&history, term, next_id, bytes_before)?;
            // The snapshot may hold writes the primary has not acknowledged yet.
            store.visible.restart_at(next_id - 1);
            Ok::<_, crate::store::oplog::OplogError>(())
        })
        .await
        .ok_or_else(gone)??;
    Ok(())
}

/// A replica's acknowledgement on its link.
impl Link {
    /// Acknowledges `id`, unless a fence of a term the primary has not shown came: past
    /// such a fence, no acknowledgement may leave for the old primary
    /// ([`crate::repl::control`]).
    async fn ack(&mut self, server: &Server, id: u64, stamp: u64) -> anyhow::Result<()> {
        let _fence = server.repl.control.ack_lock.lock().await;
        if server.repl.link_fenced() {
            bail!("fenced by a newer controller term");
        }
        self.send_frame(Frame::Ack { id, stamp }).await?;
        server.repl.control.ack_sent();
        Ok(())
    }
}
