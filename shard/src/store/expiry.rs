//! Active expiry: deletes keys whose deadline passed, even if nobody reads them.
//!
//! A background thread scans the expiry index from 0 to now and hands the due entries to the
//! writer, which re-checks each key's *current* deadline before deleting: a key re-set
//! without a TTL (or with another one) survives its old index entry. Deleting through the
//! writer keeps every mutation on one path.

use super::encoding::split_expiry_key;
use super::writer::{Txn, WriteOp, Writer};
use super::{background, now_ms, Round, Store};
use fjord_common::Reply;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Most index entries handed to the writer at once.
const SWEEP_BATCH: usize = 1000;
/// Pause between sweeps when nothing was due.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Starts the sweeper thread; it stops when `stop` is set.
pub fn start(
    store: Arc<Store>,
    writer: Writer,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    background("fjord-expiry", stop, SWEEP_INTERVAL, move || {
        // A replica's keys expire by its primary's deletes (reads hide them meanwhile).
        if store.is_replica() {
            return Round::Idle;
        }
        let due = due_entries(&store, now_ms());
        let full = due.len() == SWEEP_BATCH;
        if !due.is_empty() && writer.submit_blocking(Box::new(Sweep { due })).is_none() {
            return Round::Stop;
        }
        if full {
            Round::Busy
        } else {
            Round::Idle
        }
    })
}

fn due_entries(store: &Store, now: u64) -> Vec<Vec<u8>> {
    let end = (now + 1).to_be_bytes();
    let mut due = Vec::new();
    for guard in store.expiry.range::<&[u8], _>(..&end[..]).take(SWEEP_BATCH) {
        match guard.key() {
            Ok(k) => due.push(k.to_vec()),
            Err(e) => {
                tracing::warn!(error = %e, "reading the expiry index failed");
                break;
            }
        }
    }
    due
}

/// Deletes the keys behind due index entries whose deadline still holds.
struct Sweep {
    due: Vec<Vec<u8>>,
}

impl WriteOp for Sweep {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let now = txn.now();
        for ikey in &self.due {
            let Some((at, dkey)) = split_expiry_key(ikey) else {
                txn.forget_index_entry(ikey);
                continue;
            };
            match txn.load_physical(dkey) {
                Some(entry) if entry.expire_at == Some(at) && at <= now => {
                    txn.remove_physical(dkey);
                    txn.note_expired();
                }
                _ => txn.forget_index_entry(ikey),
            }
        }
        Reply::ok()
    }
}
