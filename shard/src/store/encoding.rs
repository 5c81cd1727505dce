//! How keys and values are laid out in fjall. See the module doc of [`crate::store`].

use bytes::{BufMut, Bytes, BytesMut};
use fjord_common::slot_of;

/// Version byte at the start of every stored value.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes before a value's payload: version, type, expiry.
pub const HEADER_LEN: usize = 10;

/// Longest user key: fjall's 65 535-byte key limit less the expiry index's 10-byte prefix.
pub const MAX_KEY_LEN: usize = 65_535 - 10;

/// Type code of a stored value. Codes 1-4 are reserved for the collection types to come.
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
