//! The type layer: what Redis's types mean on top of the store's entries and members.
//!
//! Commands parse their arguments and call in here; this layer reads through
//! [`Members`] (a read command's [`crate::store::members::View`] or a write's [`Txn`]) and
//! writes through the [`Txn`] of the commit path. It keeps a collection's entry exact: its
//! size counts its members, and a collection left empty is deleted, as in Redis.

pub mod hash;
pub mod list;
pub mod set;
pub mod zset;

use crate::store::encoding::{
    member_key, member_range_end, CollectionMeta, Entry, MemberKind, ValueType, MAX_MEMBER_LEN,
};
use crate::store::members::Members;
use crate::store::writer::Txn;
use bytes::Bytes;
use fjord_common::{error, slot_of, Reply};

/// A collection as a command found it (or is about to create it).
#[derive(Clone, Debug)]
pub struct Collection {
    pub key: Bytes,
    pub kind: ValueType,
    /// The slot of its key, where its members live.
    pub slot: u16,
    pub meta: CollectionMeta,
    pub expire_at: Option<u64>,
}

impl Collection {
    /// The collection stored under `key`, if it is one of `kind`; WRONGTYPE for another type.
    pub fn find(
        m: &mut impl Members,
        key: &[u8],
        kind: ValueType,
    ) -> Result<Option<Collection>, Reply> {
        let Some(entry) = m.entry(key)? else {
            return Ok(None);
        };
        if entry.kind != kind {
            return Err(Reply::error(error::WRONGTYPE));
        }
        let meta = CollectionMeta::decode(entry.kind, &entry.payload)
            .ok_or_else(|| Reply::error("ERR corrupt collection entry"))?;
        Ok(Some(Collection {
            key: Bytes::copy_from_slice(key),
            kind,
            slot: slot_of(key),
            meta,
            expire_at: entry.expire_at,
        }))
    }

    /// The collection under `key` for a write, or a new empty one with a fresh version.
    pub fn find_or_create(
        txn: &mut Txn<'_>,
        key: &[u8],
        kind: ValueType,
    ) -> Result<Collection, Reply> {
        if let Some(c) = Self::find(txn, key, kind)? {
            return Ok(c);
        }
        let version = txn.new_version();
        Ok(Collection::new(kind, key, version))
    }

    /// An empty collection of `kind` for `key`, under a fresh `version`.
    pub fn new(kind: ValueType, key: &[u8], version: u64) -> Collection {
        Collection {
            key: Bytes::copy_from_slice(key),
            kind,
            slot: slot_of(key),
            meta: CollectionMeta {
                version,
                size: 0,
                ends: None,
                bounds: Default::default(),
                positions: kind == ValueType::Set,
            },
            expire_at: None,
        }
    }

    /// The key of the member `name` of `kind`.
    pub fn member_key(&self, kind: MemberKind, name: &[u8]) -> Vec<u8> {
        member_key(self.slot, self.meta.version, kind, name)
    }

    /// The bounds of every member of `kind`, for range scans.
    pub fn member_range(&self, kind: MemberKind) -> (Vec<u8>, Vec<u8>) {
        (
            self.member_key(kind, b""),
            member_range_end(self.slot, self.meta.version, kind),
        )
    }

    /// Visits the items (fields, members, elements) in key order as (name, value) until
    /// `visit` returns false.
    pub fn for_each_item(
        &self,
        m: &mut impl Members,
        rev: bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Reply> {
        let (lo, hi) = self.member_range(MemberKind::Item);
        let skip = lo.len();
        m.scan_members(&lo, &hi, rev, &mut |k, v| visit(&k[skip..], v))?;
        Ok(())
    }

    /// Up to `n` distinct items (name, value), drawn uniformly by reservoir sampling in one
    /// pass, then shuffled (the reservoir keeps byte order for the items it never replaced).
    /// Costs the collection's size in reads and the sample's in memory.
    pub fn sample(
        &self,
        m: &mut impl Members,
        n: u64,
        rng: &mut impl rand::Rng,
    ) -> Result<Vec<(Bytes, Bytes)>, Reply> {
        use rand::seq::SliceRandom;
        let n = n.min(self.meta.size) as usize;
        let mut reservoir: Vec<(Bytes, Bytes)> = Vec::with_capacity(n);
        let mut seen = 0usize;
        self.for_each_item(m, false, |name, value| {
            seen += 1;
            let item = || (Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
            if reservoir.len() < n {
                reservoir.push(item());
            } else {
                let j = rng.gen_range(0..seen);
                if j < n {
                    reservoir[j] = item();
                }
            }
            true
        })?;
        reservoir.shuffle(rng);
        Ok(reservoir)
    }

    /// The picks of HRANDFIELD, SRANDMEMBER, ZRANDMEMBER: `count` distinct items, or for a
    /// negative count that many with repeats (drawn from a uniform sample as large).
    pub fn draw(
        &self,
        m: &mut impl Members,
        count: i64,
        rng: &mut impl rand::Rng,
    ) -> Result<Vec<(Bytes, Bytes)>, Reply> {
        let wanted = count.unsigned_abs();
        let picks = self.sample(m, wanted, rng)?;
        if count >= 0 || picks.is_empty() {
            return Ok(picks);
        }
        Ok((0..wanted)
            .map(|_| picks[rng.gen_range(0..picks.len())].clone())
            .collect())
    }

    /// Writes the entry back after its members changed; an empty collection is deleted.
    pub fn save(&self, txn: &mut Txn<'_>, key: &[u8]) {
        if self.meta.size == 0 {
            txn.delete(key);
            return;
        }
        txn.put(
            key,
            Entry {
                kind: self.kind,
                expire_at: self.expire_at,
                payload: self.meta.encode(),
            },
        );
    }
}

/// Most picks one HRANDFIELD, SRANDMEMBER or ZRANDMEMBER builds: a negative count asks for
/// repeats, and the reply is built whole, so it is bounded rather than left to the count.
pub const MAX_RANDOM_PICKS: u64 = 10_000_000;

/// `key [count [with]]` of HRANDFIELD, SRANDMEMBER (`with` = `None`) and ZRANDMEMBER: the
/// count (`None`: one item, as a bulk string) and whether `with` (WITHVALUES, WITHSCORES) was
/// given, with Redis's checks and texts.
pub fn random_count(args: &[Bytes], with: Option<&[u8]>) -> Result<(Option<i64>, bool), Reply> {
    let Some(raw) = args.get(2) else {
        return Ok((None, false));
    };
    let n = fjord_common::number::parse_i64(raw).ok_or(Reply::error(error::NOT_INTEGER))?;
    if n == i64::MIN {
        return Err(Reply::error(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let with_given = match (&args[3..], with) {
        ([], _) => false,
        ([opt], Some(word)) if opt.eq_ignore_ascii_case(word) => true,
        _ => return Err(Reply::error(error::SYNTAX)),
    };
    if with_given && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Err(Reply::error(error::OUT_OF_RANGE));
    }
    if n.unsigned_abs() > MAX_RANDOM_PICKS {
        return Err(Reply::error(format!(
            "ERR count is too large: fjord returns at most {MAX_RANDOM_PICKS} random items"
        )));
    }
    Ok((Some(n), with_given))
}

/// The optional count of SPOP, LPOP/RPOP and ZPOPMIN/ZPOPMAX (`args[2]`), as Redis's
/// `getPositiveLongFromObjectOrReply` reads it: one text for a word and a negative number.
pub fn pop_count(args: &[Bytes]) -> Result<Option<u64>, Reply> {
    args.get(2)
        .map(|a| {
            fjord_common::number::parse_i64(a)
                .filter(|&n| n >= 0)
                .map(|n| n as u64)
                .ok_or(Reply::error(error::NOT_POSITIVE))
        })
        .transpose()
}

/// Refuses a member name the store cannot key (longer than [`MAX_MEMBER_LEN`]).
pub fn check_member_name(name: &[u8]) -> Result<(), Reply> {
    if name.len() > MAX_MEMBER_LEN {
        return Err(Reply::error(format!(
            "ERR member is too long: fjord accepts fields and members of up to {MAX_MEMBER_LEN} bytes"
        )));
    }
    Ok(())
}

/// Copies the collection in `entry` (found under a key of slot `from_slot`) to a fresh
/// version under slot `to_slot`, for COPY and for RENAME across slots; returns the entry
/// that points to the copy. Strings come back as they are. (The copy is one commit, so it
/// holds every member in the group until then: COPY of a huge collection costs its size.)
pub fn copy_value(
    txn: &mut Txn<'_>,
    entry: Entry,
    from_slot: u16,
    to_slot: u16,
) -> Result<Entry, Reply> {
    if !entry.kind.is_collection() {
        return Ok(entry);
    }
    let meta = CollectionMeta::decode(entry.kind, &entry.payload)
        .ok_or_else(|| Reply::error("ERR corrupt collection entry"))?;
    let version = txn.new_version();
    let (lo, hi) = crate::store::encoding::version_range(from_slot, meta.version);
    let mut copied: Vec<(Vec<u8>, Bytes)> = Vec::new();
    txn.scan_members(&lo, &hi, false, &mut |k, v| {
        let mut new_key = crate::store::encoding::version_prefix(to_slot, version).to_vec();
        new_key.extend_from_slice(&k[lo.len()..]);
        copied.push((new_key, Bytes::copy_from_slice(v)));
        true
    })?;
    for (k, v) in copied {
        txn.put_member(k, v);
    }
    Ok(Entry {
        payload: CollectionMeta { version, ..meta }.encode(),
        ..entry
    })
}
