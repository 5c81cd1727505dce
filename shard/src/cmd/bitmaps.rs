//! Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO.
//!
//! Bit 0 is the most significant bit of the first byte, as in Redis; a string reads as
//! padded with zero bits to the right, and writes grow it with zero bytes. The bit-level
//! rules (range normalisation, overflow of BITFIELD integers) follow Redis's `bitops.c`, so
//! edge cases answer the same.

use super::strings::{int_arg, store_string, string_entry, string_value};
use super::{Parse, Read};
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use bytes::{Bytes, BytesMut};
use fjord_common::number::parse_i64;
use fjord_common::{error, Reply};

/// Largest bitmap, in bytes (Redis's `proto-max-bulk-len`).
const MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Parses a bit offset (`getBitOffsetFromArgument`): non-negative, inside [`MAX_BYTES`]. With
/// `bits` given, `#n` means the n-th field of that width (BITFIELD).
fn bit_offset(arg: &[u8], bits: Option<u32>) -> Result<u64, Reply> {
    let invalid = || Reply::error(error::BIT_OFFSET);
    let (hash, digits) = match (arg.first(), bits) {
        (Some(b'#'), Some(_)) => (true, &arg[1..]),
        _ => (false, arg),
    };
    let mut offset = parse_i64(digits).ok_or_else(invalid)?;
    if hash {
        offset = offset
            .checked_mul(i64::from(bits.unwrap_or(1)))
            .ok_or_else(invalid)?;
    }
    match u64::try_from(offset) {
        Ok(o) if o >> 3 < MAX_BYTES => Ok(o),
        _ => Err(invalid()),
    }
}

/// The bit at `offset` (zero past the end).
fn get_bit(bytes: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    bytes
        .get(byte)
        .is_some_and(|b| b & (0x80 >> (offset & 7)) != 0)
}

fn set_bit(bytes: &mut [u8], offset: u64, on: bool) {
    let (byte, mask) = ((offset >> 3) as usize, 0x80u8 >> (offset & 7));
    if on {
        bytes[byte] |= mask;
    } else {
        bytes[byte] &= !mask;
    }
}

/// A string a bitmap write changes: the current value, grown with zero bytes to hold the
/// bits written, and its TTL.
struct Bitmap {
    value: BytesMut,
    expire_at: Option<u64>,
    /// Created or grown: stored even if no bit changes, as Redis counts it a change.
    grown: bool,
}

impl Bitmap {
    /// The string at `key` inside a write, made to hold bit `max_bit`; WRONGTYPE for another
    /// type.
    fn load(txn: &mut Txn<'_>, key: &[u8], max_bit: u64) -> Result<Self, Reply> {
        let (mut value, expire_at, exists) = match string_entry(txn, key)? {
            Some(e) => (BytesMut::from(&e.payload[..]), e.expire_at, true),
            None => (BytesMut::new(), None, false),
        };
        let needed = (max_bit >> 3) as usize + 1;
        let grown = !exists || value.len() < needed;
        if value.len() < needed {
            value.resize(needed, 0);
        }
        Ok(Self {
            value,
            expire_at,
            grown,
        })
    }

    /// Writes the value back if it was grown or `changed`; an unchanged bitmap is no write.
    fn store(self, txn: &mut Txn<'_>, key: &[u8], changed: bool) {
        if self.grown || changed {
            store_string(txn, key, self.value.freeze(), self.expire_at);
        }
    }
}

/// `SETBIT key offset 0|1`: sets one bit, answering its old value.
pub struct SetBit {
    key: Bytes,
    offset: u64,
    on: bool,
}

impl Parse for SetBit {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let offset = bit_offset(&args[2], None)?;
        let on = match &args[3][..] {
            b"0" => false,
            b"1" => true,
            _ => return Err(Reply::error(error::BIT_VALUE)),
        };
        Ok(Self {
            key: args[1].clone(),
            offset,
            on,
        })
    }
}

impl WriteOp for SetBit {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut bitmap = match Bitmap::load(txn, &self.key, self.offset) {
            Ok(b) => b,
            Err(e) => return e,
        };
        let old = get_bit(&bitmap.value, self.offset);
        set_bit(&mut bitmap.value, self.offset, self.on);
        bitmap.store(txn, &self.key, old != self.on);
        Reply::Int(i64::from(old))
    }
}

/// `GETBIT key offset`
pub struct GetBit {
    key: Bytes,
    offset: u64,
}

impl Parse for GetBit {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            offset: bit_offset(&args[2], None)?,
        })
    }
}

impl Read for GetBit {
    fn execute(self, store: &Store) -> Reply {
        match string_value(store, &self.key) {
            Ok(v) => Reply::Int(i64::from(get_bit(&v.unwrap_or_default(), self.offset))),
            Err(e) => e,
        }
    }
}

/// A `start end [BYTE|BIT]` range as given.
#[derive(Clone, Copy, Debug)]
struct Range {
    start: i64,
    end: Option<i64>,
    in_bits: bool,
}

impl Range {
    /// The whole string, when no range is given.
    const WHOLE: Range = Range {
        start: 0,
        end: None,
        in_bits: false,
    };

    /// Parses `BYTE|BIT` after the numbers.
    fn unit(arg: Option<&Bytes>) -> Result<bool, Reply> {
        match arg.map(|a| a.to_ascii_uppercase()) {
            None => Ok(false),
            Some(u) if u == b"BYTE" => Ok(false),
            Some(u) if u == b"BIT" => Ok(true),
            Some(_) => Err(Reply::error(error::SYNTAX)),
        }
    }

    /// The range as inclusive bit positions within a string of `len` bytes, or `None` when
    /// it is empty. Negative indexes count from the end; the ends are clamped to the string,
    /// as Redis clamps them. A byte range covers whole bytes.
    fn bits_within(self, len: usize) -> Option<(u64, u64)> {
        let total = if self.in_bits {
            len as i64 * 8
        } else {
            len as i64
        };
        let mut start = self.start;
        let mut end = self.end.unwrap_or(total - 1);
        if start < 0 {
            start += total;
        }
        if end < 0 {
            end += total;
        }
        start = start.max(0);
        end = end.max(0).min(total - 1);
        if start > end {
            return None;
        }
        let (start, end) = (start as u64, end as u64);
        match self.in_bits {
            true => Some((start, end)),
            false => Some((start * 8, end * 8 + 7)),
        }
    }
}

/// Counts the set bits from bit `first` to bit `last`, both included.
fn count_bits(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (first_byte, last_byte) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut count: u64 = bytes[first_byte..=last_byte]
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum();
    // Take back the bits of the edge bytes outside the range.
    if first & 7 != 0 {
        let before = bytes[first_byte] >> (8 - (first & 7));
        count -= u64::from(before.count_ones());
    }
    let after = bytes[last_byte] & (0xffu16 >> ((last & 7) + 1)) as u8;
    count -= u64::from(after.count_ones());
    count
}

/// `BITCOUNT key [start end [BYTE|BIT]]`. As in Redis, a missing key counts 0 before the
/// range is looked at.
pub struct BitCount {
    key: Bytes,
    range: Vec<Bytes>,
}

impl BitCount {
    fn range(args: &[Bytes]) -> Result<Option<Range>, Reply> {
        match args.len() {
            0 => Ok(None),
            2 | 3 => Ok(Some(Range {
                start: int_arg(&args[0])?,
                end: Some(int_arg(&args[1])?),
                in_bits: Range::unit(args.get(2))?,
            })),
            _ => Err(Reply::error(error::SYNTAX)),
        }
    }
}

impl Parse for BitCount {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            range: args[2..].to_vec(),
        })
    }
}

impl Read for BitCount {
    fn execute(self, store: &Store) -> Reply {
        let value = match string_value(store, &self.key) {
            Ok(Some(v)) => v,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let range = match Self::range(&self.range) {
            Ok(r) => r.unwrap_or(Range::WHOLE),
            Err(e) => return e,
        };
        // Redis answers 0 at once for two negative indexes in the wrong order.
        if range.start < 0 && range.end.is_some_and(|e| e < 0 && range.start > e) {
            return Reply::Int(0);
        }
        match range.bits_within(value.len()) {
            Some((first, last)) => Reply::Int(count_bits(&value, first, last) as i64),
            None => Reply::Int(0),
        }
    }
}

/// `BITPOS key 0|1 [start [end [BYTE|BIT]]]`. As in Redis, a missing key answers before the
/// range is looked at.
pub struct BitPos {
    key: Bytes,
    bit: bool,
    range: Vec<Bytes>,
}

impl BitPos {
    fn range(args: &[Bytes]) -> Result<Option<Range>, Reply> {
        match args.len() {
            0 => Ok(None),
            1..=3 => Ok(Some(Range {
                start: int_arg(&args[0])?,
                end: args.get(1).map(|e| int_arg(e)).transpose()?,
                in_bits: Range::unit(args.get(2))?,
            })),
            _ => Err(Reply::error(error::SYNTAX)),
        }
    }
}

impl Parse for BitPos {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let bit = match int_arg(&args[2])? {
            0 => false,
            1 => true,
            _ => return Err(Reply::error(error::BIT_ARGUMENT)),
        };
        Ok(Self {
            key: args[1].clone(),
            bit,
            range: args[3..].to_vec(),
        })
    }
}

impl Read for BitPos {
    fn execute(self, store: &Store) -> Reply {
        let value = match string_value(store, &self.key) {
            Ok(Some(v)) => v,
            // A missing key is an endless run of zero bits.
            Ok(None) => return Reply::Int(if self.bit { -1 } else { 0 }),
            Err(e) => return e,
        };
        let range = match Self::range(&self.range) {
            Ok(r) => r.unwrap_or(Range::WHOLE),
            Err(e) => return e,
        };
        let Some((first, last)) = range.bits_within(value.len()) else {
            return Reply::Int(-1);
        };
        Reply::Int(match find_bit(&value, self.bit, first, last) {
            Some(pos) => pos as i64,
            // Looking for a 1, or for a 0 in a range whose end was given: none there.
            None if self.bit || range.end.is_some() => -1,
            // Without an end, the string reads as padded with zeros on the right.
            None => last as i64 + 1,
        })
    }
}

/// The first bit equal to `bit` from `first` to `last`, both included.
fn find_bit(bytes: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xff };
    let mut pos = first;
    while pos <= last {
        // Whole bytes that cannot hold the bit are skipped at once.
        if pos & 7 == 0 && pos + 7 <= last && bytes[(pos >> 3) as usize] == skip {
            pos += 8;
            continue;
        }
        if get_bit(bytes, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BitOpKind {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: stores the result, whose length is the
/// longest source's (shorter sources read as zero-padded); an empty result deletes destkey.
pub struct BitOp {
    kind: BitOpKind,
    dest: Bytes,
    sources: Vec<Bytes>,
}

impl Parse for BitOp {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let kind = match args[1].to_ascii_uppercase().as_slice() {
            b"AND" => BitOpKind::And,
            b"OR" => BitOpKind::Or,
            b"XOR" => BitOpKind::Xor,
            b"NOT" => BitOpKind::Not,
            _ => return Err(Reply::error(error::SYNTAX)),
        };
        if kind == BitOpKind::Not && args.len() != 4 {
            return Err(Reply::error(error::BITOP_NOT_ONE_KEY));
        }
        Ok(Self {
            kind,
            dest: args[2].clone(),
            sources: args[3..].to_vec(),
        })
    }
}

impl WriteOp for BitOp {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut sources = Vec::with_capacity(self.sources.len());
        for key in &self.sources {
            match string_entry(txn, key) {
                Ok(e) => sources.push(e.map(|e| e.payload).unwrap_or_default()),
                Err(e) => return e,
            }
        }
        let len = sources.iter().map(Bytes::len).max().unwrap_or(0);
        if len == 0 {
            txn.delete(&self.dest);
            return Reply::Int(0);
        }
        let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
        let mut out = BytesMut::zeroed(len);
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = byte(&sources[0], i);
            for s in &sources[1..] {
                match self.kind {
                    BitOpKind::And => acc &= byte(s, i),
                    BitOpKind::Or => acc |= byte(s, i),
                    BitOpKind::Xor => acc ^= byte(s, i),
                    BitOpKind::Not => {}
                }
            }
            *o = if self.kind == BitOpKind::Not {
                !acc
            } else {
                acc
            };
        }
        store_string(txn, &self.dest, out.freeze(), None);
        Reply::Int(len as i64)
    }
}

/// What BITFIELD does when SET or INCRBY does not fit the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// An integer field: signed or not, 1 to 64 bits (unsigned at most 63, as in Redis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldType {
    signed: bool,
    bits: u32,
}

impl FieldType {
    fn parse(arg: &[u8]) -> Result<Self, Reply> {
        let invalid = || Reply::error(error::BITFIELD_TYPE);
        let signed = match arg.first() {
            Some(b'i') => true,
            Some(b'u') => false,
            _ => return Err(invalid()),
        };
        let bits = parse_i64(&arg[1..]).ok_or_else(invalid)?;
        let max = if signed { 64 } else { 63 };
        if !(1..=max).contains(&bits) {
            return Err(invalid());
        }
        Ok(Self {
            signed,
            bits: bits as u32,
        })
    }

    /// The field at bit `offset`, read as this type (zero bits past the end).
    fn get(self, bytes: &[u8], offset: u64) -> i64 {
        let mut v: u64 = 0;
        for i in 0..u64::from(self.bits) {
            v = (v << 1) | u64::from(get_bit(bytes, offset + i));
        }
        if self.signed && self.bits < 64 && v & (1 << (self.bits - 1)) != 0 {
            v |= u64::MAX << self.bits;
        }
        v as i64
    }

    /// Writes the low `bits` of `value` at bit `offset`; `bytes` must hold them.
    fn set(self, bytes: &mut [u8], offset: u64, value: i64) {
        let value = value as u64;
        for i in 0..u64::from(self.bits) {
            let on = value & (1 << (u64::from(self.bits) - 1 - i)) != 0;
            set_bit(bytes, offset + i, on);
        }
    }

    /// `value + incr` as the field stores it under `overflow`; `None` when it does not fit
    /// and the mode is FAIL. Mirrors Redis's `check(Un)signedBitfieldOverflow`.
    fn add(self, value: i64, incr: i64, overflow: Overflow) -> Option<i64> {
        let bits = self.bits;
        let wrapped = || {
            let sum = (value as u64).wrapping_add(incr as u64);
            if bits == 64 {
                return sum as i64;
            }
            let mask = u64::MAX << bits;
            if !self.signed {
                (sum & !mask) as i64
            } else if sum & (1 << (bits - 1)) != 0 {
                (sum | mask) as i64
            } else {
                (sum & !mask) as i64
            }
        };
        let (too_big, too_small, max, min) = if self.signed {
            let max = if bits == 64 {
                i64::MAX
            } else {
                (1i64 << (bits - 1)) - 1
            };
            let min = -max - 1;
            let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
            let min_incr = min.wrapping_sub(value);
            let big = value > max
                || (bits != 64 && incr > max_incr)
                || (value >= 0 && incr > 0 && incr > max_incr);
            let small = value < min
                || (bits != 64 && incr < min_incr)
                || (value < 0 && incr < 0 && incr < min_incr);
            (big, small, max, min)
        } else {
            let max = (1u64 << bits) - 1;
            let v = value as u64;
            let max_incr = max.wrapping_sub(v) as i64;
            let min_incr = (v as i64).wrapping_neg();
            let big = v > max || (incr > 0 && incr > max_incr);
            let small = !big && incr < 0 && incr < min_incr;
            (big, small, max as i64, 0)
        };
        match (too_big || too_small, overflow) {
            (false, _) => Some(value.wrapping_add(incr)),
            (true, Overflow::Wrap) => Some(wrapped()),
            (true, Overflow::Sat) => Some(if too_big { max } else { min }),
            (true, Overflow::Fail) => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One GET/SET/INCRBY of a BITFIELD, with the OVERFLOW mode in force where it stands.
#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    kind: FieldType,
    offset: u64,
    overflow: Overflow,
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset incr]
/// [OVERFLOW WRAP|SAT|FAIL] ...` and `BITFIELD_RO key [GET type offset] ...`.
pub struct BitField {
    key: Bytes,
    fields: Vec<Field>,
}

impl BitField {
    fn parse_ops(args: &[Bytes], read_only: bool) -> Result<Self, Reply> {
        let mut fields = Vec::new();
        let mut overflow = Overflow::Wrap;
        let mut i = 2;
        while i < args.len() {
            let rest = args.len() - i - 1;
            let name = args[i].to_ascii_uppercase();
            let op = match name.as_slice() {
                b"GET" if rest >= 2 => FieldOp::Get,
                b"SET" if rest >= 3 => FieldOp::Set(0),
                b"INCRBY" if rest >= 3 => FieldOp::IncrBy(0),
                b"OVERFLOW" if rest >= 1 => {
                    overflow = match args[i + 1].to_ascii_uppercase().as_slice() {
                        b"WRAP" => Overflow::Wrap,
                        b"SAT" => Overflow::Sat,
                        b"FAIL" => Overflow::Fail,
                        _ => return Err(Reply::error(error::BITFIELD_OVERFLOW)),
                    };
                    i += 2;
                    continue;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            };
            let kind = FieldType::parse(&args[i + 1])?;
            let offset = bit_offset(&args[i + 2], Some(kind.bits))?;
            let op = match op {
                FieldOp::Get => FieldOp::Get,
                FieldOp::Set(_) => FieldOp::Set(int_arg(&args[i + 3])?),
                FieldOp::IncrBy(_) => FieldOp::IncrBy(int_arg(&args[i + 3])?),
            };
            i += if matches!(op, FieldOp::Get) { 3 } else { 4 };
            fields.push(Field {
                op,
                kind,
                offset,
                overflow,
            });
        }
        if read_only && fields.iter().any(|f| !matches!(f.op, FieldOp::Get)) {
            return Err(Reply::error(error::BITFIELD_RO_GET_ONLY));
        }
        Ok(Self {
            key: args[1].clone(),
            fields,
        })
    }

    /// Runs the operations in order on `bytes` (already grown to hold every write); the
    /// replies, and whether any field changed.
    fn run(&self, bytes: &mut [u8]) -> (Vec<Reply>, bool) {
        let mut changed = false;
        let replies = self
            .fields
            .iter()
            .map(|f| {
                let old = f.kind.get(bytes, f.offset);
                let (new, reply) = match f.op {
                    FieldOp::Get => return Reply::Int(old),
                    // SET stores the value as the field holds it, answering the old one.
                    FieldOp::Set(v) => match f.kind.add(v, 0, f.overflow) {
                        Some(new) => (new, old),
                        None => return Reply::Nil,
                    },
                    FieldOp::IncrBy(by) => match f.kind.add(old, by, f.overflow) {
                        Some(new) => (new, new),
                        None => return Reply::Nil,
                    },
                };
                changed |= new != old;
                f.kind.set(bytes, f.offset, new);
                Reply::Int(reply)
            })
            .collect();
        (replies, changed)
    }

    /// The last bit a SET or INCRBY writes, if any does.
    fn highest_write(&self) -> Option<u64> {
        self.fields
            .iter()
            .filter(|f| !matches!(f.op, FieldOp::Get))
            .map(|f| f.offset + u64::from(f.kind.bits) - 1)
            .max()
    }
}

impl Parse for BitField {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Self::parse_ops(args, args[0].eq_ignore_ascii_case(b"bitfield_ro"))
    }
}

impl WriteOp for BitField {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let Some(max_bit) = self.highest_write() else {
            // Only GETs: read without growing or rewriting the value.
            return match string_entry(txn, &self.key) {
                Ok(e) => {
                    let mut bytes = e.map(|e| e.payload.to_vec()).unwrap_or_default();
                    Reply::Array(self.run(&mut bytes).0)
                }
                Err(e) => e,
            };
        };
        let mut bitmap = match Bitmap::load(txn, &self.key, max_bit) {
            Ok(b) => b,
            Err(e) => return e,
        };
        let (replies, changed) = self.run(&mut bitmap.value);
        bitmap.store(txn, &self.key, changed);
        Reply::Array(replies)
    }
}

impl Read for BitField {
    fn execute(self, store: &Store) -> Reply {
        match string_value(store, &self.key) {
            Ok(v) => Reply::Array(self.run(&mut v.unwrap_or_default().to_vec()).0),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn bit_offsets_are_checked_like_redis() {
        assert_eq!(bit_offset(b"0", None).unwrap(), 0);
        assert_eq!(bit_offset(b"4294967295", None).unwrap(), 4294967295);
        assert!(bit_offset(b"4294967296", None).is_err());
        assert!(bit_offset(b"-1", None).is_err());
        assert!(bit_offset(b"#2", None).is_err());
        assert_eq!(bit_offset(b"#2", Some(8)).unwrap(), 16);
    }

    #[test]
    fn counts_and_positions_honour_bit_and_byte_ranges() {
        // "foobar", the example of Redis's documentation.
        let s = b"foobar";
        let count = |start, end, in_bits| {
            let r = Range {
                start,
                end: Some(end),
                in_bits,
            };
            r.bits_within(s.len())
                .map_or(0, |(a, b)| count_bits(s, a, b))
        };
        assert_eq!(count(0, -1, false), 26);
        assert_eq!(count(1, 1, false), 6);
        assert_eq!(count(5, 30, true), 17);
        assert_eq!(count(-2, -1, false), 7);
        // "\xff\xf0\x00": the first 0 is bit 12, the first 1 after byte 2 is none.
        let v = [0xffu8, 0xf0, 0x00];
        assert_eq!(find_bit(&v, false, 0, 23), Some(12));
        assert_eq!(find_bit(&v, true, 16, 23), None);
        assert_eq!(find_bit(&v, true, 3, 5), Some(3));
    }

    #[test]
    fn bitfield_overflow_follows_wrap_sat_and_fail() {
        let u8t = FieldType::parse(b"u8").unwrap();
        assert_eq!(u8t.add(250, 10, Overflow::Wrap), Some(4));
        assert_eq!(u8t.add(250, 10, Overflow::Sat), Some(255));
        assert_eq!(u8t.add(250, 10, Overflow::Fail), None);
        assert_eq!(u8t.add(5, -10, Overflow::Sat), Some(0));
        let i8t = FieldType::parse(b"i8").unwrap();
        assert_eq!(i8t.add(120, 10, Overflow::Wrap), Some(-126));
        assert_eq!(i8t.add(-120, -10, Overflow::Sat), Some(-128));
        assert_eq!(i8t.add(100, 0, Overflow::Fail), Some(100));
        let i64t = FieldType::parse(b"i64").unwrap();
        assert_eq!(i64t.add(i64::MAX, 1, Overflow::Wrap), Some(i64::MIN));
        assert_eq!(i64t.add(i64::MAX, 1, Overflow::Sat), Some(i64::MAX));
        assert!(FieldType::parse(b"u64").is_err());
        assert!(FieldType::parse(b"i0").is_err());
        assert!(FieldType::parse(b"x8").is_err());
    }

    #[test]
    fn bitfield_fields_read_and_write_big_endian_bits() {
        // A 5-bit 23 at offset 7: |00000001|01110000| (Redis's own example).
        let mut bytes = [0u8; 2];
        let u5 = FieldType::parse(b"u5").unwrap();
        u5.set(&mut bytes, 7, 23);
        assert_eq!(bytes, [0b0000_0001, 0b0111_0000]);
        assert_eq!(u5.get(&bytes, 7), 23);
        let i5 = FieldType::parse(b"i5").unwrap();
        assert_eq!(i5.get(&bytes, 7), 23 - 32);
        let f = BitField::parse_ops(
            &args(&[
                "bitfield", "k", "incrby", "u2", "100", "1", "overflow", "fail", "incrby", "u2",
                "102", "5",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(f.highest_write(), Some(103));
        let mut v = vec![0u8; 13];
        let (replies, changed) = f.run(&mut v);
        assert!(changed);
        assert!(matches!(replies[..], [Reply::Int(1), Reply::Nil]));
        assert!(
            BitField::parse_ops(&args(&["bitfield_ro", "k", "set", "u8", "0", "1"]), true).is_err()
        );
    }
}
