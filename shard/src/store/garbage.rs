//! Reclaiming the members of dead collection versions.
//!
//! Deleting, overwriting or expiring a collection removes only its entry and leaves a
//! garbage marker (slot, version) in the same batch (see the module doc of
//! [`crate::store`]). The marker is logged, so every store of a history gets it. No entry
//! points to that version any more, so its members are never read: removing them changes
//! nothing a command or a replica can see. So each store reclaims them on its own, as a
//! compaction would, and logs nothing: a replica's tables are laid out differently from its
//! primary's, so the primary's deletes could not tell it which of its tables to drop.
//!
//! For each marker, this thread
//! 1. drops the tables that hold nothing but members of that version (fjall's `drop_range`:
//!    their space comes back at once, whatever the version's size);
//! 2. deletes what is left of the version, in the memtables and in tables shared with other
//!    keys, one bounded batch at a time under the commit lock, and removes the marker with the
//!    last batch.
//!
//! Every drop is followed by batches from the version's first key (at the start, and
//! after a restart or a failed batch), so a member that a drop brings back is deleted again:
//! one whose tombstone (an HDEL while the collection lived, or an earlier batch) was in a
//! dropped table while its older entry lies in a table shared with other keys. A restart
//! finds the marker and starts again.

use super::encoding::{split_garbage_key, version_range, GARBAGE_PREFIX};
use super::writer::{commit_unlogged, Writer};
use super::{background, Round, Store, StoreError};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Most members removed by one batch.
const SWEEP_BATCH: usize = 1000;
/// Members left after the first drop that are worth writing the memtables out for.
const FLUSH_FIRST: usize = 10_000;
/// Bytes of tables dropped that mark a collection big enough to write the memtables out.
const FLUSH_AFTER_BYTES: u64 = 16 << 20;
/// Pause between looks when there was no garbage.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// A dead version: its slot and number.
type Dead = (u16, u64);

/// Starts the reclaiming thread; it stops when `stop` is set.
pub fn start(
    store: Arc<Store>,
    writer: Writer,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    // The version whose tables were dropped, and where its last batch ended: the next batch
    // starts after it rather than walking again over the tombstones the earlier ones left.
    let mut current: Option<(Dead, Option<Vec<u8>>)> = None;
    background("fjord-garbage", stop, SWEEP_INTERVAL, move || {
        let dead = match store.is_writable().then(|| first_marker(&store)).flatten() {
            Some(dead) => dead,
            None => {
                current = None;
                return Round::Idle;
            }
        };
        let after = match current.take() {
            Some((version, after)) if version == dead => after,
            _ => {
                if let Err(e) = drop_tables(&store, dead) {
                    tracing::warn!(error = %e, "dropping a dead collection's tables failed");
                }
                None
            }
        };
        match writer.exclusive_blocking(move |store| sweep_batch(store, dead, after)) {
            None => Round::Stop,
            Some(Ok(Some(last))) => {
                current = Some((dead, Some(last)));
                Round::Busy
            }
            Some(Ok(None)) => Round::Busy,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "removing a dead collection's members failed");
                Round::Idle
            }
        }
    })
}

/// Drops the tables that hold only `dead`'s members. After a big collection (many members
/// left in the memtable, or many bytes dropped), writes the memtables out and drops again:
/// a delete each would leave the members in the memtable, and their tombstones, in a table
/// until a compaction reached it, and fjall's journals keep on disk whatever a memtable
/// still holds, until the memtables fill up.
fn drop_tables(store: &Store, (slot, version): Dead) -> Result<(), StoreError> {
    let before = store.members.disk_space();
    store.drop_member_tables(slot, version)?;
    let dropped = before.saturating_sub(store.members.disk_space());
    let (start, end) = version_range(slot, version);
    let many_left = store.members.range(start..end).take(FLUSH_FIRST).count() == FLUSH_FIRST;
    if many_left || dropped >= FLUSH_AFTER_BYTES {
        store.flush_memtables()?;
        store.drop_member_tables(slot, version)?;
    }
    Ok(())
}

/// The first garbage marker, if any.
fn first_marker(store: &Store) -> Option<Dead> {
    let marker = match store.meta.prefix(GARBAGE_PREFIX).next()?.key() {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "reading the garbage markers failed");
            return None;
        }
    };
    let dead = split_garbage_key(&marker);
    if dead.is_none() {
        tracing::warn!("ignoring a malformed garbage marker");
    }
    dead
}

/// Removes up to a batch of `dead`'s members after `after`, and its marker once none is
/// left. Runs under the commit lock, so that nothing (a FLUSHALL, a full sync) changes the
/// version between the read and the batch. Returns the last key removed while some remain.
fn sweep_batch(
    store: &Store,
    (slot, version): Dead,
    after: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StoreError> {
    let (mut start, end) = version_range(slot, version);
    if let Some(mut key) = after {
        key.push(0); // the smallest key strictly after it
        start = key;
    }
    let mut members = Vec::new();
    for guard in store.members.range(start..end).take(SWEEP_BATCH) {
        members.push(guard.key()?.to_vec());
    }
    let last = (members.len() == SWEEP_BATCH).then(|| members[SWEEP_BATCH - 1].clone());
    let removed = members.len() as u64;
    commit_unlogged(store, |txn| {
        for mkey in members {
            txn.remove_member(mkey);
        }
        if last.is_none() {
            txn.drop_garbage_marker(slot, version);
        }
    })?;
    store.stats.members_swept.inc_by(removed);
    Ok(last)
}
