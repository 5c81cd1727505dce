//! Lists: one member entry per element, keyed by its position (u64 BE), so that positions
//! sort as the list does. The list's entry keeps `ends`: the position of the first element
//! and one past the last. A new list starts both ends at [`START`], in the middle of the
//! position space, so it grows either way by 2^63 elements.
//!
//! Positions are dense: the element at index `i` is at `head + i`, so LINDEX and LSET are
//! one point read or write, LRANGE one range scan, pushes and pops one entry each. Inserting
//! or removing in the middle (LINSERT, LREM) shifts the elements on the shorter side of the
//! change, as Kvrocks does: O(n) like Redis, and held in the write group until it commits.

use super::Collection;
use crate::store::encoding::{MemberKind, ValueType};
use crate::store::members::Members;
use crate::store::writer::Txn;
use bytes::Bytes;
use fjord_common::Reply;

/// Where both ends of a new list start.
pub const START: u64 = 1 << 63;

/// Pops of up to this many elements read them one by one rather than as a range.
const POINT_READS: u64 = 8;

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl End {
    /// `LEFT` or `RIGHT` (any case), as LMOVE and LMPOP take them.
    pub fn parse(word: &[u8]) -> Option<End> {
        if word.eq_ignore_ascii_case(b"left") {
            Some(End::Left)
        } else if word.eq_ignore_ascii_case(b"right") {
            Some(End::Right)
        } else {
            None
        }
    }
}

/// The list under `key` (`None` when missing), or WRONGTYPE.
pub fn find(m: &mut impl Members, key: &[u8]) -> Result<Option<Collection>, Reply> {
    Collection::find(m, key, ValueType::List)
}

/// The list under `key` for a write, or a new empty one.
pub fn find_or_create(txn: &mut Txn<'_>, key: &[u8]) -> Result<Collection, Reply> {
    let mut list = Collection::find_or_create(txn, key, ValueType::List)?;
    list.meta.ends.get_or_insert((START, START));
    Ok(list)
}

/// The positions of the first element and one past the last.
fn ends(list: &Collection) -> (u64, u64) {
    list.meta.ends.unwrap_or((START, START))
}

fn element_key(list: &Collection, position: u64) -> Vec<u8> {
    list.member_key(MemberKind::Item, &position.to_be_bytes())
}

/// The index (from 0) a Redis index names, counting a negative one from the end; `None`
/// when it is outside the list.
pub fn index_of(list: &Collection, index: i64) -> Option<u64> {
    let len = list.meta.size;
    let i = if index < 0 {
        len.checked_sub(index.unsigned_abs())?
    } else {
        index as u64
    };
    (i < len).then_some(i)
}

/// The inclusive range of indexes that `start` and `stop` (Redis indexes, as LRANGE and
/// LTRIM take them) name, or `None` when it is empty: Redis's clamping, to the letter.
pub fn clamp_range(len: u64, start: i64, stop: i64) -> Option<(u64, u64)> {
    let len = len as i128;
    let (mut start, mut stop) = (i128::from(start), i128::from(stop));
    if start < 0 {
        start += len;
    }
    if stop < 0 {
        stop += len;
    }
    start = start.max(0);
    if start > stop || start >= len {
        return None;
    }
    stop = stop.min(len - 1);
    Some((start as u64, stop as u64))
}

/// The element at index `i` (from 0, within the list).
pub fn get(m: &mut impl Members, list: &Collection, i: u64) -> Result<Option<Bytes>, Reply> {
    let (head, _) = ends(list);
    Ok(m.member(&element_key(list, head + i))?)
}

/// Visits the elements with indexes `first..=last` as (index, element), from the tail end
/// when `rev`, until `visit` returns false.
pub fn for_each(
    m: &mut impl Members,
    list: &Collection,
    (first, last): (u64, u64),
    rev: bool,
    mut visit: impl FnMut(u64, &[u8]) -> bool,
) -> Result<(), Reply> {
    let (head, _) = ends(list);
    let lo = element_key(list, head + first);
    let hi = element_key(list, head + last + 1);
    let skip = lo.len() - 8;
    m.scan_members(&lo, &hi, rev, &mut |k, v| {
        let position = k[skip..].try_into().map(u64::from_be_bytes).unwrap_or(head);
        visit(position - head, v)
    })?;
    Ok(())
}

/// The elements with indexes `first..=last`, in list order.
pub fn range(
    m: &mut impl Members,
    list: &Collection,
    span: (u64, u64),
) -> Result<Vec<Bytes>, Reply> {
    let mut out = Vec::with_capacity((span.1 - span.0 + 1).min(1 << 16) as usize);
    for_each(m, list, span, false, |_, v| {
        out.push(Bytes::copy_from_slice(v));
        true
    })?;
    Ok(out)
}

/// Adds `element` at one end. The caller saves the list.
pub fn push(txn: &mut Txn<'_>, list: &mut Collection, end: End, element: Bytes) {
    let (head, tail) = ends(list);
    let (position, ends) = match end {
        End::Left => (head - 1, (head - 1, tail)),
        End::Right => (tail, (head, tail + 1)),
    };
    txn.put_member(element_key(list, position), element);
    list.meta.ends = Some(ends);
    list.meta.size += 1;
}

/// Removes up to `count` elements from one end and returns them in the order they were
/// popped. The caller saves the list.
pub fn pop(
    txn: &mut Txn<'_>,
    list: &mut Collection,
    end: End,
    count: u64,
) -> Result<Vec<Bytes>, Reply> {
    let count = count.min(list.meta.size);
    if count == 0 {
        return Ok(Vec::new());
    }
    let len = list.meta.size;
    let span = match end {
        End::Left => (0, count - 1),
        End::Right => (len - count, len - 1),
    };
    let mut popped = Vec::with_capacity(count.min(1 << 16) as usize);
    let (head, tail) = ends(list);
    if count <= POINT_READS {
        // A point read is far cheaper than opening a range, and pops are mostly of one.
        // Pops of a group run on from where the last left off, towards the far end.
        let (indexes, last): (Vec<u64>, u64) = match end {
            End::Left => ((span.0..=span.1).collect(), tail - 1),
            End::Right => ((span.0..=span.1).rev().collect(), head),
        };
        let last = element_key(list, last);
        for i in indexes {
            let taken = txn.take_member_ahead(element_key(list, head + i), &last);
            popped.push(taken.unwrap_or_default());
        }
    } else {
        for_each(txn, list, span, end == End::Right, |_, v| {
            popped.push(Bytes::copy_from_slice(v));
            true
        })?;
        for i in span.0..=span.1 {
            txn.remove_member(element_key(list, head + i));
        }
    }
    list.meta.ends = Some(match end {
        End::Left => (head + count, tail),
        End::Right => (head, tail - count),
    });
    list.meta.size -= count;
    Ok(popped)
}

/// Replaces the element at index `i` (within the list).
pub fn set(txn: &mut Txn<'_>, list: &Collection, i: u64, element: Bytes) {
    let (head, _) = ends(list);
    txn.put_member(element_key(list, head + i), element);
}

/// Keeps only the elements with indexes `keep` (`None`: none). The caller saves the list.
pub fn trim(txn: &mut Txn<'_>, list: &mut Collection, keep: Option<(u64, u64)>) {
    let (head, tail) = ends(list);
    let (first, last) = match keep {
        Some((first, last)) => (head + first, head + last + 1),
        None => (tail, tail),
    };
    for position in (head..first).chain(last..tail) {
        txn.remove_member(element_key(list, position));
    }
    list.meta.ends = Some((first, last.max(first)));
    list.meta.size = last.max(first) - first;
}

/// Inserts `element` before index `i` (`i` = the length appends), shifting the elements on
/// the shorter side of it by one. The caller saves the list.
pub fn insert(
    txn: &mut Txn<'_>,
    list: &mut Collection,
    i: u64,
    element: Bytes,
) -> Result<(), Reply> {
    let len = list.meta.size;
    let (head, tail) = ends(list);
    if i <= len - i {
        // The first i elements move one place towards the head.
        if i > 0 {
            for (index, v) in collect(txn, list, (0, i - 1))? {
                txn.put_member(element_key(list, head + index - 1), v);
            }
        }
        txn.put_member(element_key(list, head + i - 1), element);
        list.meta.ends = Some((head - 1, tail));
    } else {
        // The elements from i on move one place towards the tail.
        for (index, v) in collect(txn, list, (i, len - 1))? {
            txn.put_member(element_key(list, head + index + 1), v);
        }
        txn.put_member(element_key(list, head + i), element);
        list.meta.ends = Some((head, tail + 1));
    }
    list.meta.size += 1;
    Ok(())
}

/// Removes the elements at `removed` (indexes, ascending, within the list), closing the gaps
/// from the side that moves fewer elements. The caller saves the list.
pub fn remove(txn: &mut Txn<'_>, list: &mut Collection, removed: &[u64]) -> Result<(), Reply> {
    let (Some(&first), Some(&last)) = (removed.first(), removed.last()) else {
        return Ok(());
    };
    let len = list.meta.size;
    let (head, tail) = ends(list);
    let gone = removed.len() as u64;
    let mut removed = removed.iter().copied().peekable();
    if len - first <= last + 1 {
        // Everything after the first removed element closes up towards the head.
        let mut to = first;
        for (index, v) in collect(txn, list, (first, len - 1))? {
            if removed.next_if_eq(&index).is_some() {
                continue;
            }
            txn.put_member(element_key(list, head + to), v);
            to += 1;
        }
        for position in head + to..tail {
            txn.remove_member(element_key(list, position));
        }
        list.meta.ends = Some((head, tail - gone));
    } else {
        // Everything before the last removed element closes up towards the tail.
        let kept: Vec<(u64, Bytes)> = collect(txn, list, (0, last))?
            .into_iter()
            .filter(|(index, _)| removed.next_if_eq(index).is_none())
            .collect();
        let new_head = head + gone;
        for (to, (_, v)) in kept.into_iter().enumerate() {
            txn.put_member(element_key(list, new_head + to as u64), v);
        }
        for position in head..new_head {
            txn.remove_member(element_key(list, position));
        }
        list.meta.ends = Some((new_head, tail));
    }
    list.meta.size -= gone;
    Ok(())
}

/// The elements with indexes `first..=last` with their indexes, in list order.
fn collect(
    m: &mut impl Members,
    list: &Collection,
    span: (u64, u64),
) -> Result<Vec<(u64, Bytes)>, Reply> {
    let mut out = Vec::new();
    for_each(m, list, span, false, |i, v| {
        out.push((i, Bytes::copy_from_slice(v)));
        true
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::fuzzing::resp2;
    use bytes::Bytes;
    use fjord_common::Reply;
    use std::collections::VecDeque;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Bytes::from(s.to_string()))
    }

    /// Pops in one group read ahead of themselves, from the committed list: what the group
    /// writes in between (LSET, pushes onto popped positions, LINSERT shifting elements) is
    /// what its later pops take, and the list committed is the one a Redis would hold.
    #[test]
    fn pops_of_one_group_take_what_the_group_wrote_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let h = crate::fuzzing::Harness::open(crate::config::ShardConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        });
        let mut model: VecDeque<String> = (0..400).map(|i| format!("e{i}")).collect();
        let all: Vec<&str> = model.iter().map(String::as_str).collect();
        h.run_line(&format!("RPUSH l {}", all.join(" ")));
        // Many pops from both ends, so that read-aheads of 16, 32, … members happen, with
        // writes to members already read ahead between them.
        let (mut lines, mut expected) = (Vec::new(), Vec::new());
        let mut seed = 7u64;
        for step in 0..300 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pick = (seed >> 33) % 10;
            let near = (seed >> 40) as usize % model.len().clamp(1, 40);
            let (line, reply) = match pick {
                _ if step % 60 == 59 && model.len() > 30 => {
                    // Shifts the head side's elements: they are then the group's own.
                    let pivot = model[20].clone();
                    model.insert(20, format!("i{step}"));
                    let line = format!("LINSERT l BEFORE {pivot} i{step}");
                    (line, Reply::Int(model.len() as i64))
                }
                0..=2 => {
                    let popped = model.pop_front().map_or(Reply::Nil, |e| bulk(&e));
                    ("LPOP l".to_string(), popped)
                }
                3..=4 => {
                    let popped = model.pop_back().map_or(Reply::Nil, |e| bulk(&e));
                    ("RPOP l".to_string(), popped)
                }
                5 | 6 if !model.is_empty() => {
                    // Elements near either end: ones a pop has read ahead.
                    let (i, index) = match pick {
                        5 => (near, near.to_string()),
                        _ => (model.len() - 1 - near, format!("-{}", near + 1)),
                    };
                    model[i] = format!("set{step}");
                    (format!("LSET l {index} set{step}"), Reply::ok())
                }
                7 => {
                    model.push_front(format!("l{step}"));
                    let len = Reply::Int(model.len() as i64);
                    (format!("LPUSH l l{step}"), len)
                }
                8 => {
                    model.push_back(format!("r{step}"));
                    let len = Reply::Int(model.len() as i64);
                    (format!("RPUSH l r{step}"), len)
                }
                _ => {
                    let taken: Vec<Reply> = (0..3)
                        .filter_map(|_| model.pop_front())
                        .map(|e| bulk(&e))
                        .collect();
                    let reply = match taken.is_empty() {
                        true => Reply::NilArray,
                        false => Reply::Array(taken),
                    };
                    ("LPOP l 3".to_string(), reply)
                }
            };
            lines.push(line);
            expected.push(reply);
        }
        let replies = h.run_group(&lines);
        for ((line, got), want) in lines.iter().zip(&replies).zip(&expected) {
            assert_eq!(got, want, "{line}");
        }
        let committed = h.run_line("LRANGE l 0 -1");
        let want = Reply::Array(model.iter().map(|e| bulk(e)).collect());
        assert_eq!(resp2(&committed), resp2(&want));
    }
}
