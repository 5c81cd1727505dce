//! String commands: GET, SET and its variants, MGET/MSET, APPEND, ranges, counters.

use super::{lower_name, Parse, Read};
use crate::store::encoding::{Entry, ValueType};
use crate::store::writer::{Txn, WriteOp};
use crate::store::{now_ms, Store};
use bytes::{Bytes, BytesMut};
use fjord_common::number::{format_f64_at_scale, parse_f64, parse_i64};
use fjord_common::{error, Reply};

/// Largest string a command may build (Redis's `proto-max-bulk-len`).
const MAX_STRING: usize = 512 * 1024 * 1024;

/// The value of a string key for a read command, or WRONGTYPE.
pub(super) fn string_value(store: &Store, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    match store.get(key, now_ms()) {
        Ok(Some(e)) if e.kind == ValueType::String => Ok(Some(e.payload)),
        Ok(Some(_)) => Err(Reply::error(error::WRONGTYPE)),
        Ok(None) => Ok(None),
        Err(e) => Err(Reply::error(format!("ERR {e}"))),
    }
}

/// The live string entry under `key` inside a write, or WRONGTYPE.
pub(super) fn string_entry(txn: &mut Txn<'_>, key: &[u8]) -> Result<Option<Entry>, Reply> {
    match txn.get(key) {
        Some(e) if e.kind != ValueType::String => Err(Reply::error(error::WRONGTYPE)),
        other => Ok(other),
    }
}

pub(super) fn or_nil(v: Option<Bytes>) -> Reply {
    v.map(Reply::Bulk).unwrap_or(Reply::Nil)
}

pub(super) fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or(Reply::error(error::NOT_INTEGER))
}

/// An expiry given as EX/PX/EXAT/PXAT, resolved to absolute milliseconds when applied.
#[derive(Clone, Copy, Debug)]
pub enum ExpireSpec {
    RelativeMs(i64),
    AbsoluteMs(i64),
}

impl ExpireSpec {
    /// Parses the number after EX/PX/EXAT/PXAT as Redis's `getExpireMillisecondsOrReply` does.
    pub fn parse(unit_seconds: bool, absolute: bool, arg: &[u8], cmd: &str) -> Result<Self, Reply> {
        let v = int_arg(arg)?;
        let invalid = || Reply::error(error::invalid_expire(cmd));
        if v <= 0 {
            return Err(invalid());
        }
        let ms = if unit_seconds {
            v.checked_mul(1000).ok_or_else(invalid)?
        } else {
            v
        };
        if absolute {
            Ok(ExpireSpec::AbsoluteMs(ms))
        } else {
            // Redis refuses a relative time that overflows once the current time is added.
            ms.checked_add(now_ms() as i64).ok_or_else(invalid)?;
            Ok(ExpireSpec::RelativeMs(ms))
        }
    }

    pub fn deadline(self, now: u64) -> u64 {
        match self {
            ExpireSpec::RelativeMs(ms) => now.saturating_add(ms as u64),
            ExpireSpec::AbsoluteMs(ms) => ms as u64,
        }
    }
}

/// Stores `value` with `expire_at`; a deadline already past deletes the key instead, as Redis
/// does, so that it is never counted or seen.
pub(super) fn store_string(txn: &mut Txn<'_>, key: &[u8], value: Bytes, expire_at: Option<u64>) {
    if expire_at.is_some_and(|at| at <= txn.now()) {
        txn.delete(key);
        return;
    }
    txn.put(
        key,
        Entry {
            kind: ValueType::String,
            expire_at,
            payload: value,
        },
    );
}

pub struct Get {
    key: Bytes,
}

impl Parse for Get {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl Read for Get {
    fn execute(self, store: &Store) -> Reply {
        string_value(store, &self.key).map_or_else(|e| e, or_nil)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    IfMissing,
    IfExists,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplyStyle {
    /// `+OK`, or nil when the condition failed (SET).
    Ok,
    /// 1 or 0 (SETNX).
    Flag,
    /// The old value (SET … GET, GETSET).
    OldValue,
}

/// SET with every option, and the older commands that are special cases of it:
/// SETNX, SETEX, PSETEX, GETSET.
pub struct Set {
    key: Bytes,
    value: Bytes,
    condition: Condition,
    expire: Option<ExpireSpec>,
    keep_ttl: bool,
    reply: ReplyStyle,
}

impl Parse for Set {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = lower_name(args);
        let mut set = Set {
            key: args[1].clone(),
            value: args[2].clone(),
            condition: Condition::Always,
            expire: None,
            keep_ttl: false,
            reply: ReplyStyle::Ok,
        };
        match name.as_str() {
            "setnx" => {
                set.condition = Condition::IfMissing;
                set.reply = ReplyStyle::Flag;
            }
            "getset" => set.reply = ReplyStyle::OldValue,
            "setex" | "psetex" => {
                set.value = args[3].clone();
                set.expire = Some(ExpireSpec::parse(name == "setex", false, &args[2], &name)?);
            }
            _ => set.parse_options(&args[3..])?,
        }
        Ok(set)
    }
}

impl Set {
    fn parse_options(&mut self, opts: &[Bytes]) -> Result<(), Reply> {
        let syntax = || Reply::error(error::SYNTAX);
        let mut expire: Option<(bool, bool, &Bytes)> = None;
        let mut i = 0;
        while i < opts.len() {
            let opt = opts[i].to_ascii_uppercase();
            let has_next = i + 1 < opts.len();
            match opt.as_slice() {
                b"NX" if self.condition != Condition::IfExists => {
                    self.condition = Condition::IfMissing
                }
                b"XX" if self.condition != Condition::IfMissing => {
                    self.condition = Condition::IfExists
                }
                b"GET" => self.reply = ReplyStyle::OldValue,
                b"KEEPTTL" if expire.is_none() => self.keep_ttl = true,
                b"EX" | b"PX" | b"EXAT" | b"PXAT"
                    if !self.keep_ttl && expire.is_none() && has_next =>
                {
                    let seconds = opt[0] == b'E';
                    let absolute = opt.len() == 4;
                    expire = Some((seconds, absolute, &opts[i + 1]));
                    i += 1;
                }
                _ => return Err(syntax()),
            }
            i += 1;
        }
        if let Some((seconds, absolute, arg)) = expire {
            self.expire = Some(ExpireSpec::parse(seconds, absolute, arg, "set")?);
        }
        Ok(())
    }
}

impl WriteOp for Set {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let this = *self;
        let old = match (this.reply, txn.get(&this.key)) {
            (ReplyStyle::OldValue, Some(e)) if e.kind != ValueType::String => {
                return Reply::error(error::WRONGTYPE)
            }
            (_, old) => old,
        };
        let proceed = match this.condition {
            Condition::Always => true,
            Condition::IfMissing => old.is_none(),
            Condition::IfExists => old.is_some(),
        };
        if proceed {
            let expire_at = match (this.expire, this.keep_ttl) {
                (Some(spec), _) => Some(spec.deadline(txn.now())),
                (None, true) => old.as_ref().and_then(|e| e.expire_at),
                (None, false) => None,
            };
            store_string(txn, &this.key, this.value, expire_at);
        }
        match this.reply {
            ReplyStyle::Ok if proceed => Reply::ok(),
            ReplyStyle::Ok => Reply::Nil,
            ReplyStyle::Flag => Reply::Int(i64::from(proceed)),
            ReplyStyle::OldValue => or_nil(old.map(|e| e.payload)),
        }
    }
}

pub struct GetDel {
    key: Bytes,
}

impl Parse for GetDel {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl WriteOp for GetDel {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        match string_entry(txn, &self.key) {
            Ok(Some(e)) => {
                txn.delete(&self.key);
                Reply::Bulk(e.payload)
            }
            Ok(None) => Reply::Nil,
            Err(e) => e,
        }
    }
}

/// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]
pub struct GetEx {
    key: Bytes,
    /// `None` = leave the TTL alone, `Some(None)` = PERSIST.
    change: Option<Option<ExpireSpec>>,
}

impl Parse for GetEx {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let mut change = None;
        let mut i = 2;
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            match opt.as_slice() {
                b"PERSIST" if change.is_none() => change = Some(None),
                b"EX" | b"PX" | b"EXAT" | b"PXAT" if change.is_none() && i + 1 < args.len() => {
                    let spec =
                        ExpireSpec::parse(opt[0] == b'E', opt.len() == 4, &args[i + 1], "getex")?;
                    change = Some(Some(spec));
                    i += 1;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        Ok(Self {
            key: args[1].clone(),
            change,
        })
    }
}

impl WriteOp for GetEx {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let entry = match string_entry(txn, &self.key) {
            Ok(Some(e)) => e,
            Ok(None) => return Reply::Nil,
            Err(e) => return e,
        };
        if let Some(change) = self.change {
            let expire_at = change.map(|spec| spec.deadline(txn.now()));
            if expire_at != entry.expire_at {
                store_string(txn, &self.key, entry.payload.clone(), expire_at);
            }
        }
        Reply::Bulk(entry.payload)
    }
}

pub struct MGet {
    keys: Vec<Bytes>,
}

impl Parse for MGet {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            keys: args[1..].to_vec(),
        })
    }
}

impl Read for MGet {
    fn execute(self, store: &Store) -> Reply {
        let mut out = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            // MGET answers nil for a key of another type, unlike GET.
            match string_value(store, key) {
                Ok(v) => out.push(or_nil(v)),
                Err(Reply::Error(e)) if e.starts_with("WRONGTYPE") => out.push(Reply::Nil),
                Err(e) => return e,
            }
        }
        Reply::Array(out)
    }
}

/// MSET and MSETNX: all pairs in one atomic batch.
pub struct MSet {
    pairs: Vec<(Bytes, Bytes)>,
    only_if_none_exist: bool,
}

impl Parse for MSet {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        if args.len().is_multiple_of(2) {
            return Err(Reply::error(error::wrong_arity(&lower_name(args))));
        }
        Ok(Self {
            pairs: args[1..]
                .chunks_exact(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect(),
            only_if_none_exist: args[0].eq_ignore_ascii_case(b"msetnx"),
        })
    }
}

impl WriteOp for MSet {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        if self.only_if_none_exist && self.pairs.iter().any(|(k, _)| txn.get(k).is_some()) {
            return Reply::Int(0);
        }
        for (k, v) in self.pairs {
            store_string(txn, &k, v, None);
        }
        if self.only_if_none_exist {
            Reply::Int(1)
        } else {
            Reply::ok()
        }
    }
}

pub struct Append {
    key: Bytes,
    value: Bytes,
}

impl Parse for Append {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            value: args[2].clone(),
        })
    }
}

impl WriteOp for Append {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let old = match string_entry(txn, &self.key) {
            Ok(old) => old,
            Err(e) => return e,
        };
        let (mut value, expire_at) = match old {
            Some(e) => (BytesMut::from(&e.payload[..]), e.expire_at),
            None => (BytesMut::new(), None),
        };
        if value.len() + self.value.len() > MAX_STRING {
            return Reply::error(error::STRING_TOO_LONG);
        }
        value.extend_from_slice(&self.value);
        let len = value.len();
        store_string(txn, &self.key, value.freeze(), expire_at);
        Reply::Int(len as i64)
    }
}

pub struct Strlen {
    key: Bytes,
}

impl Parse for Strlen {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl Read for Strlen {
    fn execute(self, store: &Store) -> Reply {
        match string_value(store, &self.key) {
            Ok(v) => Reply::Int(v.map_or(0, |v| v.len() as i64)),
            Err(e) => e,
        }
    }
}

/// GETRANGE and its old name SUBSTR.
pub struct GetRange {
    key: Bytes,
    start: i64,
    end: i64,
}

impl Parse for GetRange {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            start: int_arg(&args[2])?,
            end: int_arg(&args[3])?,
        })
    }
}

impl Read for GetRange {
    fn execute(self, store: &Store) -> Reply {
        let value = match string_value(store, &self.key) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => return e,
        };
        let len = value.len() as i64;
        let (mut start, mut end) = (self.start, self.end);
        if start < 0 && end < 0 && start > end {
            return Reply::Bulk(Bytes::new());
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0).min(len - 1);
        if len == 0 || start > end {
            return Reply::Bulk(Bytes::new());
        }
        Reply::Bulk(value.slice(start as usize..=end as usize))
    }
}

pub struct SetRange {
    key: Bytes,
    offset: i64,
    value: Bytes,
}

impl Parse for SetRange {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let offset = int_arg(&args[2])?;
        if offset < 0 {
            return Err(Reply::error(error::OFFSET_OUT_OF_RANGE));
        }
        Ok(Self {
            key: args[1].clone(),
            offset,
            value: args[3].clone(),
        })
    }
}

impl WriteOp for SetRange {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let old = match string_entry(txn, &self.key) {
            Ok(old) => old,
            Err(e) => return e,
        };
        let old_len = old.as_ref().map_or(0, |e| e.payload.len());
        if self.value.is_empty() {
            return Reply::Int(old_len as i64);
        }
        let offset = self.offset as usize;
        if offset.saturating_add(self.value.len()) > MAX_STRING {
            return Reply::error(error::STRING_TOO_LONG);
        }
        let (mut buf, expire_at) = match old {
            Some(e) => (BytesMut::from(&e.payload[..]), e.expire_at),
            None => (BytesMut::new(), None),
        };
        let needed = offset + self.value.len();
        if buf.len() < needed {
            buf.resize(needed, 0);
        }
        buf[offset..needed].copy_from_slice(&self.value);
        let len = buf.len();
        store_string(txn, &self.key, buf.freeze(), expire_at);
        Reply::Int(len as i64)
    }
}

/// INCR, DECR, INCRBY, DECRBY.
pub struct IncrBy {
    key: Bytes,
    delta: i64,
    decrement_of_min: bool,
}

impl Parse for IncrBy {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = lower_name(args);
        let (delta, decrement_of_min) = match name.as_str() {
            "incr" => (1, false),
            "decr" => (-1, false),
            "incrby" => (int_arg(&args[2])?, false),
            _ => {
                let v = int_arg(&args[2])?;
                (v.wrapping_neg(), v == i64::MIN)
            }
        };
        Ok(Self {
            key: args[1].clone(),
            delta,
            decrement_of_min,
        })
    }
}

impl WriteOp for IncrBy {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        if self.decrement_of_min {
            return Reply::error("ERR decrement would overflow");
        }
        let old = match string_entry(txn, &self.key) {
            Ok(old) => old,
            Err(e) => return e,
        };
        let (current, expire_at) = match &old {
            Some(e) => match parse_i64(&e.payload) {
                Some(n) => (n, e.expire_at),
                None => return Reply::error(error::NOT_INTEGER),
            },
            None => (0, None),
        };
        let Some(n) = current.checked_add(self.delta) else {
            return Reply::error(error::OVERFLOW);
        };
        let mut digits = itoa::Buffer::new();
        let text = Bytes::copy_from_slice(digits.format(n).as_bytes());
        store_string(txn, &self.key, text, expire_at);
        Reply::Int(n)
    }
}

pub struct IncrByFloat {
    key: Bytes,
    delta: f64,
}

impl Parse for IncrByFloat {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            delta: parse_f64(&args[2]).ok_or(Reply::error(error::NOT_FLOAT))?,
        })
    }
}

impl WriteOp for IncrByFloat {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let old = match string_entry(txn, &self.key) {
            Ok(old) => old,
            Err(e) => return e,
        };
        let (current, expire_at) = match &old {
            Some(e) => match parse_f64(&e.payload) {
                Some(n) => (n, e.expire_at),
                None => return Reply::error(error::NOT_FLOAT),
            },
            None => (0.0, None),
        };
        let n = current + self.delta;
        if !n.is_finite() {
            return Reply::error(error::NAN_OR_INF);
        }
        let text = Bytes::from(format_f64_at_scale(n, current.abs().max(self.delta.abs())));
        store_string(txn, &self.key, text.clone(), expire_at);
        Reply::Bulk(text)
    }
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`: the longest common subsequence
/// of two strings, by Redis's dynamic program, so that ties resolve to the same answer and
/// the IDX ranges come out in the same order (from the end of the strings). As in Redis, the
/// keys' types are checked before the options.
pub struct Lcs {
    a: Bytes,
    b: Bytes,
    options: Vec<Bytes>,
}

/// LCS's options.
#[derive(Default)]
struct LcsOptions {
    len_only: bool,
    indexes: bool,
    min_match_len: usize,
    with_match_len: bool,
}

impl LcsOptions {
    fn parse(opts: &[Bytes]) -> Result<Self, Reply> {
        let mut o = LcsOptions::default();
        let mut i = 0;
        while i < opts.len() {
            match opts[i].to_ascii_uppercase().as_slice() {
                b"LEN" => o.len_only = true,
                b"IDX" => o.indexes = true,
                b"WITHMATCHLEN" => o.with_match_len = true,
                b"MINMATCHLEN" if i + 1 < opts.len() => {
                    o.min_match_len = int_arg(&opts[i + 1])?.max(0) as usize;
                    i += 1;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        if o.len_only && o.indexes {
            return Err(Reply::error(
                "ERR If you want both the length and indexes, please just use IDX.",
            ));
        }
        Ok(o)
    }
}

/// Most memory LCS's table may take: Redis bounds it by `proto-max-bulk-len`.
const MAX_LCS_TABLE: usize = MAX_STRING;

impl Parse for Lcs {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Lcs {
            a: args[1].clone(),
            b: args[2].clone(),
            options: args[3..].to_vec(),
        })
    }
}

impl Read for Lcs {
    fn execute(self, store: &Store) -> Reply {
        let value = |key: &[u8]| match string_value(store, key) {
            Ok(v) => Ok(v.unwrap_or_default()),
            Err(Reply::Error(e)) if e.starts_with("WRONGTYPE") => Err(Reply::error(
                "ERR The specified keys must contain string values",
            )),
            Err(e) => Err(e),
        };
        let (a, b) = match (value(&self.a), value(&self.b)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let options = match LcsOptions::parse(&self.options) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let cells = (a.len() + 1).saturating_mul(b.len() + 1);
        if cells.saturating_mul(4) > MAX_LCS_TABLE {
            return Reply::error(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            );
        }
        options.reply(&lcs_table(&a, &b), &a, &b)
    }
}

/// The table of LCS lengths of every pair of prefixes, `(a.len()+1) × (b.len()+1)`.
fn lcs_table(a: &[u8], b: &[u8]) -> Vec<u32> {
    let width = b.len() + 1;
    let mut t = vec![0u32; (a.len() + 1) * width];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * width + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * width + j - 1] + 1
            } else {
                t[(i - 1) * width + j].max(t[i * width + j - 1])
            };
        }
    }
    t
}

impl LcsOptions {
    /// Walks the table back from the end, collecting the common bytes and the ranges of
    /// contiguous matches, as Redis's `lcsCommand` does.
    fn reply(&self, t: &[u32], a: &[u8], b: &[u8]) -> Reply {
        let width = b.len() + 1;
        let at = |i: usize, j: usize| t[i * width + j];
        let mut idx = at(a.len(), b.len()) as usize;
        if self.len_only {
            return Reply::Int(idx as i64);
        }
        let total = idx;
        let mut common = vec![0u8; idx];
        let mut matches = Vec::new();
        // `None`: no range open; else (a_start, a_end, b_start, b_end).
        let mut range: Option<(usize, usize, usize, usize)> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                common[idx - 1] = a[i - 1];
                range = match range {
                    None => Some((i - 1, i - 1, j - 1, j - 1)),
                    Some((sa, ea, sb, eb)) if sa == i && sb == j => Some((sa - 1, ea, sb - 1, eb)),
                    Some(r) => {
                        emit = true;
                        Some(r)
                    }
                };
                if range.is_some_and(|(sa, _, sb, _)| sa == 0 || sb == 0) {
                    emit = true;
                }
                idx -= 1;
                i -= 1;
                j -= 1;
            } else {
                if at(i - 1, j) > at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit |= range.is_some();
            }
            if emit {
                if let Some((sa, ea, sb, eb)) = range.take() {
                    let len = ea - sa + 1;
                    if self.min_match_len == 0 || len >= self.min_match_len {
                        let mut m = vec![
                            Reply::Array(vec![Reply::Int(sa as i64), Reply::Int(ea as i64)]),
                            Reply::Array(vec![Reply::Int(sb as i64), Reply::Int(eb as i64)]),
                        ];
                        if self.with_match_len {
                            m.push(Reply::Int(len as i64));
                        }
                        matches.push(Reply::Array(m));
                    }
                }
            }
        }
        if !self.indexes {
            return Reply::Bulk(Bytes::from(common));
        }
        Reply::Map(vec![
            (Reply::text("matches"), Reply::Array(matches)),
            (Reply::text("len"), Reply::Int(total as i64)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(opts: &[&str]) -> Result<LcsOptions, Reply> {
        let opts: Vec<Bytes> = opts.iter().map(|o| Bytes::from(o.to_string())).collect();
        LcsOptions::parse(&opts)
    }

    fn lcs(a: &str, b: &str, opts: &[&str]) -> Reply {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        options(opts).unwrap().reply(&lcs_table(a, b), a, b)
    }

    // The strings of the Redis suite's LCS tests.
    const RNA1: &str = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG";
    const RNA2: &str = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";

    #[test]
    fn lcs_finds_the_subsequence_and_its_length() {
        let Reply::Bulk(common) = lcs(RNA1, RNA2, &[]) else {
            panic!()
        };
        assert_eq!(common.len(), 227);
        assert!(matches!(lcs(RNA1, RNA2, &["LEN"]), Reply::Int(227)));
        assert!(matches!(lcs("", "abc", &["LEN"]), Reply::Int(0)));
    }

    #[test]
    fn lcs_ranges_come_from_the_end_with_their_lengths() {
        let Reply::Map(fields) = lcs("ohmytext", "mynewtext", &["IDX", "WITHMATCHLEN"]) else {
            panic!()
        };
        let int = |r: &Reply| match r {
            Reply::Int(n) => *n,
            _ => -1,
        };
        let Reply::Array(matches) = &fields[0].1 else {
            panic!()
        };
        // "text" at 4-7 / 5-8, then "my" at 2-3 / 0-1, as Redis answers.
        let flat: Vec<Vec<i64>> = matches
            .iter()
            .map(|m| {
                let Reply::Array(parts) = m else { panic!() };
                let mut v = Vec::new();
                for p in &parts[..2] {
                    let Reply::Array(r) = p else { panic!() };
                    v.extend(r.iter().map(int));
                }
                v.push(int(&parts[2]));
                v
            })
            .collect();
        assert_eq!(flat, vec![vec![4, 7, 5, 8, 4], vec![2, 3, 0, 1, 2]]);
        assert_eq!(int(&fields[1].1), 6);
    }

    #[test]
    fn lcs_refuses_len_with_idx() {
        assert!(options(&["LEN", "IDX"]).is_err());
        assert!(options(&["MINMATCHLEN"]).is_err());
    }
}
