//! DUMP and RESTORE, in Redis's own payload format, so that a value dumped by Redis restores
//! in fjord and the other way round.
//!
//! A payload is one RDB-encoded object, then the RDB version (2 bytes, little-endian) and a
//! CRC-64 (Jones polynomial, as Redis's `crc64`, 8 bytes little-endian) of everything before
//! the checksum. fjord writes RDB version 10 (Redis 7.0) and refuses newer ones, as Redis
//! 7.0 does. A string that is an integer in canonical form is written as Redis writes it (8,
//! 16 or 32 bits), anything else as raw bytes; RESTORE also reads Redis's LZF-compressed
//! strings. A hash is written as RDB's plain hash (a count, then field and value strings),
//! which every Redis reads; RESTORE also reads the listpack (Redis 7) and ziplist (Redis 6)
//! forms Redis writes for small hashes. Sets are written in RDB's plain form too; RESTORE also
//! reads intsets. Lists are written as RDB's plain list (a count, then the elements), which
//! Redis 7.0 still reads; RESTORE also reads the quicklists Redis 7 (listpack or plain nodes)
//! and Redis 6 (ziplist nodes) write, and a lone ziplist. Sorted sets are written as RDB's
//! `ZSET_2` (members with binary doubles), which Redis 7.0 writes for big ones; RESTORE also
//! reads the listpack (Redis 7) and ziplist (Redis 6) forms of small ones and the old form
//! with text scores. A valid payload of a type fjord does not store yet is
//! refused with a clear error.

use super::{Parse, Read};
use crate::store::encoding::{Entry, ValueType};
use crate::store::members::{Members, View};
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::{hash, list, set, zset, Collection};
use bytes::{BufMut, Bytes, BytesMut};
use fjord_common::number::parse_i64;
use fjord_common::{error, Reply};

/// The RDB version Redis 7.0 writes and the newest it reads.
const RDB_VERSION: u16 = 10;

/// RDB object types.
const RDB_TYPE_STRING: u8 = 0;
const RDB_TYPE_LIST: u8 = 1;
const RDB_TYPE_SET: u8 = 2;
const RDB_TYPE_ZSET: u8 = 3;
const RDB_TYPE_HASH: u8 = 4;
const RDB_TYPE_ZSET_2: u8 = 5;
const RDB_TYPE_LIST_ZIPLIST: u8 = 10;
const RDB_TYPE_SET_INTSET: u8 = 11;
const RDB_TYPE_ZSET_ZIPLIST: u8 = 12;
const RDB_TYPE_HASH_ZIPLIST: u8 = 13;
const RDB_TYPE_LIST_QUICKLIST: u8 = 14;
const RDB_TYPE_HASH_LISTPACK: u8 = 16;
const RDB_TYPE_ZSET_LISTPACK: u8 = 17;
const RDB_TYPE_LIST_QUICKLIST_2: u8 = 18;

/// A node of a Redis 7 quicklist: one element as it is, or a listpack of several.
const QUICKLIST_NODE_PLAIN: usize = 1;
const QUICKLIST_NODE_PACKED: usize = 2;

/// CRC-64/Jones as Redis computes it (reflected, no final xor).
fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 reflected
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u64; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u64;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    data.iter().fold(0u64, |crc, &b| {
        table[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// Writes an RDB length.
fn put_len(out: &mut BytesMut, len: usize) {
    match len {
        0..=63 => out.put_u8(len as u8),
        64..=16383 => out.put_u16(0x4000 | len as u16),
        _ if len <= u32::MAX as usize => {
            out.put_u8(0x80);
            out.put_u32(len as u32);
        }
        _ => {
            out.put_u8(0x81);
            out.put_u64(len as u64);
        }
    }
}

/// A string as `rdbSaveStringObject` writes it (without LZF compression, which is optional).
fn put_string(out: &mut BytesMut, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(n) = parse_i64(s) {
            if let Ok(v) = i8::try_from(n) {
                out.put_u8(0xc0);
                out.put_i8(v);
                return;
            }
            if let Ok(v) = i16::try_from(n) {
                out.put_u8(0xc1);
                out.put_i16_le(v);
                return;
            }
            if let Ok(v) = i32::try_from(n) {
                out.put_u8(0xc2);
                out.put_i32_le(v);
                return;
            }
        }
    }
    put_len(out, s.len());
    out.put_slice(s);
}

/// The DUMP payload of a string value.
pub fn dump_string(value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + 20);
    out.put_u8(RDB_TYPE_STRING);
    put_string(&mut out, value);
    seal(out)
}

/// The DUMP payload of a hash: RDB's plain hash encoding.
pub fn dump_hash(pairs: &[(Bytes, Bytes)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_HASH);
    put_len(&mut out, pairs.len());
    for (f, v) in pairs {
        put_string(&mut out, f);
        put_string(&mut out, v);
    }
    seal(out)
}

/// The DUMP payload of a list: RDB's plain list encoding.
pub fn dump_list(elements: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_LIST);
    put_len(&mut out, elements.len());
    for e in elements {
        put_string(&mut out, e);
    }
    seal(out)
}

/// The DUMP payload of a sorted set: RDB's `ZSET_2` (each member, then its score as a
/// little-endian double).
pub fn dump_zset(items: &[(Bytes, f64)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_ZSET_2);
    put_len(&mut out, items.len());
    for (member, score) in items {
        put_string(&mut out, member);
        out.put_f64_le(*score);
    }
    seal(out)
}

/// The DUMP payload of a set: RDB's plain set encoding.
pub fn dump_set(members: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_SET);
    put_len(&mut out, members.len());
    for m in members {
        put_string(&mut out, m);
    }
    seal(out)
}

/// Appends the RDB version and the checksum to an object.
fn seal(mut out: BytesMut) -> Bytes {
    out.put_u16_le(RDB_VERSION);
    let crc = crc64(&out);
    out.put_u64_le(crc);
    out.freeze()
}

/// Why a payload cannot be restored.
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Too short, a newer RDB version, or a checksum that does not match.
    VersionOrChecksum,
    /// The object inside is malformed.
    BadFormat,
    /// A well-formed value of a type fjord does not store yet.
    Unsupported(&'static str),
}

/// Reads an RDB payload from its object bytes.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        let end = self.at.checked_add(n).ok_or(PayloadError::BadFormat)?;
        let s = self.data.get(self.at..end).ok_or(PayloadError::BadFormat)?;
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, PayloadError> {
        Ok(self.take(1)?[0])
    }

    /// An RDB length, or `Err(Ok(kind))` for a special string encoding.
    fn len_or_encoding(&mut self) -> Result<Result<usize, u8>, PayloadError> {
        let first = self.byte()?;
        let len = match first >> 6 {
            0 => u64::from(first & 0x3f),
            1 => (u64::from(first & 0x3f) << 8) | u64::from(self.byte()?),
            3 => return Ok(Err(first & 0x3f)),
            _ => match first {
                0x80 => u64::from(u32::from_be_bytes(
                    self.take(4)?.try_into().unwrap_or_default(),
                )),
                0x81 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default()),
                _ => return Err(PayloadError::BadFormat),
            },
        };
        // A length is only used to take that many bytes of the payload, which checks it
        // against what is there before anything is allocated.
        usize::try_from(len)
            .map(Ok)
            .map_err(|_| PayloadError::BadFormat)
    }

    fn len(&mut self) -> Result<usize, PayloadError> {
        self.len_or_encoding()?.map_err(|_| PayloadError::BadFormat)
    }

    /// A string as `rdbGenericLoadStringObject` reads it.
    /// A score of RDB's old sorted-set form: a length byte (253 NaN, 254 +inf, 255 -inf),
    /// then the number as text.
    fn text_score(&mut self) -> Result<f64, PayloadError> {
        match self.byte()? {
            253 => Err(PayloadError::BadFormat),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => {
                let text = self.take(usize::from(len))?;
                fjord_common::number::parse_f64(text).ok_or(PayloadError::BadFormat)
            }
        }
    }

    /// A count, then that many strings (a plain set or list). Each takes at least one byte:
    /// a count beyond what is left is refused before anything is allocated for it.
    fn strings(&mut self) -> Result<Vec<Bytes>, PayloadError> {
        let n = self.len()?;
        if n > self.data.len() - self.at {
            return Err(PayloadError::BadFormat);
        }
        (0..n).map(|_| self.string()).collect()
    }

    fn string(&mut self) -> Result<Bytes, PayloadError> {
        match self.len_or_encoding()? {
            Ok(n) => Ok(Bytes::copy_from_slice(self.take(n)?)),
            Err(0) => Ok(Bytes::from((self.byte()? as i8).to_string())),
            Err(1) => {
                let b = self.take(2)?;
                Ok(Bytes::from(i16::from_le_bytes([b[0], b[1]]).to_string()))
            }
            Err(2) => {
                let b = self.take(4)?;
                Ok(Bytes::from(
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
                ))
            }
            Err(3) => {
                let compressed = self.len()?;
                let len = self
                    .len_or_encoding()?
                    .map_err(|_| PayloadError::BadFormat)?;
                // The uncompressed length is bounded like any string (proto-max-bulk-len).
                if len > 512 * 1024 * 1024 {
                    return Err(PayloadError::BadFormat);
                }
                lzf_decompress(self.take(compressed)?, len).map(Bytes::from)
            }
            Err(_) => Err(PayloadError::BadFormat),
        }
    }
}

/// LZF decompression (liblzf's format, which Redis uses), into exactly `len` bytes.
fn lzf_decompress(input: &[u8], len: usize) -> Result<Vec<u8>, PayloadError> {
    let bad = || PayloadError::BadFormat;
    // `len` comes from the payload: grow as the output does rather than trust it up front.
    let mut out = Vec::with_capacity(len.min(input.len().saturating_mul(4)));
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let run = input.get(i..i + ctrl + 1).ok_or_else(bad)?;
            out.extend_from_slice(run);
            i += ctrl + 1;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += usize::from(*input.get(i).ok_or_else(bad)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i).ok_or_else(bad)?) + 1;
            i += 1;
            let from = out.len().checked_sub(back).ok_or_else(bad)?;
            for k in 0..n + 2 {
                out.push(out[from + k]);
            }
        }
        if out.len() > len {
            return Err(bad());
        }
    }
    (out.len() == len).then_some(out).ok_or_else(bad)
}

/// The elements of a listpack (Redis 7's compact encoding of small collections).
fn listpack_entries(lp: &[u8]) -> Result<Vec<Bytes>, PayloadError> {
    let bad = || PayloadError::BadFormat;
    let total = u32::from_le_bytes(lp.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    if total as usize != lp.len() || lp.len() < 7 {
        return Err(bad());
    }
    let mut c = Cursor { data: lp, at: 6 };
    let mut out = Vec::new();
    loop {
        let start = c.at;
        let b = c.byte()?;
        let entry = match b {
            0xff => break,
            _ if b & 0x80 == 0 => Bytes::from((b & 0x7f).to_string()),
            _ if b & 0xc0 == 0x80 => Bytes::copy_from_slice(c.take(usize::from(b & 0x3f))?),
            _ if b & 0xe0 == 0xc0 => {
                let raw = (u16::from(b & 0x1f) << 8) | u16::from(c.byte()?);
                let v = ((raw << 3) as i16) >> 3; // sign-extend 13 bits
                Bytes::from(v.to_string())
            }
            _ if b & 0xf0 == 0xe0 => {
                let len = (usize::from(b & 0x0f) << 8) | usize::from(c.byte()?);
                Bytes::copy_from_slice(c.take(len)?)
            }
            0xf0 => {
                let len = u32::from_le_bytes(c.take(4)?.try_into().map_err(|_| bad())?);
                Bytes::copy_from_slice(c.take(len as usize)?)
            }
            0xf1..=0xf4 => {
                let n = [2, 3, 4, 8][usize::from(b - 0xf1)];
                let mut raw = [0u8; 8];
                raw[..n].copy_from_slice(c.take(n)?);
                let shift = 64 - 8 * n as u32;
                let v = (i64::from_le_bytes(raw) << shift) >> shift; // sign-extend
                Bytes::from(v.to_string())
            }
            _ => return Err(bad()),
        };
        // The entry's length, written again backwards after it: 7 bits per byte.
        let len = c.at - start;
        let backlen = match len {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            2_097_152..=268_435_455 => 4,
            _ => 5,
        };
        c.take(backlen)?;
        out.push(entry);
    }
    let count = u16::from_le_bytes([lp[4], lp[5]]);
    // 65535 means "too many to count in the header".
    if c.at != lp.len() || (count != u16::MAX && usize::from(count) != out.len()) {
        return Err(bad());
    }
    Ok(out)
}

/// The elements of a ziplist (how Redis 6 and older encode small collections).
fn ziplist_entries(zl: &[u8]) -> Result<Vec<Bytes>, PayloadError> {
    let bad = || PayloadError::BadFormat;
    let total = u32::from_le_bytes(zl.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    if total as usize != zl.len() || zl.len() < 11 {
        return Err(bad());
    }
    let mut c = Cursor { data: zl, at: 10 };
    let mut out = Vec::new();
    loop {
        let first = c.byte()?;
        if first == 0xff {
            break;
        }
        if first == 0xfe {
            c.take(4)?; // the previous entry's length, when it needs 5 bytes
        }
        let b = c.byte()?;
        let int = |c: &mut Cursor<'_>, n: usize| -> Result<Bytes, PayloadError> {
            let mut raw = [0u8; 8];
            raw[..n].copy_from_slice(c.take(n)?);
            let shift = 64 - 8 * n as u32;
            Ok(Bytes::from(
                ((i64::from_le_bytes(raw) << shift) >> shift).to_string(),
            ))
        };
        let entry = match b >> 6 {
            0 => Bytes::copy_from_slice(c.take(usize::from(b & 0x3f))?),
            1 => {
                let len = (usize::from(b & 0x3f) << 8) | usize::from(c.byte()?);
                Bytes::copy_from_slice(c.take(len)?)
            }
            2 if b == 0x80 => {
                let len = u32::from_be_bytes(c.take(4)?.try_into().map_err(|_| bad())?);
                Bytes::copy_from_slice(c.take(len as usize)?)
            }
            2 => return Err(bad()),
            _ => match b {
                0xc0 => int(&mut c, 2)?,
                0xd0 => int(&mut c, 4)?,
                0xe0 => int(&mut c, 8)?,
                0xf0 => int(&mut c, 3)?,
                0xfe => int(&mut c, 1)?,
                0xf1..=0xfd => Bytes::from((b - 0xf1).to_string()),
                _ => return Err(bad()),
            },
        };
        out.push(entry);
    }
    if c.at != zl.len() {
        return Err(bad());
    }
    Ok(out)
}

/// The integers of an intset (how Redis encodes a small set of integers).
fn intset_entries(is: &[u8]) -> Result<Vec<Bytes>, PayloadError> {
    let bad = || PayloadError::BadFormat;
    let mut c = Cursor { data: is, at: 0 };
    let width = u32::from_le_bytes(c.take(4)?.try_into().map_err(|_| bad())?) as usize;
    let len = u32::from_le_bytes(c.take(4)?.try_into().map_err(|_| bad())?) as usize;
    if !matches!(width, 2 | 4 | 8) || len.checked_mul(width) != Some(is.len() - 8) {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let mut raw = [0u8; 8];
        raw[..width].copy_from_slice(c.take(width)?);
        let shift = 64 - 8 * width as u32;
        out.push(Bytes::from(
            ((i64::from_le_bytes(raw) << shift) >> shift).to_string(),
        ));
    }
    Ok(out)
}

/// A value a DUMP payload holds.
#[derive(Debug, PartialEq)]
pub enum Value {
    String(Bytes),
    /// Field-value pairs, each field once.
    Hash(Vec<(Bytes, Bytes)>),
    /// Members, each once.
    Set(Vec<Bytes>),
    /// Elements in order, at least one.
    List(Vec<Bytes>),
    /// Members with their scores, each member once.
    ZSet(Vec<(Bytes, f64)>),
}

/// Refuses a NaN score (Redis refuses it as corrupt).
fn scored(items: impl Iterator<Item = (Bytes, f64)>) -> Result<Vec<(Bytes, f64)>, PayloadError> {
    items
        .map(|(m, s)| match s.is_nan() {
            true => Err(PayloadError::BadFormat),
            false => Ok((m, s)),
        })
        .collect()
}

/// Refuses an empty list (Redis refuses an empty key as corrupt).
fn non_empty(elements: Vec<Bytes>) -> Result<Vec<Bytes>, PayloadError> {
    match elements.is_empty() {
        true => Err(PayloadError::BadFormat),
        false => Ok(elements),
    }
}

/// Refuses an empty set or a repeated member (Redis refuses both as corrupt).
fn set_members(members: Vec<Bytes>) -> Result<Vec<Bytes>, PayloadError> {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    let unique = members
        .iter()
        .all(|m| seen.insert(m.clone()) && crate::types::check_member_name(m).is_ok());
    if members.is_empty() || !unique {
        return Err(PayloadError::BadFormat);
    }
    Ok(members)
}

/// The string a DUMP payload holds (any other type is an error).
#[cfg(test)]
fn restore_string(payload: &[u8]) -> Result<Bytes, PayloadError> {
    match restore_value(payload)? {
        Value::String(s) => Ok(s),
        _ => Err(PayloadError::BadFormat),
    }
}

/// Pairs up a flat list of fields and values, refusing an empty hash or a repeated field
/// (Redis refuses both as corrupt).
fn hash_pairs(flat: Vec<Bytes>) -> Result<Vec<(Bytes, Bytes)>, PayloadError> {
    if flat.is_empty() || !flat.len().is_multiple_of(2) {
        return Err(PayloadError::BadFormat);
    }
    let mut seen = std::collections::HashSet::with_capacity(flat.len() / 2);
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        if !seen.insert(f.clone()) || crate::types::check_member_name(&f).is_err() {
            return Err(PayloadError::BadFormat);
        }
        pairs.push((f, v));
    }
    Ok(pairs)
}

/// The value a DUMP payload holds, after checking its version and checksum.
pub fn restore_value(payload: &[u8]) -> Result<Value, PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().unwrap_or_default());
    if version > RDB_VERSION || crc64(&payload[..payload.len() - 8]) != crc {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut c = Cursor { data: body, at: 0 };
    let kind = c.byte()?;
    let value = match kind {
        RDB_TYPE_STRING => Value::String(c.string()?),
        RDB_TYPE_HASH => {
            let n = c.len()?;
            // Each field and value takes at least one byte: a count beyond what is left is
            // refused before anything is allocated for it.
            if n > body.len() {
                return Err(PayloadError::BadFormat);
            }
            let mut flat = Vec::with_capacity(n * 2);
            for _ in 0..n * 2 {
                flat.push(c.string()?);
            }
            Value::Hash(hash_pairs(flat)?)
        }
        RDB_TYPE_HASH_LISTPACK => Value::Hash(hash_pairs(listpack_entries(&c.string()?)?)?),
        RDB_TYPE_SET => Value::Set(set_members(c.strings()?)?),
        RDB_TYPE_LIST => Value::List(non_empty(c.strings()?)?),
        RDB_TYPE_LIST_ZIPLIST => Value::List(non_empty(ziplist_entries(&c.string()?)?)?),
        RDB_TYPE_LIST_QUICKLIST | RDB_TYPE_LIST_QUICKLIST_2 => {
            let nodes = c.len()?;
            if nodes > body.len() {
                return Err(PayloadError::BadFormat);
            }
            let mut elements = Vec::new();
            for _ in 0..nodes {
                let packed = match kind {
                    RDB_TYPE_LIST_QUICKLIST => true,
                    _ => match c.len()? {
                        QUICKLIST_NODE_PLAIN => false,
                        QUICKLIST_NODE_PACKED => true,
                        _ => return Err(PayloadError::BadFormat),
                    },
                };
                let node = c.string()?;
                match (packed, kind) {
                    (false, _) => elements.push(node),
                    (true, RDB_TYPE_LIST_QUICKLIST) => elements.extend(ziplist_entries(&node)?),
                    // Redis drops an empty node as it loads; so does fjord.
                    (true, _) => elements.extend(listpack_entries(&node)?),
                }
            }
            Value::List(non_empty(elements)?)
        }
        RDB_TYPE_SET_INTSET => Value::Set(set_members(intset_entries(&c.string()?)?)?),
        RDB_TYPE_HASH_ZIPLIST => Value::Hash(hash_pairs(ziplist_entries(&c.string()?)?)?),
        RDB_TYPE_ZSET | RDB_TYPE_ZSET_2 => {
            let n = c.len()?;
            if n > body.len() {
                return Err(PayloadError::BadFormat);
            }
            let mut flat = Vec::with_capacity(n * 2);
            let mut scores = Vec::with_capacity(n);
            for _ in 0..n {
                flat.push(c.string()?);
                flat.push(Bytes::new());
                scores.push(match kind {
                    RDB_TYPE_ZSET_2 => f64::from_le_bytes(
                        c.take(8)?.try_into().map_err(|_| PayloadError::BadFormat)?,
                    ),
                    _ => c.text_score()?,
                });
            }
            let members = hash_pairs(flat)?.into_iter().map(|(m, _)| m);
            Value::ZSet(scored(members.zip(scores))?)
        }
        RDB_TYPE_ZSET_LISTPACK | RDB_TYPE_ZSET_ZIPLIST => {
            let entries = match kind {
                RDB_TYPE_ZSET_LISTPACK => listpack_entries(&c.string()?)?,
                _ => ziplist_entries(&c.string()?)?,
            };
            let mut items = Vec::with_capacity(entries.len() / 2);
            for (member, score) in hash_pairs(entries)? {
                let score =
                    fjord_common::number::parse_f64(&score).ok_or(PayloadError::BadFormat)?;
                items.push((member, score));
            }
            Value::ZSet(scored(items.into_iter())?)
        }
        9 => return Err(PayloadError::Unsupported("zipmap hash (Redis 2.4)")),
        15 | 19 => return Err(PayloadError::Unsupported("stream")),
        6 | 7 => return Err(PayloadError::Unsupported("module")),
        _ => return Err(PayloadError::BadFormat),
    };
    // Trailing bytes after the object mean the payload is not what it claims.
    if c.at != body.len() {
        return Err(PayloadError::BadFormat);
    }
    Ok(value)
}

/// `DUMP key`
pub struct Dump {
    key: Bytes,
}

impl Parse for Dump {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl Read for Dump {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let entry = match view.entry(&self.key) {
            Ok(Some(e)) => e,
            Ok(None) => return Reply::Nil,
            Err(e) => return e.into(),
        };
        match entry.kind {
            ValueType::String => Reply::Bulk(dump_string(&entry.payload)),
            ValueType::Hash => {
                let h = match hash::find(&mut view, &self.key) {
                    Ok(Some(h)) => h,
                    Ok(None) => return Reply::Nil,
                    Err(e) => return e,
                };
                let mut pairs = Vec::with_capacity(h.meta.size.min(1 << 16) as usize);
                let result = h.for_each_item(&mut view, false, |f, v| {
                    pairs.push((Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)));
                    true
                });
                match result {
                    Ok(()) => Reply::Bulk(dump_hash(&pairs)),
                    Err(e) => e,
                }
            }
            ValueType::Set => {
                let s = match set::find(&mut view, &self.key) {
                    Ok(Some(s)) => s,
                    Ok(None) => return Reply::Nil,
                    Err(e) => return e,
                };
                match set::members(&mut view, &s) {
                    Ok(members) => Reply::Bulk(dump_set(&members)),
                    Err(e) => e,
                }
            }
            ValueType::List => {
                let l = match list::find(&mut view, &self.key) {
                    Ok(Some(l)) => l,
                    Ok(None) => return Reply::Nil,
                    Err(e) => return e,
                };
                match list::range(&mut view, &l, (0, l.meta.size - 1)) {
                    Ok(elements) => Reply::Bulk(dump_list(&elements)),
                    Err(e) => e,
                }
            }
            ValueType::ZSet => {
                let z = match zset::find(&mut view, &self.key) {
                    Ok(Some(z)) => z,
                    Ok(None) => return Reply::Nil,
                    Err(e) => return e,
                };
                let mut items = Vec::with_capacity(z.meta.size.min(1 << 16) as usize);
                let walked = zset::walk(&mut view, &z, false, |m, score| {
                    items.push((Bytes::copy_from_slice(m), score));
                    true
                });
                match walked {
                    Ok(()) => Reply::Bulk(dump_zset(&items)),
                    Err(e) => e,
                }
            }
        }
    }
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ n]`. fjord keeps no LRU or
/// LFU figures: IDLETIME and FREQ are checked as Redis checks them, then ignored.
pub struct Restore {
    key: Bytes,
    ttl: i64,
    payload: Bytes,
    replace: bool,
    absolute: bool,
}

impl Parse for Restore {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (mut replace, mut absolute) = (false, false);
        let (mut idle, mut freq) = (false, false);
        let mut i = 4;
        while i < args.len() {
            let more = i + 1 < args.len();
            match args[i].to_ascii_uppercase().as_slice() {
                b"REPLACE" => replace = true,
                b"ABSTTL" => absolute = true,
                b"IDLETIME" if more && !freq => {
                    let n = parse_i64(&args[i + 1]).ok_or(Reply::error(error::NOT_INTEGER))?;
                    if n < 0 {
                        return Err(Reply::error("ERR Invalid IDLETIME value, must be >= 0"));
                    }
                    idle = true;
                    i += 1;
                }
                b"FREQ" if more && !idle => {
                    let n = parse_i64(&args[i + 1]).ok_or(Reply::error(error::NOT_INTEGER))?;
                    if !(0..=255).contains(&n) {
                        return Err(Reply::error(
                            "ERR Invalid FREQ value, must be >= 0 and <= 255",
                        ));
                    }
                    freq = true;
                    i += 1;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        Ok(Self {
            key: args[1].clone(),
            ttl: parse_i64(&args[2]).unwrap_or(i64::MIN),
            payload: args[3].clone(),
            replace,
            absolute,
        })
    }
}

impl WriteOp for Restore {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        // Redis's order: the existing key, then the TTL, then the payload.
        if !self.replace && txn.get(&self.key).is_some() {
            return Reply::error(error::BUSYKEY);
        }
        match self.ttl {
            i64::MIN => return Reply::error(error::NOT_INTEGER),
            t if t < 0 => return Reply::error("ERR Invalid TTL value, must be >= 0"),
            _ => {}
        }
        let value = match restore_value(&self.payload) {
            Ok(v) => v,
            Err(PayloadError::VersionOrChecksum) => {
                return Reply::error("ERR DUMP payload version or checksum are wrong")
            }
            Err(PayloadError::BadFormat) => return Reply::error("ERR Bad data format"),
            Err(PayloadError::Unsupported(kind)) => {
                return Reply::error(error::not_supported(
                    "restore",
                    &format!("fjord does not store a {kind} value yet"),
                ))
            }
        };
        let now = txn.now();
        let expire_at = match (self.ttl, self.absolute) {
            (0, _) => None,
            (t, true) => Some(t as u64),
            (t, false) => Some(now.saturating_add(t as u64)),
        };
        if self.replace {
            txn.delete(&self.key);
        }
        // A deadline already past: the key is not created (an old one is still replaced).
        if expire_at.is_some_and(|at| at <= now) {
            return Reply::ok();
        }
        match value {
            Value::String(payload) => txn.put(
                &self.key,
                Entry {
                    kind: ValueType::String,
                    expire_at,
                    payload,
                },
            ),
            Value::Hash(pairs) => {
                let mut h = match Collection::find_or_create(txn, &self.key, ValueType::Hash) {
                    Ok(h) => h,
                    Err(e) => return e,
                };
                h.expire_at = expire_at;
                for (f, v) in pairs {
                    hash::set(txn, &mut h, &f, v);
                }
                h.save(txn, &self.key);
            }
            Value::List(elements) => {
                let mut l = match list::find_or_create(txn, &self.key) {
                    Ok(l) => l,
                    Err(e) => return e,
                };
                l.expire_at = expire_at;
                for e in elements {
                    list::push(txn, &mut l, list::End::Right, e);
                }
                l.save(txn, &self.key);
            }
            Value::ZSet(items) => {
                let mut z = match Collection::find_or_create(txn, &self.key, ValueType::ZSet) {
                    Ok(z) => z,
                    Err(e) => return e,
                };
                z.expire_at = expire_at;
                for (m, score) in &items {
                    // A payload may name a member twice: the last score wins.
                    let current = match zset::score(txn, &z, m) {
                        Ok(c) => c,
                        Err(e) => return e,
                    };
                    zset::set(txn, &mut z, m, current, *score);
                }
                z.save(txn, &self.key);
            }
            Value::Set(members) => {
                let mut s = match Collection::find_or_create(txn, &self.key, ValueType::Set) {
                    Ok(s) => s,
                    Err(e) => return e,
                };
                s.expire_at = expire_at;
                for m in &members {
                    set::add(txn, &mut s, m);
                }
                s.save(txn, &self.key);
            }
        }
        Reply::ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_payloads_are_byte_identical_to_redis_7() {
        // `DUMP` in redis-server 7.0.15 after `SET k bar` and `SET k 12345`.
        assert_eq!(
            &dump_string(b"bar")[..],
            b"\x00\x03bar\x0a\x00\xe6\xbe\x49\x60\xee\x66\xfd\x17"
        );
        assert_eq!(
            &dump_string(b"12345")[..],
            b"\x00\xc1\x39\x30\x0a\x00\x9d\x94\xea\x27\x93\xfc\x08\xb9"
        );
    }

    #[test]
    fn a_compressed_string_dumped_by_redis_restores() {
        // `DUMP` in redis-server 7.0.15 of 100 times "x": LZF-compressed.
        let payload = b"\x00\xc3\x09\x40\x64\x01\x78\x78\xe0\x57\x00\x01\x78\x78\x0a\x00\x5d\xb7\xf6\x63\xbb\x08\x62\x5f";
        assert_eq!(&restore_string(payload).unwrap()[..], &[b'x'; 100][..]);
    }

    #[test]
    fn payloads_round_trip_and_checks_refuse_damage() {
        for v in [
            &b""[..],
            b"bar",
            b"-1",
            b"300",
            b"70000",
            b"99999999999",
            b"007",
        ] {
            assert_eq!(&restore_string(&dump_string(v)).unwrap()[..], v);
        }
        let long = vec![b'x'; 20_000];
        assert_eq!(restore_string(&dump_string(&long)).unwrap().len(), 20_000);
        let mut bad = dump_string(b"bar").to_vec();
        bad[2] ^= 1;
        assert_eq!(restore_string(&bad), Err(PayloadError::VersionOrChecksum));
        assert_eq!(
            restore_string(b"short"),
            Err(PayloadError::VersionOrChecksum)
        );
    }

    #[test]
    fn a_length_longer_than_the_payload_is_bad_data() {
        // The Redis suite's "invalid payload size", with a version Redis 7.0 reads.
        let mut p = b"\x00\x81\xff\xff\xff\xff\xff\xff\xff\xf7\x0a\x00".to_vec();
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore_string(&p), Err(PayloadError::BadFormat));
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(words: &[&str]) -> Vec<(Bytes, Bytes)> {
        words
            .chunks(2)
            .map(|p| (Bytes::from(p[0].to_string()), Bytes::from(p[1].to_string())))
            .collect()
    }

    #[test]
    fn hashes_dumped_by_redis_7_restore_from_listpack_and_plain_form() {
        // redis-server 7.0.15: `HSET hs a 1 b hello c -300 d 70000 e 9999999999`, then DUMP
        // (a listpack); and with hash-max-listpack-entries 0, `HSET hb a 1 b hello` (plain).
        let listpack = unhex("1031310000000a0081610201018162028568656c6c6f06816302ded402816402f270110104816502f4ffe30b540200000009ff0a006c71d7454527b7fb");
        assert_eq!(
            restore_value(&listpack).unwrap(),
            Value::Hash(pairs(&[
                "a",
                "1",
                "b",
                "hello",
                "c",
                "-300",
                "d",
                "70000",
                "e",
                "9999999999"
            ]))
        );
        let plain = unhex("040201620568656c6c6f0161c0010a00c15cea44e6526205");
        assert_eq!(
            restore_value(&plain).unwrap(),
            Value::Hash(pairs(&["b", "hello", "a", "1"]))
        );
    }

    #[test]
    fn hash_payloads_round_trip_and_refuse_repeated_or_missing_fields() {
        let h = pairs(&["f", "1", "g", "-70000", "long", &"x".repeat(300)]);
        assert_eq!(restore_value(&dump_hash(&h)).unwrap(), Value::Hash(h));
        let repeated = dump_hash(&pairs(&["f", "1", "f", "2"]));
        assert_eq!(restore_value(&repeated), Err(PayloadError::BadFormat));
        assert_eq!(restore_value(&dump_hash(&[])), Err(PayloadError::BadFormat));
    }

    #[test]
    fn sets_dumped_by_redis_7_restore_from_intset_and_plain_form() {
        // redis-server 7.0.15: `SADD is 1 2 -5 70000` (an intset), `SADD ss a bb` (plain).
        let intset =
            unhex("0b180400000004000000fbffffff0100000002000000701101000a00749cce0a5f64ef0e");
        let words = |w: &[&str]| {
            w.iter()
                .map(|s| Bytes::from(s.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            restore_value(&intset).unwrap(),
            Value::Set(words(&["-5", "1", "2", "70000"]))
        );
        let plain = unhex("020202626201610a002157186e64d0ce80");
        assert_eq!(
            restore_value(&plain).unwrap(),
            Value::Set(words(&["bb", "a"]))
        );
        let ours = dump_set(&words(&["a", "12", "x"]));
        assert_eq!(
            restore_value(&ours).unwrap(),
            Value::Set(words(&["a", "12", "x"]))
        );
        assert_eq!(
            restore_value(&dump_set(&words(&["a", "a"]))),
            Err(PayloadError::BadFormat)
        );
    }

    #[test]
    fn lists_dumped_by_redis_7_restore_from_listpack_and_plain_nodes() {
        let words = |w: &[&str]| {
            w.iter()
                .map(|s| Bytes::from(s.to_string()))
                .collect::<Vec<_>>()
        };
        // redis-server 7.0.15: `RPUSH a x 12 -300 70000 hello` (one listpack node).
        let one_node = unhex(
            "1201021b1b00000005008178020c01ded402f2701101048568656c6c6f06ff0a00d3eca5ead3fe8a3d",
        );
        assert_eq!(
            restore_value(&one_node).unwrap(),
            Value::List(words(&["x", "12", "-300", "70000", "hello"]))
        );
        // With list-max-listpack-size 1, `RPUSH b aa bb`: two listpack nodes.
        let two_nodes =
            unhex("1202020b0b000000010082616103ff020b0b000000010082626203ff0a0029dd9b699d0f7acf");
        assert_eq!(
            restore_value(&two_nodes).unwrap(),
            Value::List(words(&["aa", "bb"]))
        );
        // With DEBUG QUICKLIST-PACKED-THRESHOLD 1b, `RPUSH c bigger small`: plain nodes.
        let plain = unhex("120201066269676765720105736d616c6c0a00ba4e2ffd3e8eb76e");
        assert_eq!(
            restore_value(&plain).unwrap(),
            Value::List(words(&["bigger", "small"]))
        );
        let ours = words(&["a", "12", "", &"x".repeat(300)]);
        assert_eq!(restore_value(&dump_list(&ours)).unwrap(), Value::List(ours));
        assert_eq!(restore_value(&dump_list(&[])), Err(PayloadError::BadFormat));
        // A node that is neither plain (1) nor packed (2) is corrupt.
        let mut bad = BytesMut::new();
        bad.extend_from_slice(&[RDB_TYPE_LIST_QUICKLIST_2, 1, 3, 1, b'x']);
        assert_eq!(restore_value(&seal(bad)), Err(PayloadError::BadFormat));
    }

    #[test]
    fn sorted_sets_dumped_by_redis_7_restore_from_listpack_and_zset_2() {
        let items = |w: &[(&str, f64)]| {
            w.iter()
                .map(|(m, s)| (Bytes::from(m.to_string()), *s))
                .collect::<Vec<_>>()
        };
        // redis-server 7.0.15: `ZADD za 1 a 2.5 b -3 c` (a listpack, in score order).
        let listpack =
            unhex("111a1a0000000600816302dffd02816102010181620283322e3504ff0a00a68a1ab1a9f2dcc2");
        assert_eq!(
            restore_value(&listpack).unwrap(),
            Value::ZSet(items(&[("c", -3.0), ("a", 1.0), ("b", 2.5)]))
        );
        // With zset-max-listpack-entries 0, `ZADD zb 1 a 2.5 b inf c`: ZSET_2, from the top.
        let zset_2 = unhex(
            "05030163000000000000f07f016200000000000004400161000000000000f03f0a00d05d23af3e180fa6",
        );
        assert_eq!(
            restore_value(&zset_2).unwrap(),
            Value::ZSet(items(&[("c", f64::INFINITY), ("b", 2.5), ("a", 1.0)]))
        );
        let ours = items(&[("x", -0.5), ("y", 1e300), ("z", f64::NEG_INFINITY)]);
        assert_eq!(restore_value(&dump_zset(&ours)).unwrap(), Value::ZSet(ours));
        let repeated = dump_zset(&items(&[("x", 1.0), ("x", 2.0)]));
        assert_eq!(restore_value(&repeated), Err(PayloadError::BadFormat));
        let nan = dump_zset(&items(&[("x", f64::NAN)]));
        assert_eq!(restore_value(&nan), Err(PayloadError::BadFormat));
        assert_eq!(restore_value(&dump_zset(&[])), Err(PayloadError::BadFormat));
    }

    #[test]
    fn ziplists_from_redis_6_decode() {
        // A ziplist of "a", 5 (immediate), -2 (int8), "hi": zlbytes, zltail, zllen, entries.
        let entries: &[u8] = b"\x00\x01a\x03\xf6\x02\xfe\xfe\x03\x02hi";
        let mut zl = Vec::new();
        zl.extend_from_slice(&((10 + entries.len() + 1) as u32).to_le_bytes());
        zl.extend_from_slice(&0u32.to_le_bytes());
        zl.extend_from_slice(&4u16.to_le_bytes());
        zl.extend_from_slice(entries);
        zl.push(0xff);
        let got: Vec<String> = ziplist_entries(&zl)
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(got, ["a", "5", "-2", "hi"]);
    }

    #[test]
    fn lzf_strings_from_redis_decompress() {
        // liblzf: a literal run "abc", then a back-reference of 6 bytes, 3 back.
        assert_eq!(lzf_decompress(b"\x02abc\x80\x02", 9).unwrap(), b"abcabcabc");
        assert_eq!(
            lzf_decompress(b"\x02abc\x80\x09", 9),
            Err(PayloadError::BadFormat)
        );
        assert_eq!(lzf_decompress(b"\x05ab", 6), Err(PayloadError::BadFormat));
    }
}
