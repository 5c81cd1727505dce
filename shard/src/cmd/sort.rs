//! SORT and SORT_RO on one shard: the options, order and window are
//! [`fjord_common::sort`]'s; this file reads the collection and what the BY and GET
//! patterns name from this shard's own store, as one Redis would from its own keys. (The
//! proxy resolves patterns that name keys on other shards itself.)

use super::{Parse, Read};
use crate::store::encoding::ValueType;
use crate::store::members::{Members, View};
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::{hash, list, set, zset, Collection};
use bytes::Bytes;
use fjord_common::sort::{Lookup, SortSpec, Source};
use fjord_common::{error, Reply};

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern …] [ASC|DESC] [ALPHA] [STORE
/// destination]` and SORT_RO (no STORE). With STORE it is a write; without, a read.
pub struct Sort {
    key: Bytes,
    spec: SortSpec,
}

impl Sort {
    /// Whether it writes (STORE), and so goes to the writer.
    pub fn stores(&self) -> bool {
        self.spec.store.is_some()
    }

    /// The ordered elements and what the result holds for them.
    fn run(&self, m: &mut impl Members) -> Result<Vec<Option<Bytes>>, Reply> {
        let (source, elements) = elements(m, &self.key)?;
        let ordered = self
            .spec
            .order(source, elements, |l| value(m, l))
            .map_err(Reply::error)?;
        Ok(self.spec.output(&ordered, |l| value(m, l)))
    }
}

impl Parse for Sort {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let readonly = args[0].eq_ignore_ascii_case(b"sort_ro");
        Ok(Self {
            key: args[1].clone(),
            spec: SortSpec::parse(args, readonly).map_err(Reply::error)?,
        })
    }
}

impl Read for Sort {
    fn execute(self, store: &Store) -> Reply {
        match self.run(&mut View::new(store)) {
            Ok(out) => Reply::Array(
                out.into_iter()
                    .map(|v| v.map_or(Reply::Nil, Reply::Bulk))
                    .collect(),
            ),
            Err(e) => e,
        }
    }
}

impl WriteOp for Sort {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let out = match self.run(txn) {
            Ok(out) => out,
            Err(e) => return e,
        };
        let Some(dest) = &self.spec.store else {
            return Reply::error(error::SYNTAX);
        };
        store_list(txn, dest, out).map_or_else(|e| e, Reply::Int)
    }
}

/// Replaces whatever `dest` holds with a list of `items` (a missing value is stored empty,
/// as Redis does); nothing deletes it. Returns the list's length.
fn store_list(txn: &mut Txn<'_>, dest: &[u8], items: Vec<Option<Bytes>>) -> Result<i64, Reply> {
    txn.delete(dest);
    if items.is_empty() {
        return Ok(0);
    }
    let mut l = list::find_or_create(txn, dest)?;
    for item in items {
        list::push(txn, &mut l, list::End::Right, item.unwrap_or_default());
    }
    l.save(txn, dest);
    Ok(l.meta.size as i64)
}

/// The elements of the collection under `key` in its own order (a sorted set's by score),
/// with its type; a missing key is an empty list, another type WRONGTYPE.
fn elements(m: &mut impl Members, key: &[u8]) -> Result<(Source, Vec<Bytes>), Reply> {
    let Some(entry) = m.entry(key)? else {
        return Ok((Source::List, Vec::new()));
    };
    let found = |c: Option<Collection>| c.ok_or(Reply::error(error::WRONGTYPE));
    match entry.kind {
        ValueType::List => {
            let l = found(list::find(m, key)?)?;
            Ok((Source::List, list::range(m, &l, (0, l.meta.size - 1))?))
        }
        ValueType::Set => {
            let s = found(set::find(m, key)?)?;
            Ok((Source::Set, set::members(m, &s)?))
        }
        ValueType::ZSet => {
            let z = found(zset::find(m, key)?)?;
            let mut out = Vec::with_capacity(z.meta.size.min(1 << 16) as usize);
            zset::walk(m, &z, false, |member, _| {
                out.push(Bytes::copy_from_slice(member));
                true
            })?;
            Ok((Source::ZSet, out))
        }
        _ => Err(Reply::error(error::WRONGTYPE)),
    }
}

/// What a pattern names, read from this store: a string key's value or a hash's field;
/// nothing for a missing key, another type, or a failed read.
fn value(m: &mut impl Members, lookup: &Lookup) -> Option<Bytes> {
    match lookup {
        Lookup::Key(key) => match m.entry(key) {
            Ok(Some(e)) if e.kind == ValueType::String => Some(e.payload),
            _ => None,
        },
        Lookup::Field(key, field) => {
            let h = hash::find(m, key).ok()??;
            hash::get(m, &h, field).ok()?
        }
        Lookup::Element | Lookup::Nothing => None,
    }
}

/// `FJORD STORELIST key [element …]`: the STORE of a SORT whose patterns the proxy resolved
/// across shards, written here in one commit as SORT's own STORE writes it.
pub struct StoreList {
    key: Bytes,
    elements: Vec<Option<Bytes>>,
}

impl Parse for StoreList {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[2].clone(),
            elements: args[3..].iter().cloned().map(Some).collect(),
        })
    }
}

impl WriteOp for StoreList {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        store_list(txn, &self.key, self.elements).map_or_else(|e| e, Reply::Int)
    }
}
