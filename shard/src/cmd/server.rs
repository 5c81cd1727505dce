//! Server commands: INFO, LASTSAVE, FLUSHALL/FLUSHDB, SHUTDOWN, CLUSTER.

use super::{slots, Ctx, Outcome};
use crate::server::Server;
use crate::store::Store;
use bytes::Bytes;
use fjord_common::command::{self, Resolved};
use fjord_common::slotset::SlotSet;
use fjord_common::{error, Reply};
use std::sync::atomic::Ordering;

/// `INFO [section ...]`
pub fn info(ctx: &Ctx<'_>, args: &[Bytes]) -> Reply {
    let wanted = fjord_common::info::Sections::parse(&args[1..]);
    Reply::Verbatim(Bytes::from(ctx.server.info_text(&wanted)))
}

/// `LASTSAVE`: the last time the journal was synced to disk.
pub fn lastsave(store: &Store) -> Reply {
    let last = store.stats.last_fsync_unix.load(Ordering::Relaxed);
    Reply::Int(last as i64)
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`. Every write acknowledged is in the
/// journal already; SAVE (the default) also flushes the memtables, so the restart replays
/// nothing. NOW and FORCE change nothing: the shard neither waits for replicas to catch up
/// nor has a save that could fail. A shutdown is never in progress when a command is read,
/// so ABORT is always Redis's "no shutdown in progress".
pub fn shutdown(args: &[Bytes]) -> Outcome {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for arg in &args[1..] {
        match arg.to_ascii_lowercase().as_slice() {
            b"save" => save = true,
            b"nosave" => nosave = true,
            b"now" | b"force" => {}
            b"abort" => abort = true,
            _ => return Reply::error(error::SYNTAX).into(),
        }
    }
    if (abort && args.len() > 2) || (save && nosave) {
        return Reply::error(error::SYNTAX).into();
    }
    if abort {
        return Reply::error("ERR No shutdown in progress.").into();
    }
    Outcome::Shutdown { save: !nosave }
}

/// `FLUSHALL|FLUSHDB [ASYNC|SYNC]`
pub fn flush(args: &[Bytes]) -> Outcome {
    if !command::flush_options_ok(args) {
        return Reply::error(error::SYNTAX).into();
    }
    Outcome::Flush {
        slots: SlotSet::all(),
        max_rate: None,
    }
}

/// `CLUSTER <sub>` on a shard: slot figures work; everything about nodes belongs to the proxy.
pub fn cluster(server: &Server, r: Resolved, args: &[Bytes]) -> Reply {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("cluster"));
    };
    match sub.name {
        "keyslot" => slots::keyslot(&args[2]),
        "countkeysinslot" => slots::keys_in_slot(server, &args[2], None),
        "getkeysinslot" => slots::keys_in_slot(server, &args[2], Some(&args[3])),
        _ => Reply::error(error::CLUSTER_DISABLED),
    }
}
