//! HyperLogLog in Redis's own string format, so that a value written by PFADD is
//! byte-for-byte what Redis 7.0 writes (GET, DUMP and a copy to or from Redis keep working).
//!
//! The value is a 16-byte header (`HYLL`, an encoding byte, three unused bytes, and the cached
//! cardinality: 8 bytes little-endian whose top bit set means "stale"), then 16384 registers of
//! 6 bits each:
//! - **dense**: the registers packed little-endian, 12288 bytes;
//! - **sparse**: run-length opcodes, `00xxxxxx` (1-64 zero registers), `01xxxxxx yyyyyyyy`
//!   (1-16384 zero registers) and `1vvvvvxx` (1-4 registers of value 1-32).
//!
//! A sparse value turns dense when a register needs a value above 32 or the value would grow
//! past `hll-sparse-max-bytes`. The steps that edit a sparse value (split one opcode, then
//! merge equal neighbours within five opcodes) follow Redis's, because they decide the bytes.
//! The estimate is Ertl's ("New cardinality estimation algorithms for HyperLogLog sketches",
//! arXiv:1702.01284), as in Redis.
//!
//! Everything here checks what it reads: a value may be any string a client SET or SETRANGEd,
//! so a malformed one is an error ([`HllError`]), never a panic or an out-of-bounds read.

pub const HEADER: usize = 16;
pub const REGISTERS: usize = 1 << P;
pub const DENSE_SIZE: usize = HEADER + REGISTERS * BITS / 8;
/// Index bits taken from the hash; the other [`Q`] bits give the run of zeros.
const P: u32 = 14;
const Q: u32 = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SPARSE_VAL_MAX: u8 = 32;
const SPARSE_VAL_MAX_RUN: usize = 4;
const SPARSE_ZERO_MAX_RUN: usize = 64;
const SPARSE_XZERO_MAX_RUN: usize = 16384;
const STALE_BIT: u8 = 0x80;
/// Redis's MurmurHash64A seed for HyperLogLog elements.
const SEED: u64 = 0xadc8_3b19;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// `hll-sparse-max-bytes`: the size past which a sparse value turns dense.
pub fn sparse_max_bytes() -> usize {
    crate::tunables::get("hll-sparse-max-bytes") as usize
}

/// Why a value cannot be used as a HyperLogLog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HllError {
    /// Not HyperLogLog-shaped at all (magic, encoding byte, dense length).
    NotHll,
    /// Shaped like one, but its registers do not add up (a corrupt sparse run).
    Corrupt,
}

impl HllError {
    /// Redis's error text.
    pub fn text(self) -> &'static str {
        match self {
            HllError::NotHll => crate::error::NOT_HLL,
            HllError::Corrupt => crate::error::INVALID_HLL,
        }
    }
}

/// A HyperLogLog value being read or changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hll {
    bytes: Vec<u8>,
}

impl Default for Hll {
    fn default() -> Self {
        Self::new()
    }
}

impl Hll {
    /// An empty HyperLogLog as PFADD creates it: sparse, every register zero, cached count 0.
    pub fn new() -> Hll {
        let mut bytes = header(SPARSE);
        let mut left = REGISTERS;
        while left > 0 {
            let run = left.min(SPARSE_XZERO_MAX_RUN);
            bytes.extend_from_slice(&xzero(run));
            left -= run;
        }
        Hll { bytes }
    }

    /// Redis's `isHLLObjectOrReply`: the header and, when dense, the length. Sparse runs are
    /// checked when they are read.
    pub fn from_value(value: &[u8]) -> Result<Hll, HllError> {
        check_header(value)?;
        Ok(Hll {
            bytes: value.to_vec(),
        })
    }

    /// The cached cardinality of a stored value (checked as [`Hll::from_value`] checks it)
    /// unless it is stale, without copying the value.
    pub fn cached_in(value: &[u8]) -> Result<Option<u64>, HllError> {
        check_header(value)?;
        Ok(cached_count(value))
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn is_sparse(&self) -> bool {
        self.bytes[4] == SPARSE
    }

    /// The cached cardinality, unless a change made it stale.
    pub fn cached(&self) -> Option<u64> {
        cached_count(&self.bytes)
    }

    pub fn set_cached(&mut self, card: u64) {
        self.bytes[8..16].copy_from_slice(&card.to_le_bytes());
    }

    /// Marks the cached cardinality stale.
    pub fn invalidate(&mut self) {
        self.bytes[15] |= STALE_BIT;
    }

    /// Adds an element; true when a register grew (and so the cached count went stale).
    pub fn add(&mut self, element: &[u8], sparse_max: usize) -> Result<bool, HllError> {
        let (index, count) = pattern(element);
        self.raise(index, count, sparse_max)
    }

    /// Sets register `index` to `count` if that is higher; true when it changed.
    pub fn raise(&mut self, index: usize, count: u8, sparse_max: usize) -> Result<bool, HllError> {
        let changed = match self.bytes[4] {
            DENSE => dense_raise(&mut self.bytes[HEADER..], index, count),
            _ => self.sparse_raise(index, count, sparse_max)?,
        };
        if changed {
            self.invalidate();
        }
        Ok(changed)
    }

    /// Turns a sparse value dense (keeping the header's cached count); false if it was dense.
    pub fn to_dense(&mut self) -> Result<bool, HllError> {
        if !self.is_sparse() {
            return Ok(false);
        }
        let mut dense = self.bytes[..HEADER].to_vec();
        dense[4] = DENSE;
        dense.resize(DENSE_SIZE, 0);
        let mut index = 0;
        sparse_runs(&self.bytes[HEADER..], |value, run| {
            if value > 0 {
                for i in index..index + run {
                    dense_set(&mut dense[HEADER..], i, value);
                }
            }
            index += run;
        })?;
        self.bytes = dense;
        Ok(true)
    }

    /// Raises each of `max`'s registers to this value's where that is higher.
    pub fn merge_into(&self, max: &mut [u8; REGISTERS]) -> Result<(), HllError> {
        if !self.is_sparse() {
            for (i, m) in max.iter_mut().enumerate() {
                *m = (*m).max(dense_get(&self.bytes[HEADER..], i));
            }
            return Ok(());
        }
        let mut index = 0;
        sparse_runs(&self.bytes[HEADER..], |value, run| {
            for m in &mut max[index..index + run] {
                *m = (*m).max(value);
            }
            index += run;
        })
    }

    /// The estimated cardinality, from the registers (not the cache).
    pub fn count(&self) -> Result<u64, HllError> {
        let mut histogram = [0u32; 64];
        if self.is_sparse() {
            sparse_runs(&self.bytes[HEADER..], |value, run| {
                histogram[value as usize] += run as u32;
            })?;
        } else {
            for i in 0..REGISTERS {
                histogram[dense_get(&self.bytes[HEADER..], i) as usize] += 1;
            }
        }
        Ok(estimate(&histogram))
    }

    /// Every register's value (PFDEBUG GETREG, after [`Hll::to_dense`]).
    pub fn registers(&self) -> Result<Vec<u8>, HllError> {
        let mut max = [0u8; REGISTERS];
        self.merge_into(&mut max)?;
        Ok(max.to_vec())
    }

    /// A sparse value's opcodes as PFDEBUG DECODE prints them (`z:3 Z:100 v:2,1`); `None`
    /// when dense.
    pub fn decode(&self) -> Option<String> {
        if !self.is_sparse() {
            return None;
        }
        let mut out = Vec::new();
        let mut ops = Opcodes::new(&self.bytes[HEADER..]);
        while let Some((op, _)) = ops.next() {
            out.push(match op {
                Op::Zero(run) => format!("z:{run}"),
                Op::XZero(run) => format!("Z:{run}"),
                Op::Val(value, run) => format!("v:{value},{run}"),
            });
        }
        Some(out.join(" "))
    }

    /// Redis's `hllSparseSet`: finds the opcode covering `index`, splits it around the
    /// register, then merges equal VAL neighbours; goes dense when the value cannot stay
    /// sparse.
    fn sparse_raise(
        &mut self,
        index: usize,
        count: u8,
        sparse_max: usize,
    ) -> Result<bool, HllError> {
        if count > SPARSE_VAL_MAX {
            return self.promote(index, count);
        }
        let sparse = &self.bytes[HEADER..];
        // The opcode covering `index`, where it starts, the first register it covers, and
        // where the opcode before it starts.
        let mut ops = Opcodes::new(sparse);
        let (mut first, mut prev) = (0usize, None);
        let (op, at) = loop {
            let Some((op, at)) = ops.next() else {
                return Err(HllError::Corrupt);
            };
            if index < first + op.run() {
                break (op, at);
            }
            first += op.run();
            prev = Some(at);
        };
        let last = first + op.run() - 1;
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Val(value, _) if value >= count => return Ok(false),
            Op::Val(_, 1) | Op::Zero(1) => seq.push(val(count, 1)),
            Op::Val(value, _) => {
                if index != first {
                    seq.push(val(value, index - first));
                }
                seq.push(val(count, 1));
                if index != last {
                    seq.push(val(value, last - index));
                }
            }
            Op::Zero(_) | Op::XZero(_) => {
                if index != first {
                    seq.extend_from_slice(&zeros(index - first));
                }
                seq.push(val(count, 1));
                if index != last {
                    seq.extend_from_slice(&zeros(last - index));
                }
            }
        }
        let old_len = op.len();
        if seq.len() > old_len && self.bytes.len() + seq.len() - old_len > sparse_max {
            return self.promote(index, count);
        }
        let at = HEADER + at;
        self.bytes.splice(at..at + old_len, seq);
        self.merge_neighbours(prev.map_or(HEADER, |p| HEADER + p));
        Ok(true)
    }

    /// Merges adjacent VAL opcodes of equal value, scanning at most five opcodes from `from`
    /// (Redis's step 4, which decides the bytes).
    fn merge_neighbours(&mut self, from: usize) {
        let mut p = from;
        let mut scan = 5;
        while p < self.bytes.len() && scan > 0 {
            scan -= 1;
            let b = self.bytes[p];
            if b & 0xc0 == 0x40 {
                p += 2;
                continue;
            }
            if b & 0x80 == 0 {
                p += 1;
                continue;
            }
            if let Some(&next) = self.bytes.get(p + 1) {
                let (v1, r1) = val_parts(b);
                let (v2, r2) = val_parts(next);
                if next & 0x80 != 0 && v1 == v2 && r1 + r2 <= SPARSE_VAL_MAX_RUN {
                    self.bytes[p + 1] = val(v1, r1 + r2);
                    self.bytes.remove(p);
                    // Try again from here: the merged opcode may merge with the next one.
                    continue;
                }
            }
            p += 1;
        }
    }

    fn promote(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        self.to_dense()?;
        Ok(dense_raise(&mut self.bytes[HEADER..], index, count))
    }

    /// PFMERGE's write: raises each register to `registers`' value, in register order, on
    /// this value (the destination as it was), made dense first when a source was dense.
    /// The cached count goes stale even if nothing changed, as in Redis.
    pub fn merge_from(
        &mut self,
        registers: &[u8; REGISTERS],
        dense: bool,
        sparse_max: usize,
    ) -> Result<(), HllError> {
        if dense {
            self.to_dense()?;
        }
        for (i, &r) in registers.iter().enumerate() {
            if r > 0 {
                self.raise(i, r, sparse_max)?;
            }
        }
        self.invalidate();
        Ok(())
    }
}

/// PFCOUNT of several keys: the union of their values, added in key order (so that the first
/// bad key is the one reported, as in Redis).
pub struct Union {
    max: Box<[u8; REGISTERS]>,
}

impl Default for Union {
    fn default() -> Self {
        Union {
            max: Box::new([0; REGISTERS]),
        }
    }
}

impl Union {
    pub fn add(&mut self, value: &[u8]) -> Result<(), HllError> {
        Hll::from_value(value)?.merge_into(&mut self.max)
    }

    /// The estimated cardinality of the union.
    pub fn count(&self) -> u64 {
        count_registers(&self.max)
    }
}

/// The estimated cardinality of plain registers.
fn count_registers(registers: &[u8; REGISTERS]) -> u64 {
    let mut histogram = [0u32; 64];
    for &r in registers {
        histogram[(r & 63) as usize] += 1;
    }
    estimate(&histogram)
}

/// Whether `value` can be a HyperLogLog: its magic, encoding byte and (dense) length.
fn check_header(value: &[u8]) -> Result<(), HllError> {
    if value.len() < HEADER || &value[..4] != b"HYLL" || value[4] > SPARSE {
        return Err(HllError::NotHll);
    }
    if value[4] == DENSE && value.len() != DENSE_SIZE {
        return Err(HllError::NotHll);
    }
    Ok(())
}

/// The cached cardinality in a checked header, unless it is stale.
fn cached_count(value: &[u8]) -> Option<u64> {
    let card: [u8; 8] = value[8..16].try_into().expect("header is 16 bytes");
    (card[7] & STALE_BIT == 0).then(|| u64::from_le_bytes(card))
}

fn header(encoding: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER + 2);
    h.extend_from_slice(b"HYLL");
    h.extend_from_slice(&[encoding, 0, 0, 0]);
    h.extend_from_slice(&[0; 8]);
    h
}

/// The register an element falls in, and the count it gives it (the length of the run of
/// zero bits after the index bits, plus one).
fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit caps the count at Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// MurmurHash64A (Austin Appleby), which Redis uses for HyperLogLog; blocks are read
/// little-endian, as Redis does on the machines it runs on.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

fn dense_get(registers: &[u8], i: usize) -> u8 {
    let bit = i * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    // The last register ends inside the last byte, so the byte after it may be missing.
    let next = registers.get(byte + 1).copied().unwrap_or(0);
    let pair = u16::from(registers[byte]) | u16::from(next) << 8;
    (pair >> shift) as u8 & REGISTER_MAX
}

fn dense_set(registers: &mut [u8], i: usize, value: u8) {
    let bit = i * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    registers[byte] &= !(REGISTER_MAX << shift);
    registers[byte] |= value << shift;
    if shift > 8 - BITS {
        let spill = 8 - shift;
        registers[byte + 1] &= !(REGISTER_MAX >> spill);
        registers[byte + 1] |= value >> spill;
    }
}

fn dense_raise(registers: &mut [u8], i: usize, count: u8) -> bool {
    if dense_get(registers, i) >= count {
        return false;
    }
    dense_set(registers, i, count);
    true
}

/// One sparse opcode: a run of zeros (short or long form) or a run of one value.
#[derive(Clone, Copy, Debug)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    fn run(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    /// Its length in bytes.
    fn len(self) -> usize {
        match self {
            Op::XZero(_) => 2,
            _ => 1,
        }
    }
}

/// The opcodes of a sparse body, each with its offset; a truncated XZERO ends the walk.
struct Opcodes<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Opcodes<'a> {
    fn new(body: &'a [u8]) -> Self {
        Opcodes { body, at: 0 }
    }

    fn next(&mut self) -> Option<(Op, usize)> {
        let at = self.at;
        let b = *self.body.get(at)?;
        let op = match b >> 6 {
            0 => Op::Zero((b & 0x3f) as usize + 1),
            1 => {
                let low = *self.body.get(at + 1)?;
                Op::XZero(((((b & 0x3f) as usize) << 8) | low as usize) + 1)
            }
            _ => {
                let (value, run) = val_parts(b);
                Op::Val(value, run)
            }
        };
        self.at += op.len();
        Some((op, at))
    }

    /// Whether the walk stopped before the end (a truncated opcode).
    fn truncated(&self) -> bool {
        self.at < self.body.len()
    }
}

/// Walks a sparse body's runs as `(value, run length)`, checking that they cover exactly the
/// registers: no run past the last one (however long a corrupt body is) and none missing.
fn sparse_runs(body: &[u8], mut run: impl FnMut(u8, usize)) -> Result<(), HllError> {
    let mut covered = 0usize;
    let mut ops = Opcodes::new(body);
    while let Some((op, _)) = ops.next() {
        if covered + op.run() > REGISTERS {
            return Err(HllError::Corrupt);
        }
        run(
            match op {
                Op::Val(value, _) => value,
                _ => 0,
            },
            op.run(),
        );
        covered += op.run();
    }
    if ops.truncated() || covered != REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(())
}

fn val_parts(b: u8) -> (u8, usize) {
    (((b >> 2) & 0x1f) + 1, (b & 0x3) as usize + 1)
}

fn val(value: u8, run: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (run - 1) as u8
}

fn xzero(run: usize) -> [u8; 2] {
    let n = run - 1;
    [0x40 | (n >> 8) as u8, (n & 0xff) as u8]
}

/// A run of zeros in its shortest form.
fn zeros(run: usize) -> Vec<u8> {
    if run > SPARSE_ZERO_MAX_RUN {
        xzero(run).to_vec()
    } else {
        vec![(run - 1) as u8]
    }
}

/// Ertl's estimator over the histogram of register values.
fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// Redis's PFSELFTEST, on this code: register packing, and the estimate's error and the
/// agreement of sparse and dense values at each power of ten up to a million elements (Redis
/// goes to ten million, which blocks its server for seconds).
pub fn self_test(seed: u64, sparse_max: usize) -> Result<(), String> {
    let mut registers = vec![0u8; DENSE_SIZE - HEADER];
    let mut expected = vec![0u8; REGISTERS];
    let mut state = seed | 1;
    let mut next = || {
        // xorshift64: any spread of values will do.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..1000 {
        for (i, e) in expected.iter_mut().enumerate() {
            *e = (next() as u8) & REGISTER_MAX;
            dense_set(&mut registers, i, *e);
        }
        for (i, &e) in expected.iter().enumerate() {
            let got = dense_get(&registers, i);
            if got != e {
                return Err(format!(
                    "TESTFAILED Register {i} should be {e} but is {got}"
                ));
            }
        }
    }
    let mut dense = Hll::new();
    dense.to_dense().expect("a new value is valid");
    let mut sparse = Hll::new();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let offset = next();
    let mut checkpoint = 1u64;
    for j in 1..=1_000_000u64 {
        let element = (j ^ offset).to_le_bytes();
        let fail = |e: HllError| format!("TESTFAILED {}", e.text());
        dense.add(&element, sparse_max).map_err(fail)?;
        sparse.add(&element, sparse_max).map_err(fail)?;
        if j != checkpoint {
            continue;
        }
        if j < sparse_max as u64 / 2 && !sparse.is_sparse() {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = dense.count().map_err(fail)?;
        if card != sparse.count().map_err(fail)? {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let error = checkpoint.abs_diff(card);
        let max = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if error > max {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{error}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_value_is_redis_s_empty_sparse_hll() {
        let v = Hll::new().into_bytes();
        assert_eq!(v.len(), 18);
        assert_eq!(&v[..5], b"HYLL\x01");
        assert_eq!(&v[16..], &[0x7f, 0xff]);
        assert_eq!(Hll::from_value(&v).unwrap().count(), Ok(0));
    }

    /// What Redis 7.0.15 answers to `PFADD h a b c`, `GET h`, `PFDEBUG DECODE h`.
    #[test]
    fn pfadd_writes_redis_s_bytes() {
        let mut h = Hll::new();
        for e in [&b"a"[..], b"b", b"c"] {
            assert!(h.add(e, 3000).unwrap());
        }
        let redis: &[u8] = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\
            `\xf3\x80P\xb1\x84K\xfb\x80BZ";
        assert_eq!(h.clone().into_bytes(), redis);
        assert_eq!(
            h.decode().unwrap(),
            "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
        );
        assert_eq!(h.count(), Ok(3));
    }

    #[test]
    fn dense_and_sparse_agree_and_raise_only_upwards() {
        let mut sparse = Hll::new();
        let mut dense = Hll::new();
        dense.to_dense().unwrap();
        for i in 0..2000u32 {
            let e = i.to_string();
            assert_eq!(
                sparse.add(e.as_bytes(), 3000).unwrap(),
                dense.add(e.as_bytes(), 3000).unwrap()
            );
            assert_eq!(sparse.count(), dense.count());
        }
        assert_eq!(sparse.registers(), dense.registers());
        let card = dense.count().unwrap();
        assert!(card.abs_diff(2000) < 2000 * 3 / 100, "{card}");
        assert!(!dense.add(b"0", 3000).unwrap());
    }

    #[test]
    fn a_sparse_value_goes_dense_past_its_size_limit_or_a_count_above_32() {
        let mut h = Hll::new();
        let mut i = 0u32;
        while h.is_sparse() {
            h.add(i.to_string().as_bytes(), 300).unwrap();
            i += 1;
        }
        assert_eq!(h.clone().into_bytes().len(), DENSE_SIZE);
        let mut h = Hll::new();
        h.raise(5, 40, 3000).unwrap();
        assert!(!h.is_sparse());
        assert_eq!(h.registers().unwrap()[5], 40);
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        assert_eq!(Hll::from_value(b"HYLL"), Err(HllError::NotHll));
        assert_eq!(
            Hll::from_value(b"HYLx\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"),
            Err(HllError::NotHll)
        );
        assert_eq!(
            Hll::from_value(b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"),
            Err(HllError::NotHll)
        );
        let mut tail = Hll::new().into_bytes();
        tail.extend_from_slice(b"hello");
        let h = Hll::from_value(&tail).unwrap();
        assert_eq!(h.count(), Err(HllError::Corrupt));
        let mut half = Hll::new().into_bytes();
        half.pop();
        assert_eq!(
            Hll::from_value(&half).unwrap().count(),
            Err(HllError::Corrupt)
        );
        // Runs that add up past 2^32 registers, then a VAL.
        let mut long = Hll::new().into_bytes()[..HEADER].to_vec();
        for _ in 0..140_000 {
            long.extend_from_slice(&[0x7f, 0xff]);
        }
        long.push(0xff);
        let h = Hll::from_value(&long).unwrap();
        assert_eq!(h.count(), Err(HllError::Corrupt));
        assert_eq!(h.merge_into(&mut [0; REGISTERS]), Err(HllError::Corrupt));
        let mut fuzz = 1u64;
        for _ in 0..2000 {
            let mut v = Hll::new();
            v.add(&fuzz.to_le_bytes(), 3000).unwrap();
            let mut bytes = v.into_bytes();
            fuzz = fuzz.wrapping_mul(6364136223846793005).wrapping_add(1);
            let at = HEADER + (fuzz as usize >> 8) % (bytes.len() - HEADER);
            bytes[at] = (fuzz >> 40) as u8;
            if let Ok(mut h) = Hll::from_value(&bytes) {
                let _ = h.count();
                let _ = h.add(b"x", 3000);
                let _ = h.to_dense();
            }
        }
    }

    #[test]
    fn the_self_test_passes() {
        self_test(42, 3000).unwrap();
    }
}
