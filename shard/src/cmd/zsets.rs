//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZCOUNT, ZLEXCOUNT, ZRANK,
//! ZREVRANK, the ZRANGE family (ZRANGE with BYSCORE/BYLEX/REV/LIMIT, ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZREVRANGE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZRANGESTORE), ZPOPMIN, ZPOPMAX,
//! ZMPOP, the ZREMRANGEBY family and ZRANDMEMBER (the algebra is in [`super::algebra`], ZSCAN
//! with the other scans in [`super::keys`]). Their meaning on the store is
//! [`crate::types::zset`]'s.

use super::strings::or_nil;
use super::{Parse, Read};
use crate::store::encoding::ValueType;
use crate::store::members::{Members, View};
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::zset::{self, LexBound, LexRange, ScoreBound, ScoreRange};
use crate::types::{check_member_name, random_count, Collection};
use bytes::Bytes;
use fjord_common::algebra::scored_reply;
use fjord_common::number::{parse_f64, parse_i64};
use fjord_common::{error, Reply};

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// A score argument (`inf`, `+inf`, `-inf` allowed; NaN refused), as ZADD reads it.
fn parse_score(arg: &[u8]) -> Result<f64, Reply> {
    parse_f64(arg).ok_or(Reply::error(error::NOT_FLOAT))
}

fn parse_score_bound(arg: &[u8]) -> Result<ScoreBound, Reply> {
    let (exclusive, text) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let value = parse_f64(text).ok_or(Reply::error(NOT_FLOAT_RANGE))?;
    Ok(ScoreBound { value, exclusive })
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    Ok(ScoreRange {
        min: parse_score_bound(min)?,
        max: parse_score_bound(max)?,
    })
}

fn parse_lex_bound(arg: &Bytes) -> Result<LexBound, Reply> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Ok(LexBound::Min),
        Some(b'+') if arg.len() == 1 => Ok(LexBound::Max),
        Some(b'[') => Ok(LexBound::Inclusive(arg.slice(1..))),
        Some(b'(') => Ok(LexBound::Exclusive(arg.slice(1..))),
        _ => Err(Reply::error(NOT_LEX_RANGE)),
    }
}

fn parse_lex_range(min: &Bytes, max: &Bytes) -> Result<LexRange, Reply> {
    Ok(LexRange {
        min: parse_lex_bound(min)?,
        max: parse_lex_bound(max)?,
    })
}

fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or(Reply::error(error::NOT_INTEGER))
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …]`, and ZINCRBY.
pub struct ZAdd {
    key: Bytes,
    pairs: Vec<(f64, Bytes)>,
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

impl ZAdd {
    /// GEOADD's ZADD: points as their scores, with GEOADD's options (NX, XX, CH).
    pub(super) fn points(
        key: Bytes,
        pairs: Vec<(f64, Bytes)>,
        nx: bool,
        xx: bool,
        ch: bool,
    ) -> Self {
        ZAdd {
            key,
            pairs,
            nx,
            xx,
            gt: false,
            lt: false,
            ch,
            incr: false,
        }
    }
}

impl Parse for ZAdd {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let mut z = ZAdd {
            key: args[1].clone(),
            pairs: Vec::new(),
            nx: false,
            xx: false,
            gt: false,
            lt: false,
            ch: false,
            incr: false,
        };
        let mut i = 2;
        if args[0].eq_ignore_ascii_case(b"zincrby") {
            z.incr = true;
        } else {
            while i < args.len() {
                match args[i].to_ascii_uppercase().as_slice() {
                    b"NX" => z.nx = true,
                    b"XX" => z.xx = true,
                    b"GT" => z.gt = true,
                    b"LT" => z.lt = true,
                    b"CH" => z.ch = true,
                    b"INCR" => z.incr = true,
                    _ => break,
                }
                i += 1;
            }
        }
        let rest = &args[i..];
        if rest.is_empty() || !rest.len().is_multiple_of(2) {
            return Err(Reply::error(error::SYNTAX));
        }
        if z.nx && z.xx {
            return Err(Reply::error(
                "ERR XX and NX options at the same time are not compatible",
            ));
        }
        if (z.nx && (z.gt || z.lt)) || (z.gt && z.lt) {
            return Err(Reply::error(
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if z.incr && rest.len() > 2 {
            return Err(Reply::error(
                "ERR INCR option supports a single increment-element pair",
            ));
        }
        for pair in rest.chunks_exact(2) {
            let score = parse_score(&pair[0])?;
            check_member_name(&pair[1])?;
            z.pairs.push((score, pair[1].clone()));
        }
        Ok(z)
    }
}

impl WriteOp for ZAdd {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let found = match zset::find(txn, &self.key) {
            Ok(z) => z,
            Err(e) => return e,
        };
        let mut z = match found {
            Some(z) => z,
            None if self.xx => {
                return if self.incr { Reply::Nil } else { Reply::Int(0) };
            }
            None => match Collection::find_or_create(txn, &self.key, ValueType::ZSet) {
                Ok(z) => z,
                Err(e) => return e,
            },
        };
        let (mut added, mut updated) = (0i64, 0i64);
        let mut last = None;
        for (score, member) in &self.pairs {
            let current = match zset::score(txn, &z, member) {
                Ok(c) => c,
                Err(e) => return e,
            };
            let new = match (current, self.incr) {
                (Some(c), true) => c + score,
                _ => *score,
            };
            if new.is_nan() {
                return Reply::error("ERR resulting score is not a number (NaN)");
            }
            let allowed = match current {
                None => !self.xx,
                Some(c) => !self.nx && (!self.gt || new > c) && (!self.lt || new < c),
            };
            if !allowed {
                continue;
            }
            if zset::set(txn, &mut z, member, current, new) {
                added += 1;
            } else if current != Some(new) {
                updated += 1;
            }
            last = Some(new);
        }
        z.save(txn, &self.key);
        if self.incr {
            return last.map_or(Reply::Nil, Reply::Double);
        }
        Reply::Int(if self.ch { added + updated } else { added })
    }
}

/// `ZREM key member [member …]`.
pub struct ZRem {
    key: Bytes,
    members: Vec<Bytes>,
}

impl Parse for ZRem {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            members: args[2..].to_vec(),
        })
    }
}

impl WriteOp for ZRem {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut z = match zset::find(txn, &self.key) {
            Ok(Some(z)) => z,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let removed = self
            .members
            .iter()
            .filter(|m| zset::remove(txn, &mut z, m))
            .count();
        if removed > 0 {
            z.save(txn, &self.key);
        }
        Reply::Int(removed as i64)
    }
}

/// ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT: what one set says of members
/// or ranges.
pub struct ZLookup {
    key: Bytes,
    what: Lookup,
}

enum Lookup {
    Card,
    Score(Bytes),
    Scores(Vec<Bytes>),
    Rank(Bytes, bool),
    Count(ScoreRange),
    LexCount(LexRange),
}

impl Parse for ZLookup {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let what = match args[0].to_ascii_lowercase().as_slice() {
            b"zcard" => Lookup::Card,
            b"zscore" => Lookup::Score(args[2].clone()),
            b"zmscore" => Lookup::Scores(args[2..].to_vec()),
            b"zrank" => Lookup::Rank(args[2].clone(), false),
            b"zrevrank" => Lookup::Rank(args[2].clone(), true),
            b"zcount" => Lookup::Count(parse_score_range(&args[2], &args[3])?),
            _ => Lookup::LexCount(parse_lex_range(&args[2], &args[3])?),
        };
        Ok(Self {
            key: args[1].clone(),
            what,
        })
    }
}

impl Read for ZLookup {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let found = match zset::find(&mut view, &self.key) {
            Ok(z) => z,
            Err(e) => return e,
        };
        let result = (|| -> Result<Reply, Reply> {
            let Some(z) = found else {
                return Ok(match self.what {
                    Lookup::Card | Lookup::Count(_) | Lookup::LexCount(_) => Reply::Int(0),
                    Lookup::Scores(ms) => Reply::Array(ms.iter().map(|_| Reply::Nil).collect()),
                    Lookup::Score(_) | Lookup::Rank(..) => Reply::Nil,
                });
            };
            Ok(match self.what {
                Lookup::Card => Reply::Int(z.meta.size as i64),
                Lookup::Score(m) => {
                    zset::score(&mut view, &z, &m)?.map_or(Reply::Nil, Reply::Double)
                }
                Lookup::Scores(ms) => {
                    let mut out = Vec::with_capacity(ms.len());
                    for m in &ms {
                        out.push(zset::score(&mut view, &z, m)?.map_or(Reply::Nil, Reply::Double));
                    }
                    Reply::Array(out)
                }
                Lookup::Rank(m, rev) => match zset::rank(&mut view, &z, &m, rev)? {
                    Some((n, _)) => Reply::Int(n as i64),
                    None => Reply::Nil,
                },
                Lookup::Count(range) => {
                    let mut n = 0;
                    zset::walk_scores(&mut view, &z, &range, false, |_, _| {
                        n += 1;
                        true
                    })?;
                    Reply::Int(n)
                }
                Lookup::LexCount(range) => {
                    let mut n = 0;
                    zset::walk_lex(&mut view, &z, &range, false, |_, _| {
                        n += 1;
                        true
                    })?;
                    Reply::Int(n)
                }
            })
        })();
        result.unwrap_or_else(|e| e)
    }
}

/// What a ZRANGE-family command selects.
#[derive(Clone)]
enum Selection {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed range request: the ZRANGE family and ZRANGESTORE, ZREMRANGEBY*.
#[derive(Clone)]
struct RangeSpec {
    selection: Selection,
    rev: bool,
    /// LIMIT offset count (count < 0: no limit).
    limit: Option<(i64, i64)>,
    with_scores: bool,
}

impl RangeSpec {
    /// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]` from
    /// `args` (`start` at index 0), as ZRANGE and ZRANGESTORE take it.
    fn parse_zrange(args: &[Bytes], store: bool) -> Result<Self, Reply> {
        let (mut by_score, mut by_lex, mut rev, mut with_scores) = (false, false, false, false);
        let mut limit = None;
        let mut i = 2;
        while i < args.len() {
            match args[i].to_ascii_uppercase().as_slice() {
                b"BYSCORE" => by_score = true,
                b"BYLEX" => by_lex = true,
                b"REV" => rev = true,
                b"WITHSCORES" if !store => with_scores = true,
                b"LIMIT" if i + 2 < args.len() => {
                    limit = Some((int_arg(&args[i + 1])?, int_arg(&args[i + 2])?));
                    i += 2;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        if by_score && by_lex {
            return Err(Reply::error(error::SYNTAX));
        }
        if limit.is_some() && !by_score && !by_lex {
            return Err(Reply::error(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if with_scores && by_lex {
            return Err(Reply::error(
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        // With REV, the first argument is the high end.
        let (a, b) = if rev && (by_score || by_lex) {
            (&args[1], &args[0])
        } else {
            (&args[0], &args[1])
        };
        let selection = if by_score {
            Selection::Score(parse_score_range(a, b)?)
        } else if by_lex {
            Selection::Lex(parse_lex_range(a, b)?)
        } else {
            Selection::Rank(int_arg(a)?, int_arg(b)?)
        };
        Ok(RangeSpec {
            selection,
            rev,
            limit,
            with_scores,
        })
    }

    /// The older forms: ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX,
    /// ZREVRANGE (`args` from the key's next argument on).
    fn parse_legacy(name: &[u8], args: &[Bytes]) -> Result<Self, Reply> {
        let name = name.to_ascii_lowercase();
        let rev = name.starts_with(b"zrev");
        let by_score = name.ends_with(b"byscore");
        let by_lex = name.ends_with(b"bylex");
        let (mut limit, mut with_scores) = (None, false);
        let mut i = 2;
        while i < args.len() {
            match args[i].to_ascii_uppercase().as_slice() {
                b"WITHSCORES" if !by_lex => with_scores = true,
                b"LIMIT" if (by_score || by_lex) && i + 2 < args.len() => {
                    limit = Some((int_arg(&args[i + 1])?, int_arg(&args[i + 2])?));
                    i += 2;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        let (lo, hi) = if rev {
            (&args[1], &args[0])
        } else {
            (&args[0], &args[1])
        };
        let selection = if by_score {
            Selection::Score(parse_score_range(lo, hi)?)
        } else if by_lex {
            Selection::Lex(parse_lex_range(lo, hi)?)
        } else {
            Selection::Rank(int_arg(&args[0])?, int_arg(&args[1])?)
        };
        Ok(RangeSpec {
            selection,
            rev,
            limit,
            with_scores,
        })
    }

    /// The members selected, in reply order, with their scores.
    fn select(&self, m: &mut impl Members, z: &Collection) -> Result<Vec<(Bytes, f64)>, Reply> {
        // What to skip and take along the walk: the LIMIT, or the rank range.
        let (mut skip, mut take) = match (&self.selection, self.limit) {
            (_, Some((offset, _))) if offset < 0 => return Ok(Vec::new()),
            (Selection::Rank(start, stop), _) => {
                let len = z.meta.size as i64;
                let start = if *start < 0 {
                    (start + len).max(0)
                } else {
                    *start
                };
                let stop = if *stop < 0 {
                    stop + len
                } else {
                    (*stop).min(len - 1)
                };
                if start > stop || start >= len {
                    return Ok(Vec::new());
                }
                (start as u64, (stop - start + 1) as u64)
            }
            (_, Some((offset, count))) => (offset as u64, u64::try_from(count).unwrap_or(u64::MAX)),
            (_, None) => (0, u64::MAX),
        };
        let mut out = Vec::new();
        if take == 0 {
            return Ok(out);
        }
        let push = |member: &[u8], score: f64| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            out.push((Bytes::copy_from_slice(member), score));
            take -= 1;
            take > 0
        };
        match &self.selection {
            Selection::Rank(..) => zset::walk(m, z, self.rev, push)?,
            Selection::Score(range) => zset::walk_scores(m, z, range, self.rev, push)?,
            Selection::Lex(range) => zset::walk_lex(m, z, range, self.rev, push)?,
        }
        Ok(out)
    }
}

/// ZRANGE and its older forms.
pub struct ZRange {
    key: Bytes,
    spec: RangeSpec,
}

impl Parse for ZRange {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let spec = if args[0].eq_ignore_ascii_case(b"zrange") {
            RangeSpec::parse_zrange(&args[2..], false)?
        } else {
            RangeSpec::parse_legacy(&args[0], &args[2..])?
        };
        Ok(Self {
            key: args[1].clone(),
            spec,
        })
    }
}

impl Read for ZRange {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let z = match zset::find(&mut view, &self.key) {
            Ok(Some(z)) => z,
            Ok(None) => return Reply::Array(Vec::new()),
            Err(e) => return e,
        };
        match self.spec.select(&mut view, &z) {
            Ok(items) => scored_reply(items, self.spec.with_scores),
            Err(e) => e,
        }
    }
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`.
pub struct ZRangeStore {
    dest: Bytes,
    src: Bytes,
    spec: RangeSpec,
}

impl Parse for ZRangeStore {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            dest: args[1].clone(),
            src: args[2].clone(),
            spec: RangeSpec::parse_zrange(&args[3..], true)?,
        })
    }
}

impl WriteOp for ZRangeStore {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let items = match zset::find(txn, &self.src) {
            Ok(Some(z)) => match self.spec.select(txn, &z) {
                Ok(items) => items,
                Err(e) => return e,
            },
            Ok(None) => Vec::new(),
            Err(e) => return e,
        };
        Reply::Int(zset::store(txn, &self.dest, &items))
    }
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX: `key min max`.
pub struct ZRemRange {
    key: Bytes,
    spec: RangeSpec,
}

impl Parse for ZRemRange {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = args[0].to_ascii_lowercase();
        let selection = if name.ends_with(b"rank") {
            Selection::Rank(int_arg(&args[2])?, int_arg(&args[3])?)
        } else if name.ends_with(b"score") {
            Selection::Score(parse_score_range(&args[2], &args[3])?)
        } else {
            Selection::Lex(parse_lex_range(&args[2], &args[3])?)
        };
        Ok(Self {
            key: args[1].clone(),
            spec: RangeSpec {
                selection,
                rev: false,
                limit: None,
                with_scores: false,
            },
        })
    }
}

impl WriteOp for ZRemRange {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut z = match zset::find(txn, &self.key) {
            Ok(Some(z)) => z,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let items = match self.spec.select(txn, &z) {
            Ok(items) => items,
            Err(e) => return e,
        };
        for (m, _) in &items {
            zset::remove(txn, &mut z, m);
        }
        if !items.is_empty() {
            z.save(txn, &self.key);
        }
        Reply::Int(items.len() as i64)
    }
}

/// Pops up to `count` members from an end of the set under `key`.
fn pop(txn: &mut Txn<'_>, key: &[u8], max: bool, count: u64) -> Result<Vec<(Bytes, f64)>, Reply> {
    let Some(mut z) = zset::find(txn, key)? else {
        return Ok(Vec::new());
    };
    let items = zset::pop(txn, &mut z, max, count)?;
    if !items.is_empty() {
        z.save(txn, key);
    }
    Ok(items)
}

/// `ZPOPMIN|ZPOPMAX key [count]`.
pub struct ZPop {
    key: Bytes,
    max: bool,
    count: Option<u64>,
}

impl Parse for ZPop {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        if args.len() > 3 {
            return Err(Reply::error(error::SYNTAX));
        }
        Ok(Self {
            key: args[1].clone(),
            max: args[0].eq_ignore_ascii_case(b"zpopmax"),
            count: crate::types::pop_count(args)?,
        })
    }
}

impl WriteOp for ZPop {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        match pop(txn, &self.key, self.max, self.count.unwrap_or(1)) {
            // Without a count, one flat [member, score] (an empty array when none).
            Ok(items) if self.count.is_none() => Reply::Array(
                items
                    .into_iter()
                    .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                    .collect(),
            ),
            Ok(items) => scored_reply(items, true),
            Err(e) => e,
        }
    }
}

/// `ZMPOP numkeys key [key …] MIN|MAX [COUNT count]`: pops from the first non-empty set.
pub struct ZMPop {
    keys: Vec<Bytes>,
    max: bool,
    count: u64,
}

impl Parse for ZMPop {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let side = |w: &[u8]| match w.to_ascii_uppercase().as_slice() {
            b"MIN" => Some(false),
            b"MAX" => Some(true),
            _ => None,
        };
        let (keys, max, count) = super::mpop_args(args, side)?;
        Ok(Self { keys, max, count })
    }
}

impl WriteOp for ZMPop {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        for key in &self.keys {
            match pop(txn, key, self.max, self.count) {
                Ok(items) if items.is_empty() => continue,
                Ok(items) => {
                    // Nested pairs in both protocols, as Redis replies.
                    let pairs = items
                        .into_iter()
                        .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
                        .collect();
                    return Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs)]);
                }
                Err(e) => return e,
            }
        }
        Reply::NilArray
    }
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`: as HRANDFIELD, from one pass.
pub struct ZRandMember {
    key: Bytes,
    count: Option<i64>,
    with_scores: bool,
}

impl Parse for ZRandMember {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (count, with_scores) = random_count(args, Some(b"withscores"))?;
        Ok(Self {
            key: args[1].clone(),
            count,
            with_scores,
        })
    }
}

impl Read for ZRandMember {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let z = match zset::find(&mut view, &self.key) {
            Ok(Some(z)) => z,
            Ok(None) if self.count.is_none() => return Reply::Nil,
            Ok(None) => return Reply::Array(Vec::new()),
            Err(e) => return e,
        };
        let picks = match z.draw(&mut view, self.count.unwrap_or(1), &mut rand::thread_rng()) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let items: Vec<(Bytes, f64)> = picks
            .into_iter()
            .map(|(m, v)| (m, zset::decode_score(&v).unwrap_or(0.0)))
            .collect();
        match self.count {
            None => or_nil(items.into_iter().next().map(|(m, _)| m)),
            Some(_) => scored_reply(items, self.with_scores),
        }
    }
}
