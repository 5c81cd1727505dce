//! The set and sorted-set algebra on one shard: SINTER, SUNION, SDIFF, SINTERCARD, ZUNION,
//! ZINTER, ZDIFF, ZINTERCARD and the STORE forms. What they compute is
//! [`fjord_common::algebra`]'s, shared with the proxy; this file finds their inputs in the
//! store and writes the STORE forms' results.

use super::{Parse, Read};
use crate::store::encoding::ValueType;
use crate::store::members::{Members, View};
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::{set, zset, Collection};
use bytes::Bytes;
use fjord_common::algebra::{Inputs, SetAlgebra, ZAlgebra};
use fjord_common::{error, Reply};

/// The inputs of one command as found in the store: a set, or (for the sorted-set algebra)
/// a sorted set; `None` for a missing key.
struct Found<'a, M: Members> {
    m: &'a mut M,
    inputs: Vec<Option<(ValueType, Collection)>>,
}

impl<'a, M: Members> Found<'a, M> {
    /// Finds `keys` in order; the first of a type other than `allowed` is WRONGTYPE.
    fn find(m: &'a mut M, keys: &[Bytes], allowed: &[ValueType]) -> Result<Self, Reply> {
        let mut inputs = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(entry) = m.entry(key)? else {
                inputs.push(None);
                continue;
            };
            if !allowed.contains(&entry.kind) {
                return Err(Reply::error(error::WRONGTYPE));
            }
            let found = match entry.kind {
                ValueType::Set => set::find(m, key)?,
                _ => zset::find(m, key)?,
            };
            inputs.push(found.map(|c| (entry.kind, c)));
        }
        Ok(Found { m, inputs })
    }
}

impl<M: Members> Inputs for Found<'_, M> {
    fn count(&self) -> usize {
        self.inputs.len()
    }

    fn size(&self, i: usize) -> Option<u64> {
        self.inputs[i].as_ref().map(|(_, c)| c.meta.size)
    }

    fn items(&mut self, i: usize) -> Result<Vec<(Bytes, f64)>, Reply> {
        let mut out = Vec::new();
        let Some((kind, c)) = &self.inputs[i] else {
            return Ok(out);
        };
        c.for_each_item(self.m, false, |name, v| {
            let score = match kind {
                ValueType::Set => 1.0,
                _ => zset::decode_score(v).unwrap_or(0.0),
            };
            out.push((Bytes::copy_from_slice(name), score));
            true
        })?;
        Ok(out)
    }

    fn score(&mut self, i: usize, member: &[u8]) -> Result<Option<f64>, Reply> {
        match &self.inputs[i] {
            None => Ok(None),
            Some((ValueType::Set, c)) => Ok(set::contains(self.m, c, member)?.then_some(1.0)),
            Some((_, c)) => zset::score(self.m, c, member),
        }
    }
}

const SETS: &[ValueType] = &[ValueType::Set];
const SETS_AND_ZSETS: &[ValueType] = &[ValueType::Set, ValueType::ZSet];

/// SINTER, SUNION, SDIFF, SINTERCARD, and (as a write) their STORE forms.
pub struct SetCommand(SetAlgebra);

impl Parse for SetCommand {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        SetAlgebra::parse(args).map(SetCommand)
    }
}

impl SetCommand {
    fn compute(&self, m: &mut impl Members) -> Result<Vec<Bytes>, Reply> {
        self.0.compute(&mut Found::find(m, &self.0.keys, SETS)?)
    }
}

impl Read for SetCommand {
    fn execute(self, store: &Store) -> Reply {
        match self.compute(&mut View::new(store)) {
            Ok(members) => self.0.reply(members),
            Err(e) => e,
        }
    }
}

impl WriteOp for SetCommand {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let members = match self.compute(txn) {
            Ok(members) => members,
            Err(e) => return e,
        };
        match &self.0.dest {
            Some(dest) => Reply::Int(set::store(txn, dest, &members)),
            None => self.0.reply(members),
        }
    }
}

/// ZUNION, ZINTER, ZDIFF, ZINTERCARD, and (as a write) their STORE forms.
pub struct ZSetCommand(ZAlgebra);

impl Parse for ZSetCommand {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        ZAlgebra::parse(args).map(ZSetCommand)
    }
}

impl ZSetCommand {
    fn compute(&self, m: &mut impl Members) -> Result<Vec<(Bytes, f64)>, Reply> {
        self.0
            .compute(&mut Found::find(m, &self.0.keys, SETS_AND_ZSETS)?)
    }
}

impl Read for ZSetCommand {
    fn execute(self, store: &Store) -> Reply {
        match self.compute(&mut View::new(store)) {
            Ok(items) => self.0.reply(items),
            Err(e) => e,
        }
    }
}

impl WriteOp for ZSetCommand {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let items = match self.compute(txn) {
            Ok(items) => items,
            Err(e) => return e,
        };
        match &self.0.dest {
            Some(dest) => Reply::Int(zset::store(txn, dest, &items)),
            None => self.0.reply(items),
        }
    }
}
