//! Hashes: one member per field (`field → value`), counted in the hash's entry.

use super::{check_member_name, Collection};
use crate::store::encoding::{MemberKind, ValueType};
use crate::store::members::Members;
use crate::store::writer::Txn;
use bytes::Bytes;
use fjord_common::Reply;

/// The hash under `key` for reading (`None` when missing), or WRONGTYPE.
pub fn find(m: &mut impl Members, key: &[u8]) -> Result<Option<Collection>, Reply> {
    Collection::find(m, key, ValueType::Hash)
}

/// The value of `field`.
pub fn get(m: &mut impl Members, hash: &Collection, field: &[u8]) -> Result<Option<Bytes>, Reply> {
    if check_member_name(field).is_err() {
        return Ok(None); // no such field can exist
    }
    Ok(m.member(&hash.member_key(MemberKind::Item, field))?)
}

/// Sets `field` to `value`; returns whether the field is new. The caller saves the hash.
pub fn set(txn: &mut Txn<'_>, hash: &mut Collection, field: &[u8], value: Bytes) -> bool {
    let mkey = hash.member_key(MemberKind::Item, field);
    let new = txn.read_member(&mkey).is_none();
    if new {
        hash.meta.size += 1;
    }
    txn.put_member(mkey, value);
    new
}

/// Removes `field`; returns whether it was there. The caller saves the hash.
pub fn remove(txn: &mut Txn<'_>, hash: &mut Collection, field: &[u8]) -> bool {
    if check_member_name(field).is_err() {
        return false;
    }
    let mkey = hash.member_key(MemberKind::Item, field);
    if txn.read_member(&mkey).is_none() {
        return false;
    }
    hash.meta.size -= 1;
    txn.remove_member(mkey);
    true
}
