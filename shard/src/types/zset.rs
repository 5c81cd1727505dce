//! Sorted sets: per member an item (`member → score`, f64 bits big-endian) and a score index
//! entry (`score (order-preserving) ++ member → empty`), counted in the set's entry.
//!
//! The index orders members by (score, member) as Redis's skiplist does, so ranges by score
//! seek straight to their start and read only what they return; ranges by rank walk from an
//! end (O(rank)); ranges by lex read the items, which are in member order.

use super::{check_member_name, Collection};
use crate::store::encoding::{MemberKind, ValueType, MEMBER_PREFIX_LEN};
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

fn index_key(z: &Collection, score: f64, member: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(8 + member.len());
    name.extend_from_slice(&sortable(score));
    name.extend_from_slice(member);
    z.member_key(MemberKind::Score, &name)
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

/// Sets `member`'s score; returns whether the member is new. The caller saves the set.
pub fn set(txn: &mut Txn<'_>, z: &mut Collection, member: &[u8], new: f64) -> bool {
    let item = z.member_key(MemberKind::Item, member);
    let old = txn.read_member(&item).and_then(|v| decode_score(&v));
    if let Some(old) = old {
        if old.to_bits() == new.to_bits() {
            return false;
        }
        txn.remove_member(index_key(z, old, member));
    } else {
        z.meta.size += 1;
    }
    txn.put_member(item, Bytes::copy_from_slice(&new.to_bits().to_be_bytes()));
    txn.put_member(index_key(z, new, member), Bytes::new());
    old.is_none()
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
    txn.remove_member(item);
    txn.remove_member(index_key(z, old, member));
    z.meta.size -= 1;
    true
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
    let (lo, hi) = z.member_range(MemberKind::Score);
    m.scan_members(&lo, &hi, rev, &mut |k, _| match split_index_key(k) {
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
    let (lo, hi) = z.member_range(MemberKind::Score);
    let clamp = |v: f64| v.clamp(f64::NEG_INFINITY, f64::INFINITY);
    let (start, end) = if rev {
        // Everything with a score up to max: keys below the next score's first key.
        let mut end = z.member_key(MemberKind::Score, &sortable(clamp(range.max.value)));
        increment(&mut end);
        (lo, end.min(hi))
    } else {
        (
            z.member_key(MemberKind::Score, &sortable(clamp(range.min.value))),
            hi,
        )
    };
    m.scan_members(&start, &end, rev, &mut |k, _| {
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
    m.scan_members(&start, &end, rev, &mut |k, v| {
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
    for (member, score) in items {
        set(txn, &mut z, member, *score);
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
}
