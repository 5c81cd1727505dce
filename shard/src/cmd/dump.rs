//! DUMP and RESTORE, in Redis's own payload format, so that a value dumped by Redis restores
//! in fjord and the other way round.
//!
//! A payload is one RDB-encoded object, then the RDB version (2 bytes, little-endian) and a
//! CRC-64 (Jones polynomial, as Redis's `crc64`, 8 bytes little-endian) of everything before
//! the checksum. fjord writes RDB version 10 (Redis 7.0) and refuses newer ones, as Redis
//! 7.0 does. Strings are the only type so far: an integer in canonical form is written as
//! Redis writes it (8, 16 or 32 bits), anything else as raw bytes; RESTORE also reads
//! Redis's LZF-compressed strings. A valid payload of another type is refused with a clear
//! error until that type exists.

use super::{Parse, Read};
use crate::store::encoding::{Entry, ValueType};
use crate::store::writer::{Txn, WriteOp};
use crate::store::{now_ms, Store};
use bytes::{BufMut, Bytes, BytesMut};
use fjord_common::number::parse_i64;
use fjord_common::{error, Reply};

/// The RDB version Redis 7.0 writes and the newest it reads.
const RDB_VERSION: u16 = 10;

/// RDB object type of a string.
const RDB_TYPE_STRING: u8 = 0;

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

/// The string a DUMP payload holds, after checking its version and checksum.
pub fn restore_string(payload: &[u8]) -> Result<Bytes, PayloadError> {
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
    match c.byte()? {
        RDB_TYPE_STRING => c.string(),
        1 | 10 | 14 | 18 => Err(PayloadError::Unsupported("list")),
        2 | 11 => Err(PayloadError::Unsupported("set")),
        3 | 5 | 12 | 17 => Err(PayloadError::Unsupported("sorted set")),
        4 | 9 | 13 | 16 => Err(PayloadError::Unsupported("hash")),
        15 | 19 => Err(PayloadError::Unsupported("stream")),
        6 | 7 => Err(PayloadError::Unsupported("module")),
        _ => Err(PayloadError::BadFormat),
    }
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
        match store.get(&self.key, now_ms()) {
            Ok(Some(e)) if e.kind == ValueType::String => Reply::Bulk(dump_string(&e.payload)),
            Ok(Some(_)) => Reply::error(error::not_supported(
                "dump",
                "only string values can be dumped so far",
            )),
            Ok(None) => Reply::Nil,
            Err(e) => Reply::error(format!("ERR {e}")),
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
        let value = match restore_string(&self.payload) {
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
        txn.put(
            &self.key,
            Entry {
                kind: ValueType::String,
                expire_at,
                payload: value,
            },
        );
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
