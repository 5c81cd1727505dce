//! Sets: one item per member (`member → its position`, u64 BE) and one position entry per
//! member (`position → member`), counted in the set's entry.
//!
//! Positions are dense, `0..size`, so a uniform random member (SPOP, SRANDMEMBER) is one
//! point read rather than a pass over the set. A removal keeps them dense by moving the last
//! member into the hole, as Redis's dict-less encodings do: two more reads and writes.
//!
//! Sets written before positions existed (`meta.positions` false) hold `member → empty` and
//! no position entries; they are read and written as they are, and drawn from by a pass.

use super::{check_member_name, Collection};
use crate::store::encoding::{MemberKind, ValueType};
use crate::store::members::Members;
use crate::store::writer::Txn;
use bytes::Bytes;
use fjord_common::Reply;

/// The set under `key` (`None` when missing), or WRONGTYPE.
pub fn find(m: &mut impl Members, key: &[u8]) -> Result<Option<Collection>, Reply> {
    Collection::find(m, key, ValueType::Set)
}

/// Whether `member` is in the set.
pub fn contains(m: &mut impl Members, set: &Collection, member: &[u8]) -> Result<bool, Reply> {
    if check_member_name(member).is_err() {
        return Ok(false); // no such member can exist
    }
    Ok(m.member(&set.member_key(MemberKind::Item, member))?
        .is_some())
}

fn position_key(set: &Collection, position: u64) -> Vec<u8> {
    set.member_key(MemberKind::Position, &position.to_be_bytes())
}

fn decode_position(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// Adds `member`; returns whether it is new. The caller saves the set.
pub fn add(txn: &mut Txn<'_>, set: &mut Collection, member: &[u8]) -> bool {
    let mkey = set.member_key(MemberKind::Item, member);
    if txn.read_member(&mkey).is_some() {
        return false;
    }
    if set.meta.positions {
        let position = set.meta.size;
        txn.put_member(mkey, Bytes::copy_from_slice(&position.to_be_bytes()));
        txn.put_member(position_key(set, position), Bytes::copy_from_slice(member));
    } else {
        txn.put_member(mkey, Bytes::new());
    }
    set.meta.size += 1;
    true
}

/// Removes `member`; returns whether it was there. The caller saves the set.
pub fn remove(txn: &mut Txn<'_>, set: &mut Collection, member: &[u8]) -> bool {
    if check_member_name(member).is_err() {
        return false;
    }
    let mkey = set.member_key(MemberKind::Item, member);
    let Some(value) = txn.read_member(&mkey) else {
        return false;
    };
    let position = set
        .meta
        .positions
        .then(|| decode_position(&value))
        .flatten();
    remove_known(txn, set, mkey, position);
    true
}

/// Removes the member whose item is `mkey`, at `position` where the set keeps positions
/// (`None` there: a malformed item, whose position entry is taken to be the last one).
fn remove_known(txn: &mut Txn<'_>, set: &mut Collection, mkey: Vec<u8>, position: Option<u64>) {
    set.meta.size -= 1;
    txn.remove_member(mkey);
    if set.meta.positions {
        let last = set.meta.size;
        let hole = position.unwrap_or(last);
        if hole == last {
            txn.remove_member(position_key(set, last));
        } else if let Some(moved) = txn.take_member(position_key(set, last)) {
            txn.put_member(
                set.member_key(MemberKind::Item, &moved),
                Bytes::copy_from_slice(&hole.to_be_bytes()),
            );
            txn.put_member(position_key(set, hole), moved);
        }
    }
}

/// Up to `count` distinct members drawn uniformly, in random order. One point read per
/// member where the set keeps positions (Floyd's sampling of positions); a pass over the
/// set otherwise, or when the positions `m` reads may not match the size it was given.
pub fn draw_distinct(
    m: &mut impl Members,
    set: &Collection,
    count: u64,
    rng: &mut impl rand::Rng,
) -> Result<Vec<Bytes>, Reply> {
    let size = set.meta.size;
    // Most of the set: one pass reads less than a point read per member would.
    if !set.meta.positions || count.saturating_mul(2) > size || !m.reads_members_of(set)? {
        let picks = set.sample(m, count, rng)?;
        return Ok(picks.into_iter().map(|(name, _)| name).collect());
    }
    let mut chosen = std::collections::HashSet::with_capacity(count as usize);
    let mut order = Vec::with_capacity(count as usize);
    for top in size - count..size {
        let pick = rng.gen_range(0..=top);
        let position = if chosen.insert(pick) { pick } else { top };
        chosen.insert(position);
        order.push(position);
    }
    use rand::seq::SliceRandom;
    order.shuffle(rng);
    order.into_iter().map(|p| member_at(m, set, p)).collect()
}

/// `count` members drawn uniformly with repeats (SRANDMEMBER with a negative count).
pub fn draw_repeating(
    m: &mut impl Members,
    set: &Collection,
    count: u64,
    rng: &mut impl rand::Rng,
) -> Result<Vec<Bytes>, Reply> {
    if !set.meta.positions || !m.reads_members_of(set)? {
        let picks = set.draw(m, -(count as i64), rng)?;
        return Ok(picks.into_iter().map(|(name, _)| name).collect());
    }
    (0..count)
        .map(|_| member_at(m, set, rng.gen_range(0..set.meta.size)))
        .collect()
}

/// Removes `count` members drawn uniformly and returns them, in random order (fewer when the
/// set is smaller). The caller saves the set.
pub fn pop(
    txn: &mut Txn<'_>,
    set: &mut Collection,
    count: u64,
    rng: &mut impl rand::Rng,
) -> Result<Vec<Bytes>, Reply> {
    let popped = if set.meta.positions {
        let mut popped = Vec::new();
        // The position drawn is the member's: no need to read its item to find it.
        while (popped.len() as u64) < count && set.meta.size > 0 {
            let position = rng.gen_range(0..set.meta.size);
            // Moved or removed below: the position is read once.
            let member = txn
                .read_member_once(&position_key(set, position))
                .ok_or_else(no_member)?;
            let mkey = set.member_key(MemberKind::Item, &member);
            remove_known(txn, set, mkey, Some(position));
            popped.push(member);
        }
        popped
    } else {
        let picks = draw_distinct(txn, set, count, rng)?;
        for member in &picks {
            remove(txn, set, member);
        }
        picks
    };
    Ok(popped)
}

fn member_at(m: &mut impl Members, set: &Collection, position: u64) -> Result<Bytes, Reply> {
    m.member(&position_key(set, position))?
        .ok_or_else(no_member)
}

fn no_member() -> Reply {
    Reply::error("ERR corrupt set: a position has no member")
}

/// Every member, in byte order (the reply of SMEMBERS and the input of set algebra).
pub fn members(m: &mut impl Members, set: &Collection) -> Result<Vec<Bytes>, Reply> {
    let mut out = Vec::with_capacity(set.meta.size.min(1 << 16) as usize);
    set.for_each_item(m, false, |member, _| {
        out.push(Bytes::copy_from_slice(member));
        true
    })?;
    Ok(out)
}

/// Replaces whatever `key` holds with a set of `members` (the STORE forms); an empty result
/// deletes the key. Returns the new size.
pub fn store(txn: &mut Txn<'_>, key: &[u8], members: &[Bytes]) -> i64 {
    txn.delete(key);
    if members.is_empty() {
        return 0;
    }
    let version = txn.new_version();
    let mut set = Collection::new(ValueType::Set, key, version);
    for m in members {
        add(txn, &mut set, m);
    }
    set.save(txn, key);
    set.meta.size as i64
}
