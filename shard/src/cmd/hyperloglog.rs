//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG. The values are strings in Redis's
//! format ([`fjord_common::hll`]); PFSELFTEST is answered by whichever process gets it.

use super::strings::{store_string, string_entry, string_value};
use super::{Outcome, Parse};
use crate::server::Server;
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use bytes::Bytes;
use fjord_common::hll::{self, Hll, HllError, REGISTERS};
use fjord_common::Reply;

fn hll_error(e: HllError) -> Reply {
    Reply::error(e.text())
}

/// The HyperLogLog stored under `key` inside a write, with its expiry, or `None`.
fn hll_entry(txn: &mut Txn<'_>, key: &[u8]) -> Result<Option<(Hll, Option<u64>)>, Reply> {
    match string_entry(txn, key)? {
        Some(e) => Ok(Some((
            Hll::from_value(&e.payload).map_err(hll_error)?,
            e.expire_at,
        ))),
        None => Ok(None),
    }
}

fn store_hll(txn: &mut Txn<'_>, key: &[u8], hll: Hll, expire_at: Option<u64>) {
    store_string(txn, key, Bytes::from(hll.into_bytes()), expire_at);
}

/// PFADD key [element …]: 1 when the key was created or a register grew.
pub struct PfAdd {
    key: Bytes,
    elements: Vec<Bytes>,
}

impl Parse for PfAdd {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            elements: args[2..].to_vec(),
        })
    }
}

impl WriteOp for PfAdd {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let (mut hll, expire_at, mut changed) = match hll_entry(txn, &self.key) {
            Ok(Some((hll, expire_at))) => (hll, expire_at, false),
            Ok(None) => (Hll::new(), None, true),
            Err(e) => return e,
        };
        let sparse_max = hll::sparse_max_bytes();
        for element in &self.elements {
            match hll.add(element, sparse_max) {
                Ok(grew) => changed |= grew,
                Err(e) => return hll_error(e),
            }
        }
        if changed {
            // A value PFADD creates counts as changed, even with no element: stale, as in Redis.
            hll.invalidate();
            store_hll(txn, &self.key, hll, expire_at);
        }
        Reply::Int(changed as i64)
    }
}

/// PFCOUNT key [key …]. One key answers from the value's cached count; when that is stale,
/// the count is computed in a write that stores it back, as Redis does (so the value's bytes
/// stay Redis's, and replicas get the same). Several keys count their union.
pub fn pfcount(server: &Server, args: &[Bytes]) -> Outcome {
    let store = &*server.store;
    let keys = &args[1..];
    if keys.len() > 1 {
        return union_count(store, keys).unwrap_or_else(|e| e).into();
    }
    let value = match string_value(store, &keys[0]) {
        Ok(Some(value)) => value,
        Ok(None) => return Reply::Int(0).into(),
        Err(e) => return e.into(),
    };
    // The common case answers from the header, without copying the value.
    match Hll::cached_in(&value) {
        Ok(Some(card)) => return Reply::Int(card as i64).into(),
        Ok(None) => {}
        Err(e) => return hll_error(e).into(),
    }
    let hll = match Hll::from_value(&value) {
        Ok(hll) => hll,
        Err(e) => return hll_error(e).into(),
    };
    // Only a primary that takes writes stores the count; elsewhere it is only answered.
    if store.is_replica() || !store.is_writable() || server.repl.refuses_writes() {
        return hll
            .count()
            .map_or_else(hll_error, |c| Reply::Int(c as i64))
            .into();
    }
    Outcome::Write(Box::new(CacheCount {
        key: keys[0].clone(),
    }))
}

fn union_count(store: &Store, keys: &[Bytes]) -> Result<Reply, Reply> {
    let mut union = hll::Union::default();
    for key in keys {
        if let Some(value) = string_value(store, key)? {
            union.add(&value).map_err(hll_error)?;
        }
    }
    Ok(Reply::Int(union.count() as i64))
}

/// A single-key PFCOUNT whose cached count was stale when it was read.
struct CacheCount {
    key: Bytes,
}

impl WriteOp for CacheCount {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        // Read again: a write may have come between the read and this one.
        let (mut hll, expire_at) = match hll_entry(txn, &self.key) {
            Ok(Some(found)) => found,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        if let Some(card) = hll.cached() {
            return Reply::Int(card as i64);
        }
        match hll.count() {
            Ok(card) => {
                hll.set_cached(card);
                store_hll(txn, &self.key, hll, expire_at);
                Reply::Int(card as i64)
            }
            Err(e) => hll_error(e),
        }
    }
}

/// PFMERGE dest [source …]: the union of every key given, the destination included, written
/// to the destination.
pub struct PfMerge {
    keys: Vec<Bytes>,
}

impl Parse for PfMerge {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            keys: args[1..].to_vec(),
        })
    }
}

impl WriteOp for PfMerge {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut max = [0u8; REGISTERS];
        let mut dense = false;
        let mut dest = None;
        for (i, key) in self.keys.iter().enumerate() {
            let found = match hll_entry(txn, key) {
                Ok(found) => found,
                Err(e) => return e,
            };
            let Some((hll, expire_at)) = found else {
                continue;
            };
            dense |= !hll.is_sparse();
            if let Err(e) = hll.merge_into(&mut max) {
                return hll_error(e);
            }
            if i == 0 {
                dest = Some((hll, expire_at));
            }
        }
        let (mut hll, expire_at) = dest.unwrap_or_else(|| (Hll::new(), None));
        if let Err(e) = hll.merge_from(&max, dense, hll::sparse_max_bytes()) {
            return hll_error(e);
        }
        store_hll(txn, &self.keys[0], hll, expire_at);
        Reply::ok()
    }
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: Redis's debugging view of a value. GETREG and
/// TODENSE make a sparse value dense and store it, as Redis does.
pub struct PfDebug {
    sub: Bytes,
    key: Bytes,
}

impl Parse for PfDebug {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            sub: args[1].clone(),
            key: args[2].clone(),
        })
    }
}

impl WriteOp for PfDebug {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let (mut hll, expire_at) = match hll_entry(txn, &self.key) {
            Ok(Some(found)) => found,
            Ok(None) => return Reply::error("ERR The specified key does not exist"),
            Err(e) => return e,
        };
        let sub = self.sub.to_ascii_lowercase();
        match sub.as_slice() {
            b"getreg" | b"todense" => {
                let converted = match hll.to_dense() {
                    Ok(converted) => converted,
                    Err(e) => return hll_error(e),
                };
                let reply = match sub.as_slice() {
                    b"getreg" => match hll.registers() {
                        Ok(regs) => {
                            Reply::Array(regs.into_iter().map(|r| Reply::Int(r.into())).collect())
                        }
                        Err(e) => return hll_error(e),
                    },
                    _ => Reply::Int(converted as i64),
                };
                if converted {
                    store_hll(txn, &self.key, hll, expire_at);
                }
                reply
            }
            b"decode" => match hll.decode() {
                Some(ops) => Reply::Bulk(ops.into()),
                None => Reply::error("ERR HLL encoding is not sparse"),
            },
            b"encoding" => Reply::status(if hll.is_sparse() { "sparse" } else { "dense" }),
            _ => Reply::error(format!(
                "ERR Unknown PFDEBUG subcommand '{}'",
                String::from_utf8_lossy(&self.sub)
            )),
        }
    }
}
