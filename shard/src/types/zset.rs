//! Sorted sets: per member an item (`member → score`, f64 bits big-endian) and a score index
//! entry (`score (order-preserving) ++ member → empty`), counted in the set's entry.
//!
//! The index orders members by (score, member) as Redis's skiplist does, so ranges by score
//! seek straight to their start and read only what they return; ranges by rank walk from an
//! end (O(rank)); ranges by lex read the items, which are in member order.
//!
//! The set's [`IndexBounds`] say where its live entries start and end, so that a scan from an
//! end starts past the deleted entries there (tombstones until compaction) instead of
//! stepping over every member removed from that end before: without them, N pops (or a queue
//! that takes its lowest member with ZRANGEBYSCORE and ZREM) cost O(N²).
//!
//! A bound is *exact* when it is the bound of the end entry itself: a new set's first member
//! makes both exact, a pop leaves the bound exact at the next member, and an addition beyond
//! it keeps it exact. Removing the entry an exact bound names (ZREM, ZREMRANGE*, a score
//! change) moves the bound in to the next live entry, one seek that steps over no more than
//! what this write removed. A bound that is not exact (written before, or cut short) is only a
//! limit, and stays where it is until a pop.

use super::{check_member_name, Collection};
use crate::store::encoding::{
    IndexBounds, MemberKind, ValueType, MAX_BOUND_LEN, MEMBER_PREFIX_LEN,
};
use crate::store::members::Members;
use crate::store::writer::Txn;
use bytes::Bytes;
use fjord_common::Reply;

/// The sorted set under `key` (`None` when missing), or WRONGTYPE.
pub fn find(m: &mut impl Members, key: &[u8]) -> Result<Option<Collection>, Reply> {
    Collection::find(m, key, ValueType::ZSet)
}

/// A score as 8 bytes that sort as the numbers do (-0 sorts as 0, as Redis compares them).
fn sortable(score: f64) -> [u8; 8] {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    ordered.to_be_bytes()
}

fn from_sortable(raw: [u8; 8]) -> f64 {
    let ordered = u64::from_be_bytes(raw);
    let bits = if ordered >> 63 == 1 {
        ordered ^ (1 << 63)
    } else {
        !ordered
    };
    f64::from_bits(bits)
}

fn index_name(score: f64, member: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(8 + member.len());
    name.extend_from_slice(&sortable(score));
    name.extend_from_slice(member);
    name
}

/// A low bound at or below `name`: the name, or a prefix of it.
fn low_bound(name: &[u8]) -> &[u8] {
    &name[..name.len().min(MAX_BOUND_LEN)]
}

/// A high bound at or above `name`: the name, or the first key after every key a prefix of
/// it starts (`None` when there is none that short).
fn high_bound(name: &[u8]) -> Option<Vec<u8>> {
    if name.len() <= MAX_BOUND_LEN {
        return Some(name.to_vec());
    }
    let mut cut = name[..MAX_BOUND_LEN].to_vec();
    while let Some(last) = cut.pop() {
        if last < 0xff {
            cut.push(last + 1);
            return Some(cut);
        }
    }
    None
}

/// Moves a bound out to take in a new index entry named `name`.
fn widen(bounds: &mut IndexBounds, name: &[u8]) {
    if bounds.low.as_ref().is_some_and(|low| name < low.as_slice()) {
        bounds.low = Some(low_bound(name).to_vec());
    }
    if bounds
        .high
        .as_ref()
        .is_some_and(|high| name > high.as_slice())
    {
        bounds.high = high_bound(name);
    }
}

/// The part of the score index where the live entries lie: all of it, or less where the
/// set's bounds are known and hold for what `m` reads.
fn index_range(m: &mut impl Members, z: &Collection) -> Result<(Vec<u8>, Vec<u8>), Reply> {
    let (mut lo, mut hi) = z.member_range(MemberKind::Score);
    let IndexBounds { low, high } = &z.meta.bounds;
    if (low.is_some() || high.is_some()) && m.reads_members_of(z)? {
        if let Some(low) = low {
            lo = z.member_key(MemberKind::Score, low);
        }
        if let Some(high) = high {
            hi = z.member_key(MemberKind::Score, high);
            hi.push(0); // the first key after it
        }
    }
    Ok((lo, hi))
}

/// Splits a score index key into score and member.
fn split_index_key(key: &[u8]) -> Option<(f64, &[u8])> {
    let rest = key.get(MEMBER_PREFIX_LEN..)?;
    let raw: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    Some((from_sortable(raw), &rest[8..]))
}

/// A score as an item stores it (f64 bits, big-endian).
pub fn decode_score(v: &[u8]) -> Option<f64> {
    Some(f64::from_bits(u64::from_be_bytes(v.try_into().ok()?)))
}

/// The score of `member`.
pub fn score(m: &mut impl Members, z: &Collection, member: &[u8]) -> Result<Option<f64>, Reply> {
    if check_member_name(member).is_err() {
        return Ok(None);
    }
    let v = m.member(&z.member_key(MemberKind::Item, member))?;
    Ok(v.and_then(|v| decode_score(&v)))
}

/// Sets `member`'s score, given its score now (`old`, as [`score`] read it); returns
/// whether the member is new. The caller saves the set.
pub fn set(
    txn: &mut Txn<'_>,
    z: &mut Collection,
    member: &[u8],
    old: Option<f64>,
    new: f64,
) -> bool {
    let item = z.member_key(MemberKind::Item, member);
    let name = index_name(new, member);
    let old_name = old.map(|old| index_name(old, member));
    if let (Some(old), Some(old_name)) = (old, &old_name) {
        if old.to_bits() == new.to_bits() {
            return false;
        }
        txn.remove_member(z.member_key(MemberKind::Score, old_name));
    } else {
        if z.meta.size == 0 {
            // The only member: both bounds are exact from the start.
            z.meta.bounds = IndexBounds {
                low: Some(low_bound(&name).to_vec()),
                high: high_bound(&name),
            };
        }
        z.meta.size += 1;
    }
    txn.put_member(item, Bytes::copy_from_slice(&new.to_bits().to_be_bytes()));
    widen(&mut z.meta.bounds, &name);
    txn.put_member(z.member_key(MemberKind::Score, &name), Bytes::new());
    if let Some(old_name) = &old_name {
        narrow(txn, z, old_name);
    }
    old.is_none()
}

/// After the index entry `name` was removed: an exact bound that named it moves in to the
/// next live entry. A failed read leaves the bound where it was, which still holds.
fn narrow(txn: &mut Txn<'_>, z: &mut Collection, name: &[u8]) {
    let bounds = &z.meta.bounds;
    let at_low = bounds.low.as_deref() == Some(low_bound(name));
    let at_high = match bounds.high.as_deref() {
        Some(high) if name.len() <= MAX_BOUND_LEN => high == name,
        Some(high) => high_bound(name).as_deref() == Some(high),
        None => false,
    };
    for max in [false, true] {
        if (max && !at_high) || (!max && !at_low) {
            continue;
        }
        let mut next = None;
        let walked = walk(txn, z, max, |m, s| {
            next = Some(index_name(s, m));
            false
        });
        // An empty set is deleted by the caller; its bounds do not matter.
        if let (Ok(()), Some(next)) = (walked, next) {
            match max {
                true => z.meta.bounds.high = high_bound(&next),
                false => z.meta.bounds.low = Some(low_bound(&next).to_vec()),
            }
        }
    }
}

/// Pops up to `count` members from the low end (the high end when `max`), in order, and
/// records how far it got in the set's bounds. The caller saves the set.
pub fn pop(
    txn: &mut Txn<'_>,
    z: &mut Collection,
    max: bool,
    count: u64,
) -> Result<Vec<(Bytes, f64)>, Reply> {
    let mut items = Vec::new();
    if count == 0 {
        return Ok(items);
    }
    // One entry more than it pops: the one the bound is then exact at.
    walk(txn, z, max, |m, s| {
        items.push((Bytes::copy_from_slice(m), s));
        (items.len() as u64) <= count
    })?;
    let next = match items.len() as u64 > count {
        true => items.pop(),
        false => None,
    };
    // Their scores are known and the bound is set below: no read of the item, no narrowing.
    for (m, s) in &items {
        unlink(txn, z, m, *s);
    }
    // Every live entry now lies at or beyond the next one, if any, else beyond the last one
    // popped.
    if let Some((m, s)) = next.as_ref().or(items.last()) {
        let name = index_name(*s, m);
        if max {
            z.meta.bounds.high = high_bound(&name);
        } else {
            z.meta.bounds.low = Some(low_bound(&name).to_vec());
        }
    }
    Ok(items)
}

/// Removes `member`; returns whether it was there. The caller saves the set.
pub fn remove(txn: &mut Txn<'_>, z: &mut Collection, member: &[u8]) -> bool {
    if check_member_name(member).is_err() {
        return false;
    }
    let item = z.member_key(MemberKind::Item, member);
    let Some(old) = txn.read_member(&item).and_then(|v| decode_score(&v)) else {
        return false;
    };
    let old_name = unlink(txn, z, member, old);
    narrow(txn, z, &old_name);
    true
}

/// Removes `member`, whose score is `score`, leaving the bounds to the caller; returns the
/// name of the index entry it removed.
fn unlink(txn: &mut Txn<'_>, z: &mut Collection, member: &[u8], score: f64) -> Vec<u8> {
    let name = index_name(score, member);
    txn.remove_member(z.member_key(MemberKind::Item, member));
    txn.remove_member(z.member_key(MemberKind::Score, &name));
    z.meta.size -= 1;
    name
}

/// One end of a score range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// A score range `min..max`, as ZRANGEBYSCORE takes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: ScoreBound,
    pub max: ScoreBound,
}

impl ScoreRange {
    fn above_min(&self, s: f64) -> bool {
        if self.min.exclusive {
            s > self.min.value
        } else {
            s >= self.min.value
        }
    }

    fn below_max(&self, s: f64) -> bool {
        if self.max.exclusive {
            s < self.max.value
        } else {
            s <= self.max.value
        }
    }

    pub fn contains(&self, s: f64) -> bool {
        self.above_min(s) && self.below_max(s)
    }
}

/// One end of a lex range: `-`, `+`, `[name` or `(name`.
#[derive(Clone, Debug, PartialEq)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

/// A lex range `min..max`, as ZRANGEBYLEX takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn contains(&self, m: &[u8]) -> bool {
        let above = match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Inclusive(b) => m >= &b[..],
            LexBound::Exclusive(b) => m > &b[..],
        };
        let below = match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => m <= &b[..],
            LexBound::Exclusive(b) => m < &b[..],
        };
        above && below
    }
}

/// Visits (member, score) by score then member, from the low end (or the high end when
/// `rev`), until `visit` returns false.
pub fn walk(
    m: &mut impl Members,
    z: &Collection,
    rev: bool,
    mut visit: impl FnMut(&[u8], f64) -> bool,
) -> Result<(), Reply> {
    let (lo, hi) = index_range(m, z)?;
    m.scan_members_early(&lo, &hi, rev, &mut |k, _| match split_index_key(k) {
        Some((score, member)) => visit(member, score),
        None => true,
    })?;
    Ok(())
}

/// Visits the members whose scores are in `range`, in order (reversed when `rev`), seeking
/// straight to the range's first end: it reads what it returns and one entry more.
pub fn walk_scores(
    m: &mut impl Members,
    z: &Collection,
    range: &ScoreRange,
    rev: bool,
    mut visit: impl FnMut(&[u8], f64) -> bool,
) -> Result<(), Reply> {
    let (lo, hi) = index_range(m, z)?;
    let clamp = |v: f64| v.clamp(f64::NEG_INFINITY, f64::INFINITY);
    let (start, end) = if rev {
        // Everything with a score up to max: keys below the next score's first key.
        let mut end = z.member_key(MemberKind::Score, &sortable(clamp(range.max.value)));
        increment(&mut end);
        (lo, end.min(hi))
    } else {
        let start = z.member_key(MemberKind::Score, &sortable(clamp(range.min.value)));
        (start.max(lo), hi)
    };
    if start >= end {
        return Ok(());
    }
    m.scan_members_early(&start, &end, rev, &mut |k, _| {
        let Some((score, member)) = split_index_key(k) else {
            return true;
        };
        if rev {
            if !range.below_max(score) {
                return true; // an excluded max: skip the members at it
            }
            if !range.above_min(score) {
                return false;
            }
        } else {
            if !range.above_min(score) {
                return true;
            }
            if !range.below_max(score) {
                return false;
            }
        }
        visit(member, score)
    })?;
    Ok(())
}

/// Visits the members in `range` in member order (reversed when `rev`), with their scores.
pub fn walk_lex(
    m: &mut impl Members,
    z: &Collection,
    range: &LexRange,
    rev: bool,
    mut visit: impl FnMut(&[u8], f64) -> bool,
) -> Result<(), Reply> {
    let (lo, hi) = z.member_range(MemberKind::Item);
    let bound_key = |b: &LexBound| match b {
        LexBound::Inclusive(n) | LexBound::Exclusive(n) => Some(z.member_key(MemberKind::Item, n)),
        _ => None,
    };
    let start = match (&range.min, rev) {
        (LexBound::Max, _) => return Ok(()),
        (b, false) => bound_key(b).unwrap_or_else(|| lo.clone()),
        (_, true) => lo.clone(),
    };
    let end = match (&range.max, rev) {
        (LexBound::Min, _) => return Ok(()),
        (b, true) => match bound_key(b) {
            Some(mut k) => {
                k.push(0); // include the bound itself; `contains` decides
                k
            }
            None => hi.clone(),
        },
        (_, false) => hi.clone(),
    };
    if start >= end {
        return Ok(());
    }
    let skip = lo.len();
    m.scan_members_early(&start, &end, rev, &mut |k, v| {
        let member = &k[skip..];
        let in_range = range.contains(member);
        let past = if rev {
            !in_range
                && !LexRange {
                    max: LexBound::Max,
                    ..range.clone()
                }
                .contains(member)
        } else {
            !in_range
                && !LexRange {
                    min: LexBound::Min,
                    ..range.clone()
                }
                .contains(member)
        };
        if past {
            return false;
        }
        match (in_range, decode_score(v)) {
            (true, Some(score)) => visit(member, score),
            _ => true,
        }
    })?;
    Ok(())
}

/// The 0-based rank of `member` by (score, member), from the low end (high end when `rev`),
/// if it is there: O(rank).
pub fn rank(
    m: &mut impl Members,
    z: &Collection,
    member: &[u8],
    rev: bool,
) -> Result<Option<(u64, f64)>, Reply> {
    let Some(s) = score(m, z, member)? else {
        return Ok(None);
    };
    let mut n = 0u64;
    let mut found = false;
    walk(m, z, rev, |mm, _| {
        if mm == member {
            found = true;
            return false;
        }
        n += 1;
        true
    })?;
    Ok(found.then_some((n, s)))
}

/// Replaces whatever `key` holds with a sorted set of `items` (the STORE forms); an empty
/// result deletes the key. Returns the new size.
pub fn store(txn: &mut Txn<'_>, key: &[u8], items: &[(Bytes, f64)]) -> i64 {
    txn.delete(key);
    if items.is_empty() {
        return 0;
    }
    let version = txn.new_version();
    let mut z = Collection::new(ValueType::ZSet, key, version);
    for (member, new) in items {
        // A failed read fails the group's commit ([`Txn`] keeps the error).
        let current = score(txn, &z, member).unwrap_or(None);
        set(txn, &mut z, member, current, *new);
    }
    z.save(txn, key);
    z.meta.size as i64
}

/// Adds one to a big-endian byte string (the first key after every key it prefixes).
fn increment(key: &mut Vec<u8>) {
    for b in key.iter_mut().rev() {
        if *b < 0xff {
            *b += 1;
            return;
        }
        *b = 0;
    }
    key.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pops in one group read the index ahead of themselves, from either end: members the
    /// group adds beyond a window, moves or removes within it are what its later pops see,
    /// and the set committed is the one a Redis would hold.
    #[test]
    fn pops_of_one_group_see_what_the_group_changed_in_between() {
        use crate::fuzzing::resp2;
        use std::collections::BTreeSet;
        let dir = tempfile::tempdir().unwrap();
        let h = crate::fuzzing::Harness::open(crate::config::ShardConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        });
        let pair = |(s, m): &(i64, String)| {
            [
                Reply::Bulk(Bytes::from(m.clone())),
                Reply::Double(*s as f64),
            ]
        };
        // (score, member), as Redis orders them.
        let mut model: BTreeSet<(i64, String)> = (0..400).map(|i| (i, format!("m{i}"))).collect();
        for (score, member) in &model {
            h.run_line(&format!("ZADD z {score} {member}"));
        }
        // ZPOPMIN (ZPOPMAX when `max`) with an optional count, and its reply from the model.
        let pop = |model: &mut BTreeSet<(i64, String)>, count: Option<i64>, max: bool| {
            let popped: Vec<_> = (0..count.unwrap_or(1))
                .filter_map(|_| match max {
                    false => model.pop_first(),
                    true => model.pop_last(),
                })
                .collect();
            let name = if max { "ZPOPMAX" } else { "ZPOPMIN" };
            let line = match count {
                Some(n) => format!("{name} z {n}"),
                None => format!("{name} z"),
            };
            (line, Reply::Array(popped.iter().flat_map(pair).collect()))
        };
        let (mut lines, mut expected): (Vec<String>, Vec<Reply>) = (Vec::new(), Vec::new());
        // First, from each end: a pop, a pop that reads a window of 16 ahead, and one that
        // goes on past the window's end.
        for max in [false, true] {
            for count in [None, None, Some(40)] {
                let (line, reply) = pop(&mut model, count, max);
                lines.push(line);
                expected.push(reply);
            }
        }
        let mut seed = 11u64;
        for step in 0..300i64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let nth = (seed >> 40) as usize % model.len().clamp(1, 30);
            let near = match (seed >> 50) % 2 {
                0 => model.iter().nth(nth).cloned(),
                _ => model.iter().rev().nth(nth).cloned(),
            };
            let (line, reply) = match ((seed >> 33) % 11, near) {
                (0..=2, _) => pop(&mut model, None, false),
                // Up to past the end of a window.
                (3, _) => pop(&mut model, Some(1 + step % 25), false),
                (4, _) => {
                    // Below everything the pops have read ahead.
                    model.insert((-step, format!("n{step}")));
                    (format!("ZADD z {} n{step}", -step), Reply::Int(1))
                }
                (5, Some((s, m))) => {
                    model.remove(&(s, m.clone()));
                    (format!("ZREM z {m}"), Reply::Int(1))
                }
                (6, Some((s, m))) => {
                    // Moves a member a window holds, later in the order.
                    model.remove(&(s, m.clone()));
                    model.insert((s + 7, m.clone()));
                    (format!("ZADD z {} {m}", s + 7), Reply::Int(0))
                }
                (7, Some((s, m))) => {
                    model.remove(&(s, m.clone()));
                    model.insert((s - 7, m.clone()));
                    (format!("ZADD z {} {m}", s - 7), Reply::Int(0))
                }
                (8 | 9, _) => pop(&mut model, None, true),
                (10, _) => pop(&mut model, Some(1 + step % 25), true),
                _ => {
                    // Above everything the pops have read ahead.
                    model.insert((1000 + step, format!("t{step}")));
                    (format!("ZADD z {} t{step}", 1000 + step), Reply::Int(1))
                }
            };
            lines.push(line);
            expected.push(reply);
        }
        for ((line, got), want) in lines.iter().zip(&h.run_group(&lines)).zip(&expected) {
            assert_eq!(resp2(got), resp2(want), "{line}");
        }
        let committed = h.run_line("ZRANGE z 0 -1 WITHSCORES");
        let want = Reply::Array(model.iter().flat_map(pair).collect());
        assert_eq!(resp2(&committed), resp2(&want));
    }

    #[test]
    fn scores_sort_as_numbers_in_their_index_keys() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        for pair in scores.windows(2) {
            assert!(sortable(pair[0]) <= sortable(pair[1]), "{pair:?}");
        }
        for s in scores {
            let back = from_sortable(sortable(s));
            assert!(back == s, "{s}");
        }
    }

    #[test]
    fn bounds_cut_long_names_to_prefixes_that_stay_on_their_side() {
        let long = [vec![7u8; MAX_BOUND_LEN], vec![0xff, 3]].concat();
        let low = low_bound(&long);
        assert!(low.len() == MAX_BOUND_LEN && low <= long.as_slice());
        let high = high_bound(&long).unwrap();
        assert!(high.len() == MAX_BOUND_LEN && high.as_slice() > long.as_slice());
        let mut tail_ff = vec![1u8; MAX_BOUND_LEN - 1];
        tail_ff.extend([0xff, 0xff, 0]);
        let high = high_bound(&tail_ff).unwrap();
        assert_eq!(high.len(), MAX_BOUND_LEN - 1);
        assert!(high.as_slice() > tail_ff.as_slice());
        assert_eq!(high_bound(&[0xff; MAX_BOUND_LEN + 1]), None);
        assert_eq!(high_bound(b"short").as_deref(), Some(&b"short"[..]));
    }

    #[test]
    fn an_entry_beyond_a_bound_moves_the_bound_out_and_no_bound_stays_unknown() {
        let mut bounds = IndexBounds {
            low: Some(b"m".to_vec()),
            high: Some(b"p".to_vec()),
        };
        widen(&mut bounds, b"n");
        assert_eq!(bounds.low.as_deref(), Some(&b"m"[..]));
        assert_eq!(bounds.high.as_deref(), Some(&b"p"[..]));
        widen(&mut bounds, b"a");
        widen(&mut bounds, b"z");
        assert_eq!(bounds.low.as_deref(), Some(&b"a"[..]));
        assert_eq!(bounds.high.as_deref(), Some(&b"z"[..]));
        let mut none = IndexBounds::default();
        widen(&mut none, b"a");
        assert_eq!(none, IndexBounds::default());
    }
}
