//! Keyspace commands: DEL, EXISTS, TYPE, the EXPIRE and TTL families, PERSIST, RENAME, and the
//! iterating commands SCAN, KEYS, RANDOMKEY (which also serve the slot-limited FJORD forms).

use super::{lower_name, Outcome, Parse, Read};
use crate::server::Server;
use crate::store::encoding::{split_data_key, version_range, MemberKind, ValueType, HEADER_LEN};
use crate::store::members::{Members, View};
use crate::store::writer::{Txn, WriteOp};
use crate::store::{now_ms, ScanEnd, Store};
use crate::types::{self, Collection};
use bytes::Bytes;
use fjord_common::glob::glob_match;
use fjord_common::number::parse_i64;
use fjord_common::slotset::SlotSet;
use fjord_common::{error, slot_of, Reply};
use rand::Rng;
use std::sync::Arc;

/// DEL and UNLINK (UNLINK has nothing to do in the background: fjall frees space itself).
pub struct Del {
    keys: Vec<Bytes>,
}

impl Parse for Del {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            keys: args[1..].to_vec(),
        })
    }
}

impl WriteOp for Del {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        Reply::Int(self.keys.iter().filter(|k| txn.delete(k)).count() as i64)
    }
}

/// EXISTS and TOUCH: how many of the keys exist, counting repeats.
pub struct Exists {
    keys: Vec<Bytes>,
}

impl Parse for Exists {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            keys: args[1..].to_vec(),
        })
    }
}

impl Read for Exists {
    fn execute(self, store: &Store) -> Reply {
        let now = now_ms();
        let mut n = 0;
        for k in &self.keys {
            match store.get(k, now) {
                Ok(Some(_)) => n += 1,
                Ok(None) => {}
                Err(e) => return Reply::error(format!("ERR {e}")),
            }
        }
        Reply::Int(n)
    }
}

pub struct Type {
    key: Bytes,
}

impl Parse for Type {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl Read for Type {
    fn execute(self, store: &Store) -> Reply {
        match store.get(&self.key, now_ms()) {
            Ok(Some(e)) => Reply::status(e.kind.name()),
            Ok(None) => Reply::status("none"),
            Err(e) => Reply::error(format!("ERR {e}")),
        }
    }
}

/// EXPIRE's NX/XX/GT/LT options. Several may be given (`LT XX`), and each must hold; a key
/// without a TTL counts as expiring never, so GT fails on it and LT passes, as in Redis.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct ExpireCondition {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl ExpireCondition {
    /// Parses the options after the time, with Redis's texts for the combinations it refuses.
    fn parse(opts: &[Bytes]) -> Result<Self, Reply> {
        let mut c = ExpireCondition::default();
        for opt in opts {
            match opt.to_ascii_uppercase().as_slice() {
                b"NX" => c.nx = true,
                b"XX" => c.xx = true,
                b"GT" => c.gt = true,
                b"LT" => c.lt = true,
                _ => {
                    return Err(Reply::error(format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(opt)
                    )))
                }
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(Reply::error(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(Reply::error(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a key whose deadline is `current` (`None`: no TTL) may get `deadline`.
    fn allows(self, current: Option<i64>, deadline: i64) -> bool {
        (!self.nx || current.is_none())
            && (!self.xx || current.is_some())
            && (!self.gt || current.is_some_and(|c| deadline > c))
            && (!self.lt || current.is_none_or(|c| deadline < c))
    }
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with NX/XX/GT/LT.
pub struct Expire {
    key: Bytes,
    /// Absolute deadline in ms; may be in the past (the key is then deleted).
    deadline: i64,
    condition: ExpireCondition,
}

impl Parse for Expire {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = lower_name(args);
        let condition = ExpireCondition::parse(&args[3..])?;
        let when = parse_i64(&args[2]).ok_or(Reply::error(error::NOT_INTEGER))?;
        let invalid = || Reply::error(error::invalid_expire(&name));
        let seconds = name == "expire" || name == "expireat";
        let when = if seconds {
            when.checked_mul(1000).ok_or_else(invalid)?
        } else {
            when
        };
        let deadline = if name.ends_with("at") {
            when
        } else {
            when.checked_add(now_ms() as i64).ok_or_else(invalid)?
        };
        Ok(Self {
            key: args[1].clone(),
            deadline,
            condition,
        })
    }
}

impl WriteOp for Expire {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let Some(mut entry) = txn.get(&self.key) else {
            return Reply::Int(0);
        };
        let current = entry.expire_at.map(|at| at as i64);
        if !self.condition.allows(current, self.deadline) {
            return Reply::Int(0);
        }
        if self.deadline <= txn.now() as i64 {
            txn.delete(&self.key);
        } else {
            entry.expire_at = Some(self.deadline as u64);
            txn.put(&self.key, entry);
        }
        Reply::Int(1)
    }
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
pub struct Ttl {
    key: Bytes,
    millis: bool,
    absolute: bool,
}

impl Parse for Ttl {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = lower_name(args);
        Ok(Self {
            key: args[1].clone(),
            millis: name.starts_with('p'),
            absolute: name.ends_with("time"),
        })
    }
}

impl Read for Ttl {
    fn execute(self, store: &Store) -> Reply {
        let now = now_ms();
        let entry = match store.get(&self.key, now) {
            Ok(Some(e)) => e,
            Ok(None) => return Reply::Int(-2),
            Err(e) => return Reply::error(format!("ERR {e}")),
        };
        let Some(at) = entry.expire_at else {
            return Reply::Int(-1);
        };
        let ms = if self.absolute {
            at as i64
        } else {
            (at as i64 - now as i64).max(0)
        };
        Reply::Int(if self.millis { ms } else { (ms + 500) / 1000 })
    }
}

pub struct Persist {
    key: Bytes,
}

impl Parse for Persist {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl WriteOp for Persist {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        match txn.get(&self.key) {
            Some(mut e) if e.expire_at.is_some() => {
                e.expire_at = None;
                txn.put(&self.key, e);
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        }
    }
}

/// RENAME and RENAMENX. The proxy only sends them when both keys share a slot.
pub struct Rename {
    from: Bytes,
    to: Bytes,
    only_if_missing: bool,
}

impl Parse for Rename {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            from: args[1].clone(),
            to: args[2].clone(),
            only_if_missing: args[0].eq_ignore_ascii_case(b"renamenx"),
        })
    }
}

impl WriteOp for Rename {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let Some(entry) = txn.get(&self.from) else {
            return Reply::error(error::NO_SUCH_KEY);
        };
        if self.from == self.to {
            return if self.only_if_missing {
                Reply::Int(0)
            } else {
                Reply::ok()
            };
        }
        if self.only_if_missing && txn.get(&self.to).is_some() {
            return Reply::Int(0);
        }
        // Within a slot a collection's members stay where they are; across slots (a client
        // talking to the shard directly may ask) they are copied.
        let (from_slot, to_slot) = (slot_of(&self.from), slot_of(&self.to));
        let entry = if from_slot == to_slot {
            entry
        } else {
            match types::copy_value(txn, entry, from_slot, to_slot) {
                Ok(e) => e,
                Err(e) => return e,
            }
        };
        txn.delete(&self.from);
        txn.put(&self.to, entry);
        if self.only_if_missing {
            Reply::Int(1)
        } else {
            Reply::ok()
        }
    }
}

/// `COPY source destination [DB db] [REPLACE]`: the value and its TTL under a second name.
/// fjord has one database, so `DB` may only name 0.
pub struct CopyKey {
    from: Bytes,
    to: Bytes,
    replace: bool,
}

impl Parse for CopyKey {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let mut replace = false;
        let mut i = 3;
        while i < args.len() {
            match args[i].to_ascii_uppercase().as_slice() {
                b"REPLACE" => replace = true,
                b"DB" if i + 1 < args.len() => {
                    let db = parse_i64(&args[i + 1]).ok_or(Reply::error(error::NOT_INTEGER))?;
                    if db != 0 {
                        return Err(Reply::error(error::DB_INDEX_OUT_OF_RANGE));
                    }
                    i += 1;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        if args[1] == args[2] {
            return Err(Reply::error(
                "ERR source and destination objects are the same",
            ));
        }
        Ok(Self {
            from: args[1].clone(),
            to: args[2].clone(),
            replace,
        })
    }
}

impl WriteOp for CopyKey {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let Some(entry) = txn.get(&self.from) else {
            return Reply::Int(0);
        };
        if !self.replace && txn.get(&self.to).is_some() {
            return Reply::Int(0);
        }
        let entry = match types::copy_value(txn, entry, slot_of(&self.from), slot_of(&self.to)) {
            Ok(e) => e,
            Err(e) => return e,
        };
        txn.put(&self.to, entry);
        Reply::Int(1)
    }
}

/// `MEMORY USAGE key [SAMPLES count]`: the bytes the key takes in the store, estimated as
/// Redis does for collections: the size times the average of `count` sampled members (5 by
/// default, 0 for all). Counts the key, the value and the members' keys as stored, before
/// fjall's compression.
pub struct MemoryUsage {
    key: Bytes,
    samples: u64,
}

impl Parse for MemoryUsage {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let samples = match &args[3..] {
            [] => 5,
            [opt, n] if opt.eq_ignore_ascii_case(b"samples") => {
                let n = parse_i64(n).ok_or(Reply::error(error::NOT_INTEGER))?;
                if n < 0 {
                    return Err(Reply::error(error::SYNTAX));
                }
                n as u64
            }
            _ => return Err(Reply::error(error::SYNTAX)),
        };
        Ok(Self {
            key: args[2].clone(),
            samples,
        })
    }
}

impl Read for MemoryUsage {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let entry = match view.entry(&self.key) {
            Ok(Some(e)) => e,
            Ok(None) => return Reply::Nil,
            Err(e) => return e.into(),
        };
        let own = (2 + self.key.len() + HEADER_LEN + entry.payload.len()) as u64;
        let Ok(Some(c)) = Collection::find(&mut view, &self.key, entry.kind) else {
            return Reply::Int(own as i64);
        };
        let (lo, hi) = version_range(c.slot, c.meta.version);
        let limit = if self.samples == 0 {
            u64::MAX
        } else {
            self.samples
        };
        let (mut sampled, mut bytes) = (0u64, 0u64);
        let result = view.scan_members(&lo, &hi, false, &mut |k, v| {
            sampled += 1;
            bytes += (k.len() + v.len()) as u64;
            sampled < limit
        });
        if let Err(e) = result {
            return e.into();
        }
        // Sorted sets keep two entries per member (the member and its score index entry).
        let per_member = bytes.checked_div(sampled).unwrap_or(0);
        let entries = if c.kind == ValueType::ZSet { 2 } else { 1 } * c.meta.size;
        Reply::Int(own.saturating_add(per_member.saturating_mul(entries)) as i64)
    }
}

/// `OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key`. fjord stores every collection as one entry
/// per member, which is what Redis's large encodings are (hashtable, quicklist, skiplist), so
/// those are the names it gives; a string gets the name Redis would give its value. Values
/// are never shared (REFCOUNT 1), and fjord tracks neither access times nor frequencies, so
/// IDLETIME and FREQ answer as Redis does when its policy tracks neither.
pub struct Object {
    key: Bytes,
    what: ObjectField,
}

enum ObjectField {
    Encoding,
    RefCount,
    IdleTime,
    Freq,
}

impl Parse for Object {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let what = match args[1].to_ascii_lowercase().as_slice() {
            b"encoding" => ObjectField::Encoding,
            b"refcount" => ObjectField::RefCount,
            b"idletime" => ObjectField::IdleTime,
            _ => ObjectField::Freq,
        };
        Ok(Self {
            key: args[2].clone(),
            what,
        })
    }
}

impl Read for Object {
    fn execute(self, store: &Store) -> Reply {
        let entry = match store.get(&self.key, now_ms()) {
            Ok(Some(e)) => e,
            Ok(None) => return Reply::Nil,
            Err(e) => return e.into(),
        };
        match self.what {
            ObjectField::Encoding => Reply::Bulk(Bytes::from_static(match entry.kind {
                ValueType::String => string_encoding(&entry.payload),
                ValueType::Hash | ValueType::Set => b"hashtable",
                ValueType::List => b"quicklist",
                ValueType::ZSet => b"skiplist",
            })),
            ObjectField::RefCount => Reply::Int(1),
            ObjectField::IdleTime => Reply::error("ERR An LRU maxmemory policy is not selected, access time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
            ObjectField::Freq => Reply::error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        }
    }
}

/// The encoding Redis gives a string value: `int` for a canonical integer, `embstr` up to 44
/// bytes, `raw` beyond.
fn string_encoding(value: &[u8]) -> &'static [u8] {
    if value.len() <= 20 && parse_i64(value).is_some() {
        b"int"
    } else if value.len() <= 44 {
        b"embstr"
    } else {
        b"raw"
    }
}

/// SCAN's options after the cursor.
struct ScanOptions {
    pattern: Option<Bytes>,
    count: usize,
    kind: Option<Bytes>,
}

fn parse_scan_options(opts: &[Bytes]) -> Result<ScanOptions, Reply> {
    let mut out = ScanOptions {
        pattern: None,
        count: 10,
        kind: None,
    };
    let mut i = 0;
    while i < opts.len() {
        let has_value = i + 1 < opts.len();
        match opts[i].to_ascii_uppercase().as_slice() {
            b"MATCH" if has_value => out.pattern = Some(opts[i + 1].clone()),
            b"COUNT" if has_value => {
                let n = parse_i64(&opts[i + 1]).ok_or(Reply::error(error::NOT_INTEGER))?;
                if n < 1 {
                    return Err(Reply::error(error::SYNTAX));
                }
                out.count = n as usize;
            }
            b"TYPE" if has_value => out.kind = Some(opts[i + 1].clone()),
            _ => return Err(Reply::error(error::SYNTAX)),
        }
        i += 2;
    }
    Ok(out)
}

/// SCAN `cursor [MATCH p] [COUNT n] [TYPE t]` over `slots`; `args[0]` is the cursor.
///
/// A cursor is `slot << 48 | id`, where `id` names the exact position in the server's cursor
/// table. A cursor whose position was forgotten (table full, restart) resumes at the start of
/// its slot: keys may then be returned twice, which SCAN allows, but none is missed.
pub fn scan(server: &Server, slots: &SlotSet, args: &[Bytes]) -> Reply {
    let Some(cursor) = std::str::from_utf8(&args[0])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Reply::error(error::INVALID_CURSOR);
    };
    let opts = match parse_scan_options(&args[1..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let store = &server.store;
    // Resume point: an exact key from the cursor table, or the start of the cursor's slot.
    let (start_slot, after) = match cursor {
        0 => (0u16, None),
        c => {
            let slot = ((c >> 48) & 0x3fff) as u16;
            match server.cursors.position(c) {
                Some(key) if split_data_key(&key).0 == slot => (slot, Some(key)),
                _ => (slot, None),
            }
        }
    };
    let scan_set = SlotSet::from_ranges(slots.ranges().iter().filter_map(|r| {
        (r.end >= start_slot).then_some(fjord_common::slotset::SlotRange {
            start: r.start.max(start_slot),
            end: r.end,
        })
    }));
    let now = now_ms();
    let mut keys = Vec::new();
    let end = store.scan_slots(
        &scan_set,
        after.as_deref(),
        opts.count,
        now,
        |dkey, entry| {
            let (_, key) = split_data_key(dkey);
            let type_ok = opts
                .kind
                .as_ref()
                .is_none_or(|t| t.eq_ignore_ascii_case(entry.kind.name().as_bytes()));
            let match_ok = opts
                .pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, key, false));
            if type_ok && match_ok {
                keys.push(Reply::Bulk(Bytes::copy_from_slice(key)));
            }
            true
        },
    );
    let next = match end {
        Ok(ScanEnd::Done) => 0,
        Ok(ScanEnd::At(dkey)) => {
            let slot = split_data_key(&dkey).0;
            server.cursors.save(slot, dkey)
        }
        Err(e) => return Reply::error(format!("ERR {e}")),
    };
    Reply::Array(vec![Reply::text(next.to_string()), Reply::Array(keys)])
}

/// HSCAN (and the other collection scans): `key cursor [MATCH p] [COUNT n]` over the members
/// of one collection, in key order. COUNT members are examined per call; the cursor names
/// the last one in the server's cursor table, as SCAN's does, and a forgotten one restarts
/// the collection (members may then come twice, which SCAN allows, but none is missed).
pub fn scan_collection(server: &Server, kind: ValueType, args: &[Bytes]) -> Reply {
    let Some(cursor) = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Reply::error(error::INVALID_CURSOR);
    };
    let opts = match parse_scan_options(&args[3..]) {
        Ok(o) if o.kind.is_none() => o,
        Ok(_) => return Reply::error(error::SYNTAX),
        Err(e) => return e,
    };
    let mut view = View::new(&server.store);
    let done = |items| Reply::Array(vec![Reply::text("0"), Reply::Array(items)]);
    let c = match Collection::find(&mut view, &args[1], kind) {
        Ok(Some(c)) => c,
        Ok(None) => return done(Vec::new()),
        Err(e) => return e,
    };
    let (lo, hi) = c.member_range(MemberKind::Item);
    let start = match cursor {
        0 => lo.clone(),
        c => match server.cursors.position(c) {
            Some(mut k) if k.starts_with(&lo) => {
                k.push(0); // the smallest key strictly after it
                k
            }
            _ => lo.clone(),
        },
    };
    let mut items = Vec::new();
    let (mut examined, mut last) = (0usize, None);
    let result = view.scan_members(&start, &hi, false, &mut |k, v| {
        examined += 1;
        let name = &k[lo.len()..];
        if opts
            .pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, name, false))
        {
            items.push(Reply::Bulk(Bytes::copy_from_slice(name)));
            match kind {
                ValueType::Hash => items.push(Reply::Bulk(Bytes::copy_from_slice(v))),
                // A score, as text (ZSCAN replies with bulk strings in both protocols).
                ValueType::ZSet => {
                    let score = crate::types::zset::decode_score(v).unwrap_or(0.0);
                    let text = fjord_common::resp::format_double(score);
                    items.push(Reply::Bulk(Bytes::from(text)));
                }
                _ => {}
            }
        }
        if examined < opts.count {
            return true;
        }
        last = Some(k.to_vec());
        false
    });
    if let Err(e) = result {
        return e.into();
    }
    let next = match last {
        Some(k) => server.cursors.save(c.slot, k),
        None => return done(items),
    };
    Reply::Array(vec![Reply::text(next.to_string()), Reply::Array(items)])
}

/// KEYS `pattern` over `slots`, run off the async workers: it walks every key in the slots.
pub fn keys(server: &Server, slots: SlotSet, pattern: Bytes) -> Outcome {
    let store = Arc::clone(&server.store);
    Outcome::Blocking(Box::new(move || {
        let mut keys = Vec::new();
        let match_all = &pattern[..] == b"*";
        let result = store.scan_slots(&slots, None, usize::MAX, now_ms(), |dkey, _| {
            let (_, key) = split_data_key(dkey);
            if match_all || glob_match(&pattern, key, false) {
                keys.push(Reply::Bulk(Bytes::copy_from_slice(key)));
            }
            true
        });
        match result {
            Ok(_) => Reply::Array(keys),
            Err(e) => Reply::error(format!("ERR {e}")),
        }
    }))
}

/// RANDOMKEY over `slots`: a slot picked in proportion to its key count, then the first live
/// key at a random point within it.
pub fn random_key(store: &Store, slots: &SlotSet) -> Reply {
    let now = now_ms();
    let mut rng = rand::thread_rng();
    for _ in 0..16 {
        let total = store.count_in(slots);
        if total == 0 {
            return Reply::Nil;
        }
        let mut pick = rng.gen_range(0..total);
        let Some(slot) = slots.slots().find(|&s| {
            let n = store.count_in_slot(s);
            if pick < n {
                true
            } else {
                pick -= n;
                false
            }
        }) else {
            return Reply::Nil;
        };
        let one = SlotSet::from_ranges([fjord_common::slotset::SlotRange {
            start: slot,
            end: slot,
        }]);
        let mut probe = crate::store::encoding::slot_prefix(slot).to_vec();
        probe.extend((0..8).map(|_| rng.gen::<u8>()));
        for after in [Some(probe), None] {
            let mut found = None;
            let _ = store.scan_slots(&one, after.as_deref(), 64, now, |dkey, _| {
                found = Some(Bytes::copy_from_slice(split_data_key(dkey).1));
                false
            });
            if let Some(k) = found {
                return Reply::Bulk(k);
            }
        }
    }
    Reply::Nil
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(opts: &[&str]) -> Result<ExpireCondition, Reply> {
        let opts: Vec<Bytes> = opts.iter().map(|o| Bytes::from(o.to_string())).collect();
        ExpireCondition::parse(&opts)
    }

    #[test]
    fn every_expire_option_given_must_hold() {
        let lt_xx = condition(&["LT", "XX"]).unwrap();
        // No TTL: LT alone would pass (never > anything), XX does not.
        assert!(!lt_xx.allows(None, 100));
        assert!(lt_xx.allows(Some(200), 100));
        assert!(!lt_xx.allows(Some(50), 100));
        let gt_xx = condition(&["gt", "xx"]).unwrap();
        assert!(!gt_xx.allows(None, 100));
        assert!(gt_xx.allows(Some(50), 100));
        assert!(condition(&["LT"]).unwrap().allows(None, 100));
        assert!(!condition(&["GT"]).unwrap().allows(None, 100));
        assert!(condition(&["NX"]).unwrap().allows(None, 100));
        assert!(!condition(&["NX"]).unwrap().allows(Some(1), 100));
        assert!(condition(&[]).unwrap().allows(Some(1), 100));
    }

    #[test]
    fn incompatible_expire_options_get_redis_texts() {
        let err = |opts: &[&str]| match condition(opts) {
            Err(Reply::Error(e)) => e.to_string(),
            _ => String::new(),
        };
        assert!(err(&["NX", "XX"]).starts_with("ERR NX and XX, GT or LT"));
        assert!(err(&["GT", "LT"]).starts_with("ERR GT and LT"));
        assert_eq!(err(&["NOPE"]), "ERR Unsupported option NOPE");
    }
}
