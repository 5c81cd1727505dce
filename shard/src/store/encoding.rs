//! How keys and values are laid out in fjall. See the module doc of [`crate::store`].

use bytes::{BufMut, Bytes, BytesMut};
use fjord_common::slot_of;

/// Version byte at the start of every stored value.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes before a value's payload: version, type, expiry.
pub const HEADER_LEN: usize = 10;

/// Longest user key: fjall's 65 535-byte key limit less the expiry index's 10-byte prefix.
pub const MAX_KEY_LEN: usize = 65_535 - 10;

/// Type code of a stored value. Strings hold their value in the entry; the others are
/// collections, whose entry holds a [`CollectionMeta`] and whose members are entries of
/// their own in the `members` keyspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ValueType {
    String = 0,
    Hash = 1,
    List = 2,
    Set = 3,
    ZSet = 4,
}

impl ValueType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => ValueType::String,
            1 => ValueType::Hash,
            2 => ValueType::List,
            3 => ValueType::Set,
            4 => ValueType::ZSet,
            _ => return None,
        })
    }

    /// Whether values of this type keep their members apart from the key's entry.
    pub fn is_collection(self) -> bool {
        self != ValueType::String
    }

    /// The name TYPE replies with.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Hash => "hash",
            ValueType::List => "list",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
        }
    }
}

/// A decoded value: its type, absolute expiry, and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: ValueType,
    /// Absolute Unix time in milliseconds; `None` = persistent.
    pub expire_at: Option<u64>,
    pub payload: Bytes,
}

impl Entry {
    /// Whether the entry is logically gone at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at.is_some_and(|at| at <= now_ms)
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + self.payload.len());
        out.put_u8(FORMAT_VERSION);
        out.put_u8(self.kind as u8);
        out.put_u64(self.expire_at.unwrap_or(0));
        out.extend_from_slice(&self.payload);
        out.freeze()
    }

    /// Decodes a stored value; `None` for a value this version cannot read.
    pub fn decode(raw: Bytes) -> Option<Self> {
        if raw.len() < HEADER_LEN || raw[0] != FORMAT_VERSION {
            return None;
        }
        let kind = ValueType::from_code(raw[1])?;
        let at = u64::from_be_bytes(raw[2..10].try_into().ok()?);
        Some(Self {
            kind,
            expire_at: (at != 0).then_some(at),
            payload: raw.slice(HEADER_LEN..),
        })
    }
}

/// What a collection's entry in the data keyspace holds: the version its members are stored
/// under, and how many there are (so that HLEN, SCARD, ZCARD, LLEN are O(1)). Lists add the
/// positions of their ends; sorted sets may add bounds of their score index; sets say whether
/// they keep positions.
///
/// Payload layout: `version (u64 BE) ++ size (u64 BE)`, then
/// - for lists `head (u64 BE) ++ tail (u64 BE)`: the list's elements sit at positions
///   `head..tail`;
/// - for sets that keep positions ([`MemberKind::Position`]), one byte 1. A set written
///   before sets had them has none, and is read by scanning its members;
/// - for sorted sets, when either bound is known, `len (u8) ++ low ++ len (u8) ++ high` (a
///   length of 0: that bound is not known). A sorted set written without them has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionMeta {
    pub version: u64,
    pub size: u64,
    /// Lists only: the first element's position and one past the last.
    pub ends: Option<(u64, u64)>,
    /// Sorted sets only: where in the score index the live entries lie.
    pub bounds: IndexBounds,
    /// Sets only: whether each member also has a position.
    pub positions: bool,
}

/// Names in a sorted set's score index (`score ++ member`, at most [`MAX_BOUND_LEN`] bytes)
/// that no live entry lies below (`low`) or above (`high`).
///
/// Pops and queues delete from an end of the index, and an LSM tree keeps each deleted entry
/// as a tombstone until compaction: a scan from the end would step over every member removed
/// there before. The bounds let it start past them. Whatever adds an entry beyond a bound
/// moves the bound out to it, in the same batch; removing the entry a bound names moves the
/// bound in to the next one (`crate::types::zset` keeps them exact where it can).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexBounds {
    pub low: Option<Vec<u8>>,
    pub high: Option<Vec<u8>>,
}

/// Longest bound kept; a longer name is cut to a prefix (rounded up for `high`).
pub const MAX_BOUND_LEN: usize = 80;

impl CollectionMeta {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(32);
        out.put_u64(self.version);
        out.put_u64(self.size);
        if let Some((head, tail)) = self.ends {
            out.put_u64(head);
            out.put_u64(tail);
        }
        if self.positions {
            out.put_u8(1);
        }
        let IndexBounds { low, high } = &self.bounds;
        if low.is_some() || high.is_some() {
            for bound in [low, high] {
                let bound = bound.as_deref().unwrap_or_default();
                out.put_u8(bound.len() as u8);
                out.extend_from_slice(bound);
            }
        }
        out.freeze()
    }

    /// Decodes the payload of a collection of `kind`; `None` if it is not one.
    pub fn decode(kind: ValueType, payload: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                payload.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let mut meta = Self {
            version: word(0)?,
            size: word(1)?,
            ends: None,
            bounds: IndexBounds::default(),
            positions: false,
        };
        match kind {
            ValueType::List => meta.ends = word(2).zip(word(3)),
            ValueType::Set => meta.positions = payload.get(16) == Some(&1),
            ValueType::ZSet if payload.len() > 16 => {
                let mut rest = &payload[16..];
                let mut next = || -> Option<Option<Vec<u8>>> {
                    let (&len, tail) = rest.split_first()?;
                    let bound = tail.get(..len as usize)?.to_vec();
                    rest = &tail[len as usize..];
                    Some((len > 0).then_some(bound))
                };
                meta.bounds = IndexBounds {
                    low: next()?,
                    high: next()?,
                };
            }
            _ => {}
        }
        Some(meta)
    }
}

/// Bytes before a member's own name in its key: slot, version, kind.
pub const MEMBER_PREFIX_LEN: usize = 11;

/// Longest member name (hash field, set member, …): fjall's key limit less the prefix.
pub const MAX_MEMBER_LEN: usize = 65_535 - MEMBER_PREFIX_LEN - 8 - 1;

/// What a key of the `members` keyspace is: a collection has one kind per index it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MemberKind {
    /// A hash field, set member, list element or sorted-set member, by name (or position).
    Item = 0,
    /// A sorted set's score index: `score (order-preserving) ++ member`.
    Score = 1,
    /// A set's positions: `position (u64 BE)` → member, dense from 0 to the size, so that a
    /// uniform random member is one point read.
    Position = 2,
}

/// The key of a collection's member: `slot (u16 BE) ++ version (u64 BE) ++ kind ++ name`.
/// Members are keyed by the collection's version rather than its name, so that a new
/// version hides every member of the old one at once (DEL, overwrite and expiry are O(1)), and
/// RENAME within a slot moves no member.
pub fn member_key(slot: u16, version: u64, kind: MemberKind, name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MEMBER_PREFIX_LEN + name.len());
    out.extend_from_slice(&slot.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(name);
    out
}

/// Whether a members key is a sorted set's score index entry (only ever read by range).
pub fn is_score_index_key(mkey: &[u8]) -> bool {
    mkey.get(MEMBER_PREFIX_LEN - 1) == Some(&(MemberKind::Score as u8))
}

/// The first key after every member of one kind of a version: the end of a range scan.
pub fn member_range_end(slot: u16, version: u64, kind: MemberKind) -> Vec<u8> {
    let mut out = member_key(slot, version, kind, b"");
    out[MEMBER_PREFIX_LEN - 1] += 1;
    out
}

/// The prefix every member of a version shares, whatever its kind.
pub fn version_prefix(slot: u16, version: u64) -> [u8; 10] {
    let mut out = [0u8; 10];
    out[..2].copy_from_slice(&slot.to_be_bytes());
    out[2..].copy_from_slice(&version.to_be_bytes());
    out
}

/// The key range of every member of a version, whatever its kind: its prefix to the prefix
/// followed by 0xff, past every kind.
pub fn version_range(slot: u16, version: u64) -> (Vec<u8>, Vec<u8>) {
    let start = version_prefix(slot, version).to_vec();
    let mut end = start.clone();
    end.push(0xff);
    (start, end)
}

/// The meta keyspace key that marks a dead version whose members are still to be removed:
/// `garbage ++ slot (u16 BE) ++ version (u64 BE)`.
pub fn garbage_key(slot: u16, version: u64) -> Vec<u8> {
    [GARBAGE_PREFIX, &version_prefix(slot, version)[..]].concat()
}

/// Splits a garbage marker into slot and version.
pub fn split_garbage_key(key: &[u8]) -> Option<(u16, u64)> {
    let rest = key.strip_prefix(GARBAGE_PREFIX)?;
    if rest.len() != 10 {
        return None;
    }
    let slot = u16::from_be_bytes([rest[0], rest[1]]);
    let version = u64::from_be_bytes(rest[2..10].try_into().ok()?);
    Some((slot, version))
}

/// The prefix of garbage markers in the meta keyspace.
pub const GARBAGE_PREFIX: &[u8] = b"garbage";

/// The meta keyspace key holding the next collection version to hand out (u64 BE).
pub const NEXT_VERSION_KEY: &[u8] = b"nextversion";

/// The data keyspace key of a user key: `slot (u16 BE) ++ key`.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + key.len());
    out.extend_from_slice(&slot_of(key).to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The first data key of a slot, for range scans.
pub fn slot_prefix(slot: u16) -> [u8; 2] {
    slot.to_be_bytes()
}

/// Splits a data key into slot and user key.
pub fn split_data_key(dkey: &[u8]) -> (u16, &[u8]) {
    let slot = u16::from_be_bytes([dkey[0], dkey[1]]);
    (slot, &dkey[2..])
}

/// The expiry index key: `expire_at (u64 BE) ++ data key`, so a range scan from 0 to now
/// yields every key due.
pub fn expiry_key(expire_at: u64, dkey: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + dkey.len());
    out.extend_from_slice(&expire_at.to_be_bytes());
    out.extend_from_slice(dkey);
    out
}

/// Splits an expiry index key into its deadline and data key.
pub fn split_expiry_key(ikey: &[u8]) -> Option<(u64, &[u8])> {
    if ikey.len() < 10 {
        return None;
    }
    let at = u64::from_be_bytes(ikey[..8].try_into().ok()?);
    Some((at, &ikey[8..]))
}

/// The meta keyspace key holding a slot's key count.
pub fn slot_count_key(slot: u16) -> [u8; 11] {
    let mut out = [0u8; 11];
    out[..9].copy_from_slice(b"slotcount");
    out[9..].copy_from_slice(&slot.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            kind: ValueType::String,
            expire_at: Some(1_700_000_000_123),
            payload: Bytes::from_static(b"v"),
        };
        assert_eq!(Entry::decode(e.encode()), Some(e));
        assert_eq!(Entry::decode(Bytes::from_static(b"\x02xxxxxxxxx")), None);
    }

    #[test]
    fn collection_meta_round_trips_with_list_ends_index_bounds_and_set_positions() {
        let plain = CollectionMeta {
            version: 7,
            size: 3,
            ends: None,
            bounds: IndexBounds::default(),
            positions: false,
        };
        let list = CollectionMeta {
            version: u64::MAX,
            size: 0,
            ends: Some((1 << 63, (1 << 63) + 5)),
            ..plain.clone()
        };
        let bounded = |low: Option<&[u8]>, high: Option<&[u8]>| CollectionMeta {
            bounds: IndexBounds {
                low: low.map(<[u8]>::to_vec),
                high: high.map(<[u8]>::to_vec),
            },
            ..plain.clone()
        };
        for kind in [ValueType::Hash, ValueType::Set, ValueType::ZSet] {
            assert_eq!(
                CollectionMeta::decode(kind, &plain.encode()),
                Some(plain.clone())
            );
        }
        assert_eq!(
            CollectionMeta::decode(ValueType::List, &list.encode()),
            Some(list)
        );
        for meta in [
            bounded(Some(b"\x80\0\0\0\0\0\0\0m"), None),
            bounded(None, Some(b"\xc0\0\0\0\0\0\0\0")),
            bounded(Some(b"low"), Some(b"high")),
        ] {
            assert_eq!(
                CollectionMeta::decode(ValueType::ZSet, &meta.encode()),
                Some(meta)
            );
        }
        assert_eq!(CollectionMeta::decode(ValueType::Hash, b"short"), None);
        let cut = &bounded(Some(b"low"), Some(b"high")).encode()[..20];
        assert_eq!(CollectionMeta::decode(ValueType::ZSet, cut), None);
    }

    #[test]
    fn member_ranges_hold_exactly_one_kind_of_one_version() {
        let a = member_key(5, 9, MemberKind::Item, b"\xff\xff");
        let end = member_range_end(5, 9, MemberKind::Item);
        assert!(a < end);
        assert!(member_key(5, 9, MemberKind::Score, b"") >= end);
        assert!(member_key(5, 9, MemberKind::Item, b"") < a);
        assert!(a.starts_with(&version_prefix(5, 9)));
        assert_eq!(split_garbage_key(&garbage_key(5, 9)), Some((5, 9)));
    }

    /// The version-1 layout, byte for byte: data written by this version must stay readable.
    #[test]
    fn version_one_layout_is_stable() {
        let raw = Bytes::from_static(b"\x01\x00\x00\x00\x01\x8b\xcf\xe5\x68\x00hello");
        let e = Entry::decode(raw).unwrap();
        assert_eq!(e.kind, ValueType::String);
        assert_eq!(e.expire_at, Some(1_700_000_000_000));
        assert_eq!(&e.payload[..], b"hello");
        assert_eq!(
            data_key(b"foo"),
            [&12182u16.to_be_bytes()[..], b"foo"].concat()
        );
    }
}
