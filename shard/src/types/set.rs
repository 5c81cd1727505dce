//! Sets: one member entry per element (`member → empty`), counted in the set's entry.

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

/// Adds `member`; returns whether it is new. The caller saves the set.
pub fn add(txn: &mut Txn<'_>, set: &mut Collection, member: &[u8]) -> bool {
    let mkey = set.member_key(MemberKind::Item, member);
    if txn.read_member(&mkey).is_some() {
        return false;
    }
    set.meta.size += 1;
    txn.put_member(mkey, Bytes::new());
    true
}

/// Removes `member`; returns whether it was there. The caller saves the set.
pub fn remove(txn: &mut Txn<'_>, set: &mut Collection, member: &[u8]) -> bool {
    if check_member_name(member).is_err() {
        return false;
    }
    let mkey = set.member_key(MemberKind::Item, member);
    if txn.read_member(&mkey).is_none() {
        return false;
    }
    set.meta.size -= 1;
    txn.remove_member(mkey);
    true
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
