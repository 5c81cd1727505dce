//! `FJORD <sub>`: what the proxy asks of a shard beyond plain Redis commands.
//!
//! Node-scoped keyspace commands limited to a set of slots (a cluster listener of the proxy
//! covers only the slots it advertises), and the slot primitives that moving slots will use:
//! stream a slot's entries with a cursor, write such entries back.

use super::{keys, Outcome, Parse};
use crate::server::Server;
use crate::store::encoding::{data_key, split_data_key, Entry, ValueType};
use crate::store::now_ms;
use crate::store::slots::SlotTable;
use crate::store::writer::{Txn, WriteOp};
use bytes::Bytes;
use fjord_common::command::Resolved;
use fjord_common::number::{parse_i64, parse_usize};
use fjord_common::ownership::SlotState;
use fjord_common::slotset::{SlotRange, SlotSet};
use fjord_common::{error, slot_of, Reply, SLOT_COUNT};

fn slot_set(arg: &[u8]) -> Result<SlotSet, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| SlotSet::parse(s).ok())
        .ok_or_else(|| Reply::error(error::SLOT_OUT_OF_RANGE))
}

/// Dispatches `FJORD <sub> …`.
pub fn fjord(ctx: &mut super::Ctx<'_>, r: Resolved, args: &[Bytes]) -> Outcome {
    let server = ctx.server;
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("fjord")).into();
    };
    let result = (|| -> Result<Outcome, Reply> {
        Ok(match sub.name {
            "dbsize" => Reply::Int(server.store.count_in(&slot_set(&args[2])?) as i64).into(),
            "scan" => keys::scan(server, &slot_set(&args[2])?, &args[3..]).into(),
            "keys" => keys::keys(server, slot_set(&args[2])?, args[3].clone()),
            "randomkey" => keys::random_key(&server.store, &slot_set(&args[2])?).into(),
            "flush" => Outcome::Flush {
                slots: slot_set(&args[2])?,
                max_rate: crate::migrate::max_rate(&args[3..])?,
            },
            "dumpslot" => dump_slot(server, &args[2], &args[3], &args[4])?.into(),
            "restore" => Outcome::Write(Box::new(Restore::parse(&args[2..])?)),
            "sync" => Outcome::Sync(crate::repl::LinkRequest::Replica(
                fjord_common::repl::SyncRequest::parse(args).map_err(Reply::error)?,
            )),
            "readlag" => {
                let ms = parse_usize(&args[2]).ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
                ctx.conn.replica_max_lag_ms = Some(ms as u64);
                Reply::ok().into()
            }
            "slots" => slot_states(&server.store),
            "slotsync" => Outcome::Sync(crate::repl::LinkRequest::Slots(
                fjord_common::repl::SlotSyncRequest::parse(args).map_err(Reply::error)?,
            )),
            "import" => crate::migrate::import(server, &args[2..]),
            "imports" => server.imports.status(),
            "storelist" => Outcome::Write(Box::new(super::sort::StoreList::parse(args)?)),
            "setslots" => Outcome::Write(Box::new(SetSlots::parse(
                &args[2..],
                &server.imports.stats,
            )?)),
            "leader" => {
                let leader = parse_i64(&args[2])
                    .and_then(|t| u64::try_from(t).ok())
                    .ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
                let control = &server.repl.control;
                control
                    .accept_leader(&server.store, leader)
                    .map_err(Reply::error)?;
                ctx.conn.leader_term = Some(leader);
                Reply::ok().into()
            }
            "status" => super::replication::control(server, sub.name, args),
            "fence" | "promote" | "follow" | "isr" | "acks" => {
                let control = &server.repl.control;
                control
                    .check_leader(ctx.conn.leader_term)
                    .map_err(Reply::error)?;
                super::replication::control(server, sub.name, args)
            }
            other => unreachable!("FJORD {other} is in the table without a handler"),
        })
    })();
    result.unwrap_or_else(Outcome::Reply)
}

/// `FJORD SLOTS` → `[[start, end, state, epoch, owner or ""], …]`, every slot once.
fn slot_states(store: &crate::store::Store) -> Outcome {
    let table = store.slot_table();
    let runs = table
        .runs()
        .into_iter()
        .map(|(range, r)| {
            Reply::Array(vec![
                Reply::Int(i64::from(range.start)),
                Reply::Int(i64::from(range.end)),
                Reply::Bulk(Bytes::from_static(r.state.name().as_bytes())),
                Reply::Int(r.epoch as i64),
                Reply::Bulk(Bytes::from(r.owner.as_deref().unwrap_or("").to_string())),
            ])
        })
        .collect();
    Reply::Array(runs).into()
}

/// `FJORD SETSLOTS <epoch> <state> <owner|-> <slots> [TERM <term>]`: what a slot move does
/// at each step. With a term, refused unless the shard is at that term: a mover that read
/// the topology before a failover must read it again.
struct SetSlots {
    epoch: u64,
    state: SlotState,
    owner: Option<String>,
    slots: SlotSet,
    term: Option<u64>,
    /// Where the time slots stay frozen is measured.
    stats: std::sync::Arc<crate::migrate::MoveStats>,
}

impl SetSlots {
    fn parse(
        args: &[Bytes],
        stats: &std::sync::Arc<crate::migrate::MoveStats>,
    ) -> Result<Self, Reply> {
        let epoch = parse_i64(&args[0])
            .and_then(|e| u64::try_from(e).ok())
            .ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
        let state = std::str::from_utf8(&args[1])
            .map_err(|e| e.to_string())
            .and_then(str::parse::<SlotState>)
            .map_err(|e| Reply::error(format!("ERR {e}")))?;
        let owner = match &args[2][..] {
            b"-" => None,
            addr => Some(String::from_utf8_lossy(addr).into_owned()),
        };
        let term = match &args[4..] {
            [] => None,
            [word, term] if word.eq_ignore_ascii_case(b"term") => Some(
                parse_i64(term)
                    .and_then(|t| u64::try_from(t).ok())
                    .ok_or_else(|| Reply::error(error::NOT_INTEGER))?,
            ),
            _ => return Err(Reply::error(error::SYNTAX)),
        };
        Ok(Self {
            epoch,
            state,
            owner,
            slots: slot_set(&args[3])?,
            term,
            stats: std::sync::Arc::clone(stats),
        })
    }
}

impl WriteOp for SetSlots {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        if let Some(term) = self.term.filter(|&t| t != txn.term()) {
            return Reply::error(format!(
                "ERR this shard is at term {}, not {term}: read the topology again",
                txn.term()
            ));
        }
        let changed = change_slots(
            txn,
            &self.slots,
            self.state,
            self.epoch,
            self.owner.as_deref(),
        );
        if let Ok(Some(before)) = &changed {
            let was_frozen = self
                .slots
                .slots()
                .any(|s| before.get(s).state == SlotState::Frozen);
            match self.state {
                SlotState::Frozen => self.stats.froze(),
                _ if was_frozen => self.stats.thawed(),
                _ => {}
            }
        }
        changed.map_or_else(|e| e, |_| Reply::ok())
    }
}

/// Sets `slots` to `state` at `epoch` in the group's table (see [`SlotTable::with`]), logged.
/// `Ok(None)` if that changed nothing, `Ok(Some(table before))` if it did, or the error reply.
pub(crate) fn change_slots(
    txn: &mut Txn<'_>,
    slots: &SlotSet,
    state: SlotState,
    epoch: u64,
    owner: Option<&str>,
) -> Result<Option<std::sync::Arc<SlotTable>>, Reply> {
    let current = txn.slot_table();
    match current.with(slots, state, epoch, owner) {
        Ok(next) if next == *current => Ok(None),
        Ok(next) => {
            tracing::info!(
                %slots,
                state = state.name(),
                epoch,
                owner = owner.unwrap_or("-"),
                "slot states changed"
            );
            txn.set_slot_table(next);
            Ok(Some(current))
        }
        Err(e) => Err(Reply::error(e.to_string())),
    }
}

/// `FJORD DUMPSLOT <slot> <cursor> <count>` → `[next-cursor, [key, pexpireat, value, …]]`.
///
/// The cursor is `0` to start, `k<hex of the last key>` to go on, and `0` again when the slot
/// is done; it is exact and stateless, so a mover can resume after a restart of either side.
fn dump_slot(server: &Server, slot: &[u8], cursor: &[u8], count: &[u8]) -> Result<Reply, Reply> {
    let slot = parse_usize(slot)
        .filter(|&s| s < usize::from(SLOT_COUNT))
        .ok_or_else(|| Reply::error(error::SLOT_OUT_OF_RANGE))? as u16;
    let count = parse_usize(count)
        .filter(|&c| c > 0)
        .ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
    let after = match cursor {
        b"0" => None,
        c if c.first() == Some(&b'k') => {
            let key = decode_hex(&c[1..]).ok_or_else(|| Reply::error(error::INVALID_CURSOR))?;
            Some(data_key(&key))
        }
        _ => return Err(Reply::error(error::INVALID_CURSOR)),
    };
    if after.as_ref().is_some_and(|k| split_data_key(k).0 != slot) {
        return Err(Reply::error(error::INVALID_CURSOR));
    }
    let set = SlotSet::from_ranges([SlotRange {
        start: slot,
        end: slot,
    }]);
    let mut items = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    let mut taken = 0;
    server
        .store
        .scan_slots(
            &set,
            after.as_deref(),
            usize::MAX,
            now_ms(),
            |dkey, entry| {
                let (_, key) = split_data_key(dkey);
                items.push(Reply::Bulk(Bytes::copy_from_slice(key)));
                items.push(Reply::Int(entry.expire_at.unwrap_or(0) as i64));
                items.push(Reply::Bulk(entry.payload.clone()));
                last = Some(key.to_vec());
                taken += 1;
                taken < count
            },
        )
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    let next = match last {
        Some(k) if taken == count => format!("k{}", encode_hex(&k)),
        _ => "0".to_string(),
    };
    Ok(Reply::Array(vec![Reply::text(next), Reply::Array(items)]))
}

/// `FJORD RESTORE <key> <pexpireat> <value> …`: writes entries as DUMPSLOT gave them,
/// replacing existing keys; entries already expired are skipped.
struct Restore {
    entries: Vec<(Bytes, u64, Bytes)>,
}

impl Restore {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        if !args.len().is_multiple_of(3) {
            return Err(Reply::error(error::wrong_arity("fjord|restore")));
        }
        let entries = args
            .chunks_exact(3)
            .map(|c| {
                let at = parse_i64(&c[1])
                    .filter(|&n| n >= 0)
                    .ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
                Ok((c[0].clone(), at as u64, c[2].clone()))
            })
            .collect::<Result<_, Reply>>()?;
        Ok(Self { entries })
    }
}

impl WriteOp for Restore {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let now = txn.now();
        let mut written = 0;
        for (key, at, value) in self.entries {
            if at != 0 && at <= now {
                continue;
            }
            txn.put(
                &key,
                Entry {
                    kind: ValueType::String,
                    expire_at: (at != 0).then_some(at),
                    payload: value,
                },
            );
            written += 1;
        }
        Reply::Int(written)
    }
}

/// `CLUSTER COUNTKEYSINSLOT` / `GETKEYSINSLOT` on a shard: the same exact figures.
pub fn keys_in_slot(server: &Server, slot: &[u8], count: Option<&[u8]>) -> Reply {
    let Some(slot) = parse_i64(slot)
        .filter(|&s| (0..i64::from(SLOT_COUNT)).contains(&s))
        .map(|s| s as u16)
    else {
        return Reply::error(error::SLOT_OUT_OF_RANGE);
    };
    let Some(count) = count else {
        return Reply::Int(server.store.count_in_slot(slot) as i64);
    };
    let Some(count) = parse_i64(count).filter(|&c| c >= 0) else {
        return Reply::error("ERR Invalid number of keys");
    };
    let set = SlotSet::from_ranges([SlotRange {
        start: slot,
        end: slot,
    }]);
    let mut keys = Vec::new();
    if count > 0 {
        let _ = server
            .store
            .scan_slots(&set, None, usize::MAX, 0, |dkey, _| {
                keys.push(Reply::Bulk(Bytes::copy_from_slice(split_data_key(dkey).1)));
                (keys.len() as i64) < count
            });
    }
    Reply::Array(keys)
}

/// `CLUSTER KEYSLOT key`.
pub fn keyslot(key: &[u8]) -> Reply {
    Reply::Int(i64::from(slot_of(key)))
}

fn encode_hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::cmd::{execute, Ctx, Outcome};
    use crate::fuzzing::Harness;
    use bytes::Bytes;
    use fjord_common::command::resolve;
    use fjord_common::ownership::{Refusal, SlotState};
    use fjord_common::{slot_of, Reply};

    use fjord_common::split_args as args;

    fn error(reply: Reply) -> String {
        match reply {
            Reply::Error(e) => e.to_string(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// A key of `slot`'s neighbourhood: the first `k<n>` whose slot is in `range`.
    fn key_in(range: std::ops::RangeInclusive<u16>) -> String {
        (0..)
            .map(|n| format!("k{n}"))
            .find(|k| range.contains(&slot_of(k.as_bytes())))
            .unwrap()
    }

    #[test]
    fn a_shard_refuses_keys_of_slots_it_does_not_serve_when_parsed_and_when_applied() {
        let h = Harness::new();
        let (gone, frozen, owned) = (key_in(0..=99), key_in(100..=199), key_in(200..=16383));
        assert_eq!(h.run(&args(&format!("SET {frozen} before"))), Reply::ok());
        // Parsed while the slot is still served, applied after it left.
        let late = {
            let mut conn = h.conn();
            let a = args(&format!("SET {gone} late"));
            let r = resolve(&a).unwrap();
            match execute(
                &mut Ctx {
                    server: h.server(),
                    conn: &mut conn,
                },
                r,
                &a,
            ) {
                Outcome::Write(op) => op,
                _ => panic!("SET is a write"),
            }
        };
        assert_eq!(
            h.run(&args("FJORD SETSLOTS 2 gone 127.0.0.1:7102 0-99")),
            Reply::ok()
        );
        assert_eq!(
            h.run(&args("FJORD SETSLOTS 2 frozen - 100-199")),
            Reply::ok()
        );
        let refused = error(h.server().writer.submit_blocking(late).unwrap());
        let r = Refusal::parse(&refused).unwrap();
        assert_eq!((r.state, r.epoch), (SlotState::Gone, 2));
        assert_eq!(r.owner.as_deref(), Some("127.0.0.1:7102"));
        let store = &h.server().store;
        let now = crate::store::now_ms();
        assert_eq!(
            store.get(gone.as_bytes(), now).unwrap(),
            None,
            "never applied"
        );

        // At parse time: reads of a gone slot, writes of a frozen one.
        let e = error(h.run(&args(&format!("GET {gone}"))));
        assert!(e.starts_with("NOTOWNER "), "{e}");
        assert_eq!(
            h.run(&args(&format!("GET {frozen}"))),
            Reply::Bulk(Bytes::from_static(b"before"))
        );
        let e = error(h.run(&args(&format!("SET {frozen} after"))));
        assert_eq!(Refusal::parse(&e).unwrap().state, SlotState::Frozen);
        // A multi-key write touching one such slot is applied nowhere.
        let e = error(h.run(&args(&format!("MSET {owned} 1 {frozen} 2"))));
        assert!(e.starts_with("NOTOWNER "), "{e}");
        assert_eq!(h.run(&args(&format!("EXISTS {owned}"))), Reply::Int(0));
        assert_eq!(h.run(&args(&format!("SET {owned} 1"))), Reply::ok());

        // Epochs only go up; the same step again is accepted and changes nothing.
        let e = error(h.run(&args("FJORD SETSLOTS 1 owned - 0-99")));
        assert!(e.contains("epoch 2, newer than 1"), "{e}");
        assert_eq!(
            h.run(&args("FJORD SETSLOTS 2 frozen - 100-199")),
            Reply::ok()
        );
        let e = error(h.run(&args("FJORD SETSLOTS 3 frozen 1.2.3.4:5 100")));
        assert!(e.contains("only a gone slot has an owner"), "{e}");
        let e = error(h.run(&args("FJORD SETSLOTS 3 lost - 100")));
        assert!(e.contains("not a slot state"), "{e}");
        let e = error(h.run(&args("FJORD SETSLOTS 3 owned - 16384")));
        assert!(e.contains("out of range"), "{e}");
        match h.run(&args("FJORD SLOTS")) {
            Reply::Array(runs) => assert_eq!(runs.len(), 3, "{runs:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(h.run(&args("FJORD SETSLOTS 3 owned - 0-199")), Reply::ok());
        assert!(h.server().store.serves_every_slot());
        assert_eq!(h.run(&args(&format!("SET {gone} back"))), Reply::ok());
    }
}
