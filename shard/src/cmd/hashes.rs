//! Hash commands: HSET and HMSET, HSETNX, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS,
//! HVALS, HGETALL, HINCRBY, HINCRBYFLOAT, HRANDFIELD (HSCAN is with the other scans, in
//! [`super::keys`]). Their meaning on the store is [`crate::types::hash`]'s.

use super::strings::or_nil;
use super::{Parse, Read};
use crate::store::encoding::ValueType;
use crate::store::members::View;
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::{check_member_name, hash, random_count, Collection};
use bytes::Bytes;
use fjord_common::number::{format_f64_at_scale, parse_f64, parse_i64};
use fjord_common::{error, Bulks, Reply, Shape};

/// The key and the arguments after it, for commands that take nothing else.
fn key_and_rest(args: &[Bytes]) -> (Bytes, Vec<Bytes>) {
    (args[1].clone(), args[2..].to_vec())
}

/// HSET and HMSET: `key field value [field value …]`.
pub struct HSet {
    key: Bytes,
    pairs: Vec<(Bytes, Bytes)>,
    /// HMSET answers `+OK`, HSET the number of new fields.
    ok_reply: bool,
}

impl Parse for HSet {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        if !args.len().is_multiple_of(2) {
            return Err(Reply::error(error::wrong_arity(&super::lower_name(args))));
        }
        let mut pairs = Vec::with_capacity((args.len() - 2) / 2);
        for pair in args[2..].chunks_exact(2) {
            check_member_name(&pair[0])?;
            pairs.push((pair[0].clone(), pair[1].clone()));
        }
        Ok(Self {
            key: args[1].clone(),
            pairs,
            ok_reply: args[0].eq_ignore_ascii_case(b"hmset"),
        })
    }
}

impl WriteOp for HSet {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut h = match Collection::find_or_create(txn, &self.key, ValueType::Hash) {
            Ok(h) => h,
            Err(e) => return e,
        };
        let added = self
            .pairs
            .into_iter()
            .filter(|(f, v)| hash::set(txn, &mut h, f, v.clone()))
            .count();
        h.save(txn, &self.key);
        if self.ok_reply {
            Reply::ok()
        } else {
            Reply::Int(added as i64)
        }
    }
}

/// `HSETNX key field value`: sets the field only if it is absent.
pub struct HSetNx {
    key: Bytes,
    field: Bytes,
    value: Bytes,
}

impl Parse for HSetNx {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        check_member_name(&args[2])?;
        Ok(Self {
            key: args[1].clone(),
            field: args[2].clone(),
            value: args[3].clone(),
        })
    }
}

impl WriteOp for HSetNx {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut h = match Collection::find_or_create(txn, &self.key, ValueType::Hash) {
            Ok(h) => h,
            Err(e) => return e,
        };
        match hash::get(txn, &h, &self.field) {
            Ok(Some(_)) => return Reply::Int(0),
            Ok(None) => {}
            Err(e) => return e,
        }
        hash::set(txn, &mut h, &self.field, self.value);
        h.save(txn, &self.key);
        Reply::Int(1)
    }
}

/// HGET, HMGET, HSTRLEN, HEXISTS: lookups of given fields.
pub struct HGet {
    key: Bytes,
    fields: Vec<Bytes>,
    reply: FieldReply,
}

#[derive(Clone, Copy)]
enum FieldReply {
    /// The value or nil (HGET).
    Value,
    /// An array of values or nils (HMGET).
    Values,
    /// The value's length (HSTRLEN).
    Length,
    /// 1 or 0 (HEXISTS).
    Exists,
}

impl Parse for HGet {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (key, fields) = key_and_rest(args);
        let reply = match args[0].to_ascii_lowercase().as_slice() {
            b"hmget" => FieldReply::Values,
            b"hstrlen" => FieldReply::Length,
            b"hexists" => FieldReply::Exists,
            _ => FieldReply::Value,
        };
        Ok(Self { key, fields, reply })
    }
}

impl Read for HGet {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let found = match hash::find(&mut view, &self.key) {
            Ok(h) => h,
            Err(e) => return e,
        };
        let mut values = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let value = match &found {
                Some(h) => match hash::get(&mut view, h, field) {
                    Ok(v) => v,
                    Err(e) => return e,
                },
                None => None,
            };
            values.push(value);
        }
        let first = || values[0].clone();
        match self.reply {
            FieldReply::Value => or_nil(first()),
            FieldReply::Values => Reply::Array(values.into_iter().map(or_nil).collect()),
            FieldReply::Length => Reply::Int(first().map_or(0, |v| v.len() as i64)),
            FieldReply::Exists => Reply::Int(i64::from(first().is_some())),
        }
    }
}

/// `HDEL key field [field …]`.
pub struct HDel {
    key: Bytes,
    fields: Vec<Bytes>,
}

impl Parse for HDel {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (key, fields) = key_and_rest(args);
        Ok(Self { key, fields })
    }
}

impl WriteOp for HDel {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut h = match hash::find(txn, &self.key) {
            Ok(Some(h)) => h,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let removed = self
            .fields
            .iter()
            .filter(|f| hash::remove(txn, &mut h, f))
            .count();
        if removed > 0 {
            h.save(txn, &self.key);
        }
        Reply::Int(removed as i64)
    }
}

/// `HLEN key`.
pub struct HLen {
    key: Bytes,
}

impl Parse for HLen {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl Read for HLen {
    fn execute(self, store: &Store) -> Reply {
        match hash::find(&mut View::new(store), &self.key) {
            Ok(h) => Reply::Int(h.map_or(0, |h| h.meta.size as i64)),
            Err(e) => e,
        }
    }
}

/// HGETALL, HKEYS, HVALS: every field, streamed from one snapshot.
pub struct HGetAll {
    key: Bytes,
    fields: bool,
    values: bool,
}

impl Parse for HGetAll {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = args[0].to_ascii_lowercase();
        Ok(Self {
            key: args[1].clone(),
            fields: name != b"hvals",
            values: name != b"hkeys",
        })
    }
}

impl Read for HGetAll {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let h = match hash::find(&mut view, &self.key) {
            Ok(Some(h)) => h,
            Ok(None) if self.fields && self.values => return Reply::Map(Vec::new()),
            Ok(None) => return Reply::Array(Vec::new()),
            Err(e) => return e,
        };
        let mut out = Bulks::new(if self.fields && self.values {
            Shape::Map
        } else {
            Shape::Array
        });
        let result = h.for_each_item(&mut view, false, |f, v| {
            if self.fields {
                out.push(f);
            }
            if self.values {
                out.push(v);
            }
            true
        });
        result.map_or_else(|e| e, |()| out.into())
    }
}

/// HINCRBY and HINCRBYFLOAT: `key field increment`.
pub struct HIncrBy {
    key: Bytes,
    field: Bytes,
    delta: Delta,
}

#[derive(Clone, Copy)]
enum Delta {
    Int(i64),
    Float(f64),
}

impl Parse for HIncrBy {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let delta = if args[0].eq_ignore_ascii_case(b"hincrbyfloat") {
            let d = parse_f64(&args[3]).ok_or(Reply::error(error::NOT_FLOAT))?;
            if !d.is_finite() {
                return Err(Reply::error(error::VALUE_NAN_OR_INF));
            }
            Delta::Float(d)
        } else {
            Delta::Int(parse_i64(&args[3]).ok_or(Reply::error(error::NOT_INTEGER))?)
        };
        check_member_name(&args[2])?;
        Ok(Self {
            key: args[1].clone(),
            field: args[2].clone(),
            delta,
        })
    }
}

impl HIncrBy {
    /// The field's new text and the reply, from its current value, with Redis's errors.
    fn next(&self, current: Option<&[u8]>) -> Result<(Bytes, Reply), Reply> {
        match self.delta {
            Delta::Int(delta) => {
                let n = match current {
                    Some(v) => parse_i64(v).ok_or(Reply::error(error::HASH_NOT_INTEGER))?,
                    None => 0,
                };
                let n = n.checked_add(delta).ok_or(Reply::error(error::OVERFLOW))?;
                Ok((Bytes::from(n.to_string()), Reply::Int(n)))
            }
            Delta::Float(delta) => {
                let n = match current {
                    Some(v) => parse_f64(v).ok_or(Reply::error(error::HASH_NOT_FLOAT))?,
                    None => 0.0,
                };
                let sum = n + delta;
                if !sum.is_finite() {
                    return Err(Reply::error(error::NAN_OR_INF));
                }
                let text = Bytes::from(format_f64_at_scale(sum, n.abs().max(delta.abs())));
                Ok((text.clone(), Reply::Bulk(text)))
            }
        }
    }
}

impl WriteOp for HIncrBy {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut h = match Collection::find_or_create(txn, &self.key, ValueType::Hash) {
            Ok(h) => h,
            Err(e) => return e,
        };
        let current = match hash::get(txn, &h, &self.field) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let (text, reply) = match self.next(current.as_deref()) {
            Ok(next) => next,
            Err(e) => return e,
        };
        hash::set(txn, &mut h, &self.field, text);
        h.save(txn, &self.key);
        reply
    }
}

/// `HRANDFIELD key [count [WITHVALUES]]`.
///
/// Fields are drawn in one pass over the hash ([`Collection::sample`]), so it costs the
/// hash's size in reads but only the reply's in memory.
pub struct HRandField {
    key: Bytes,
    /// `None`: one field as a bulk string. Negative: that many, repeats allowed.
    count: Option<i64>,
    with_values: bool,
}

impl Parse for HRandField {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let (count, with_values) = random_count(args, Some(b"withvalues"))?;
        Ok(Self {
            key: args[1].clone(),
            count,
            with_values,
        })
    }
}

impl Read for HRandField {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let h = match hash::find(&mut view, &self.key) {
            Ok(Some(h)) => h,
            Ok(None) if self.count.is_none() => return Reply::Nil,
            Ok(None) => return Reply::Array(Vec::new()),
            Err(e) => return e,
        };
        let count = self.count.unwrap_or(1);
        if count == 0 {
            return Reply::Array(Vec::new());
        }
        let picks = match h.draw(&mut view, count, &mut rand::thread_rng()) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if self.count.is_none() {
            return or_nil(picks.into_iter().next().map(|(f, _)| f));
        }
        if self.with_values {
            let pairs = picks
                .into_iter()
                .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)));
            return Reply::Pairs(pairs.collect());
        }
        Reply::Array(picks.into_iter().map(|(f, _)| Reply::Bulk(f)).collect())
    }
}
