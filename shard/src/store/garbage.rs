//! The background sweep of dead collection versions.
//!
//! Deleting, overwriting or expiring a collection removes only its entry and leaves a
//! garbage marker (slot, version) in the same batch (see the module doc of
//! [`crate::store`]). No entry points to that version any more, so its members are never
//! read; this thread removes them in bounded batches through the writer, as every mutation
//! goes, and removes the marker with the last batch. The space comes back as fjall compacts.

use super::encoding::{split_garbage_key, version_prefix, GARBAGE_PREFIX};
use super::writer::{Txn, WriteOp, Writer};
use super::{background, Round, Store};
use fjord_common::Reply;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Most members removed by one write.
const SWEEP_BATCH: usize = 1000;
/// Pause between looks when there was no garbage.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Starts the sweeper thread; it stops when `stop` is set.
pub fn start(
    store: Arc<Store>,
    writer: Writer,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    // Where the last batch of a version ended: the next one starts after it rather than
    // walking again over the tombstones the earlier batches left.
    let mut resume: Option<((u16, u64), Vec<u8>)> = None;
    background("fjord-garbage", stop, SWEEP_INTERVAL, move || {
        // A replica's dead members go by its primary's sweep, which the oplog carries.
        let sweep = (store.is_writable() && !store.is_replica())
            .then(|| next_sweep(&store, resume.as_ref()))
            .flatten();
        let Some(sweep) = sweep else {
            resume = None;
            return Round::Idle;
        };
        resume = match (sweep.last, sweep.members.last()) {
            (false, Some(k)) => Some(((sweep.slot, sweep.version), k.clone())),
            _ => None,
        };
        match writer.submit_blocking(Box::new(sweep)) {
            Some(_) => Round::Busy,
            None => Round::Stop,
        }
    })
}

/// The next batch of dead members to remove, from the first garbage marker (after `resume`'s
/// key when it is that marker's).
fn next_sweep(store: &Store, resume: Option<&((u16, u64), Vec<u8>)>) -> Option<SweepVersion> {
    let marker = match store.meta.prefix(GARBAGE_PREFIX).next()?.key() {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "reading the garbage markers failed");
            return None;
        }
    };
    let Some((slot, version)) = split_garbage_key(&marker) else {
        tracing::warn!("ignoring a malformed garbage marker");
        return None;
    };
    let prefix = version_prefix(slot, version);
    let mut start = prefix.to_vec();
    if let Some((_, after)) = resume.filter(|(v, _)| *v == (slot, version)) {
        start = after.clone();
        start.push(0); // the smallest key strictly after it
    }
    let mut end = prefix.to_vec();
    end.push(0xff); // past every kind of member
    let mut members = Vec::new();
    for guard in store.members.range(start..end).take(SWEEP_BATCH) {
        match guard.key() {
            Ok(k) => members.push(k.to_vec()),
            Err(e) => {
                tracing::warn!(error = %e, "reading dead members failed");
                return None;
            }
        }
    }
    let last = members.len() < SWEEP_BATCH;
    Some(SweepVersion {
        slot,
        version,
        members,
        last,
    })
}

/// Removes some members of a dead version, and its marker once none is left.
struct SweepVersion {
    slot: u16,
    version: u64,
    members: Vec<Vec<u8>>,
    last: bool,
}

impl WriteOp for SweepVersion {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        txn.stats().members_swept.inc_by(self.members.len() as u64);
        for mkey in self.members {
            txn.remove_member(mkey);
        }
        if self.last {
            txn.drop_garbage_marker(self.slot, self.version);
        }
        Reply::ok()
    }
}
