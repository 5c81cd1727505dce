//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LMPOP, LLEN, LINDEX, LRANGE, LSET,
//! LTRIM, LREM, LINSERT, LPOS, LMOVE and RPOPLPUSH (the blocking forms need a connection
//! pinned to one client, a later step). Their meaning on the store is
//! [`crate::types::list`]'s. Arguments are checked in Redis's order, which decides the
//! reply when both an argument and the key are wrong.

use super::strings::{int_arg, or_nil};
use super::{Parse, Read};
use crate::store::members::View;
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::list::{self, End};
use crate::types::{pop_count, Collection};
use bytes::Bytes;
use fjord_common::number::parse_i64;
use fjord_common::{error, Bulks, Reply, Shape};

fn end_of(command: &[u8]) -> End {
    match command.first().map(u8::to_ascii_lowercase) {
        Some(b'r') => End::Right,
        _ => End::Left,
    }
}

/// A LEFT/RIGHT argument, or Redis's syntax error.
fn end_arg(word: &[u8]) -> Result<End, Reply> {
    End::parse(word).ok_or(Reply::error(error::SYNTAX))
}

fn bulks(elements: Vec<Bytes>) -> Reply {
    Reply::Array(elements.into_iter().map(Reply::Bulk).collect())
}

/// LPUSH, RPUSH, LPUSHX, RPUSHX: `key element [element …]`.
pub struct Push {
    key: Bytes,
    end: End,
    /// The X forms push only onto an existing list.
    only_existing: bool,
    elements: Vec<Bytes>,
}

impl Parse for Push {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            end: end_of(&args[0]),
            only_existing: args[0]
                .last()
                .is_some_and(|c| c.eq_ignore_ascii_case(&b'x')),
            elements: args[2..].to_vec(),
        })
    }
}

impl WriteOp for Push {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let found = if self.only_existing {
            list::find(txn, &self.key)
        } else {
            list::find_or_create(txn, &self.key).map(Some)
        };
        let mut l = match found {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        for element in self.elements {
            list::push(txn, &mut l, self.end, element);
        }
        l.save(txn, &self.key);
        Reply::Int(l.meta.size as i64)
    }
}

/// LPOP and RPOP: `key [count]`. With a count the reply is an array, and a missing key a
/// null array.
pub struct Pop {
    key: Bytes,
    end: End,
    count: Option<u64>,
}

impl Parse for Pop {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        if args.len() > 3 {
            return Err(Reply::error(error::wrong_arity(&super::lower_name(args))));
        }
        Ok(Self {
            key: args[1].clone(),
            end: end_of(&args[0]),
            count: pop_count(args)?,
        })
    }
}

impl WriteOp for Pop {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut l = match list::find(txn, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) if self.count.is_some() => return Reply::NilArray,
            Ok(None) => return Reply::Nil,
            Err(e) => return e,
        };
        let popped = match list::pop(txn, &mut l, self.end, self.count.unwrap_or(1)) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if !popped.is_empty() {
            l.save(txn, &self.key);
        }
        match self.count {
            Some(_) => bulks(popped),
            None => or_nil(popped.into_iter().next()),
        }
    }
}

/// `LMPOP numkeys key [key …] LEFT|RIGHT [COUNT count]`: pops from the first non-empty list.
pub struct LMPop {
    keys: Vec<Bytes>,
    end: End,
    count: u64,
}

impl Parse for LMPop {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (keys, end, count) = super::mpop_args(args, End::parse)?;
        Ok(Self { keys, end, count })
    }
}

impl WriteOp for LMPop {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        for key in &self.keys {
            let mut l = match list::find(txn, key) {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(e) => return e,
            };
            let popped = match list::pop(txn, &mut l, self.end, self.count) {
                Ok(p) => p,
                Err(e) => return e,
            };
            l.save(txn, key);
            return Reply::Array(vec![Reply::Bulk(key.clone()), bulks(popped)]);
        }
        Reply::NilArray
    }
}

/// `LLEN key`.
pub struct LLen {
    key: Bytes,
}

impl Parse for LLen {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl Read for LLen {
    fn execute(self, store: &Store) -> Reply {
        match list::find(&mut View::new(store), &self.key) {
            Ok(l) => Reply::Int(l.map_or(0, |l| l.meta.size as i64)),
            Err(e) => e,
        }
    }
}

/// `LINDEX key index`. The key is looked up before the index is parsed, as in Redis.
pub struct LIndex {
    key: Bytes,
    index: Bytes,
}

impl Parse for LIndex {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            index: args[2].clone(),
        })
    }
}

impl Read for LIndex {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let l = match list::find(&mut view, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::Nil,
            Err(e) => return e,
        };
        let index = match int_arg(&self.index) {
            Ok(i) => i,
            Err(e) => return e,
        };
        match list::index_of(&l, index) {
            Some(i) => list::get(&mut view, &l, i).map_or_else(|e| e, or_nil),
            None => Reply::Nil,
        }
    }
}

/// `key start stop`, as LRANGE and LTRIM take them (the numbers are parsed first).
fn key_start_stop(args: &[Bytes]) -> Result<(Bytes, i64, i64), Reply> {
    let start = int_arg(&args[2])?;
    let stop = int_arg(&args[3])?;
    Ok((args[1].clone(), start, stop))
}

/// `LRANGE key start stop`.
pub struct LRange {
    key: Bytes,
    start: i64,
    stop: i64,
}

impl Parse for LRange {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (key, start, stop) = key_start_stop(args)?;
        Ok(Self { key, start, stop })
    }
}

impl Read for LRange {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let l = match list::find(&mut view, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::Array(Vec::new()),
            Err(e) => return e,
        };
        match list::clamp_range(l.meta.size, self.start, self.stop) {
            Some(span) => {
                let mut out = Bulks::new(Shape::Array);
                let read = list::for_each(&mut view, &l, span, false, |_, element| {
                    out.push(element);
                    true
                });
                read.map_or_else(|e| e, |()| out.into())
            }
            None => Reply::Array(Vec::new()),
        }
    }
}

/// `LTRIM key start stop`.
pub struct LTrim {
    key: Bytes,
    start: i64,
    stop: i64,
}

impl Parse for LTrim {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (key, start, stop) = key_start_stop(args)?;
        Ok(Self { key, start, stop })
    }
}

impl WriteOp for LTrim {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut l = match list::find(txn, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::ok(),
            Err(e) => return e,
        };
        let keep = list::clamp_range(l.meta.size, self.start, self.stop);
        if keep != Some((0, l.meta.size - 1)) {
            list::trim(txn, &mut l, keep);
            l.save(txn, &self.key);
        }
        Reply::ok()
    }
}

/// `LSET key index element`. The key is looked up before the index is parsed.
pub struct LSet {
    key: Bytes,
    index: Bytes,
    element: Bytes,
}

impl Parse for LSet {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            index: args[2].clone(),
            element: args[3].clone(),
        })
    }
}

impl WriteOp for LSet {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let l = match list::find(txn, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::error(error::NO_SUCH_KEY),
            Err(e) => return e,
        };
        let index = match int_arg(&self.index) {
            Ok(i) => i,
            Err(e) => return e,
        };
        match list::index_of(&l, index) {
            Some(i) => {
                list::set(txn, &l, i, self.element);
                Reply::ok()
            }
            None => Reply::error(error::INDEX_OUT_OF_RANGE),
        }
    }
}

/// `LREM key count element`: removes up to |count| occurrences, from the head for a
/// positive count and from the tail for a negative one; every occurrence for 0.
pub struct LRem {
    key: Bytes,
    count: i64,
    element: Bytes,
}

impl Parse for LRem {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            count: int_arg(&args[2])?,
            element: args[3].clone(),
        })
    }
}

impl WriteOp for LRem {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut l = match list::find(txn, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let limit = match self.count {
            0 => u64::MAX,
            n => n.unsigned_abs(),
        };
        let mut matches = Vec::new();
        let all = (0, l.meta.size - 1);
        let found = list::for_each(txn, &l, all, self.count < 0, |i, v| {
            if v == self.element {
                matches.push(i);
            }
            (matches.len() as u64) < limit
        });
        if let Err(e) = found {
            return e;
        }
        if matches.is_empty() {
            return Reply::Int(0);
        }
        matches.sort_unstable();
        if let Err(e) = list::remove(txn, &mut l, &matches) {
            return e;
        }
        l.save(txn, &self.key);
        Reply::Int(matches.len() as i64)
    }
}

/// `LINSERT key BEFORE|AFTER pivot element`: -1 when the pivot is not there.
pub struct LInsert {
    key: Bytes,
    after: bool,
    pivot: Bytes,
    element: Bytes,
}

impl Parse for LInsert {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let after = if args[2].eq_ignore_ascii_case(b"after") {
            true
        } else if args[2].eq_ignore_ascii_case(b"before") {
            false
        } else {
            return Err(Reply::error(error::SYNTAX));
        };
        Ok(Self {
            key: args[1].clone(),
            after,
            pivot: args[3].clone(),
            element: args[4].clone(),
        })
    }
}

impl WriteOp for LInsert {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut l = match list::find(txn, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let mut pivot = None;
        let all = (0, l.meta.size - 1);
        let found = list::for_each(txn, &l, all, false, |i, v| {
            if v == self.pivot {
                pivot = Some(i);
            }
            pivot.is_none()
        });
        if let Err(e) = found {
            return e;
        }
        let Some(pivot) = pivot else {
            return Reply::Int(-1);
        };
        let at = pivot + u64::from(self.after);
        if let Err(e) = list::insert(txn, &mut l, at, self.element) {
            return e;
        }
        l.save(txn, &self.key);
        Reply::Int(l.meta.size as i64)
    }
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
pub struct LPos {
    key: Bytes,
    element: Bytes,
    /// Which match to start from: 1 the first, -1 the first from the tail.
    rank: i64,
    /// `None`: reply with one index (or nil); `Some(0)`: every match.
    count: Option<u64>,
    /// Elements compared at most (0: all).
    max_len: u64,
}

impl Parse for LPos {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (mut rank, mut count, mut max_len) = (1i64, None, 0u64);
        let non_negative = |arg: &Bytes, text: &'static str| {
            parse_i64(arg)
                .filter(|&n| n >= 0)
                .map(|n| n as u64)
                .ok_or(Reply::error(text))
        };
        let mut rest = args[3..].iter();
        while let Some(opt) = rest.next() {
            let Some(arg) = rest.next() else {
                return Err(Reply::error(error::SYNTAX));
            };
            match opt.to_ascii_uppercase().as_slice() {
                b"RANK" => {
                    rank = int_arg(arg)?;
                    if rank == 0 {
                        return Err(Reply::error(error::LPOS_RANK_ZERO));
                    }
                }
                b"COUNT" => count = Some(non_negative(arg, "ERR COUNT can't be negative")?),
                b"MAXLEN" => max_len = non_negative(arg, "ERR MAXLEN can't be negative")?,
                _ => return Err(Reply::error(error::SYNTAX)),
            }
        }
        Ok(Self {
            key: args[1].clone(),
            element: args[2].clone(),
            rank,
            count,
            max_len,
        })
    }
}

impl Read for LPos {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let l = match list::find(&mut view, &self.key) {
            Ok(Some(l)) => l,
            Ok(None) if self.count.is_some() => return Reply::Array(Vec::new()),
            Ok(None) => return Reply::Nil,
            Err(e) => return e,
        };
        // Redis negates the rank for the direction; i64::MIN stays negative there and so
        // matches from the first one, which is what -1 does.
        let skip = match self.rank {
            i64::MIN => 0,
            rank => rank.unsigned_abs() - 1,
        };
        let wanted = match self.count {
            None => 1,
            Some(0) => u64::MAX,
            Some(n) => n,
        };
        let (mut seen, mut matches, mut found) = (0u64, 0u64, Vec::new());
        let all = (0, l.meta.size - 1);
        let walked = list::for_each(&mut view, &l, all, self.rank < 0, |i, v| {
            if self.max_len != 0 && seen == self.max_len {
                return false;
            }
            seen += 1;
            if v == self.element {
                matches += 1;
                if matches > skip {
                    found.push(Reply::Int(i as i64));
                }
            }
            (found.len() as u64) < wanted
        });
        if let Err(e) = walked {
            return e;
        }
        match self.count {
            Some(_) => Reply::Array(found),
            None => found.pop().unwrap_or(Reply::Nil),
        }
    }
}

/// LMOVE (`source destination LEFT|RIGHT LEFT|RIGHT`) and RPOPLPUSH (`source
/// destination`, i.e. RIGHT LEFT).
pub struct LMove {
    from: Bytes,
    to: Bytes,
    from_end: End,
    to_end: End,
}

impl Parse for LMove {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (from_end, to_end) = match args.get(3..5) {
            Some([a, b]) => (end_arg(a)?, end_arg(b)?),
            _ => (End::Right, End::Left),
        };
        Ok(Self {
            from: args[1].clone(),
            to: args[2].clone(),
            from_end,
            to_end,
        })
    }
}

impl WriteOp for LMove {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut from = match list::find(txn, &self.from) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::Nil,
            Err(e) => return e,
        };
        // The destination's type is checked before anything moves.
        let same = self.from == self.to;
        let to = if same {
            None
        } else {
            match list::find(txn, &self.to) {
                Ok(l) => Some(l),
                Err(e) => return e,
            }
        };
        let element = match list::pop(txn, &mut from, self.from_end, 1) {
            Ok(mut p) => match p.pop() {
                Some(e) => e,
                None => return Reply::Nil,
            },
            Err(e) => return e,
        };
        let mut to: Collection = match to {
            None => from,
            Some(to) => {
                from.save(txn, &self.from);
                match to {
                    Some(l) => l,
                    None => match list::find_or_create(txn, &self.to) {
                        Ok(l) => l,
                        Err(e) => return e,
                    },
                }
            }
        };
        list::push(txn, &mut to, self.to_end, element.clone());
        to.save(txn, &self.to);
        Reply::Bulk(element)
    }
}
