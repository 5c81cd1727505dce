//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
//! SMOVE (the algebra is in [`super::algebra`], SSCAN with the other scans in
//! [`super::keys`]). Their meaning on the store is [`crate::types::set`]'s.

use super::strings::or_nil;
use super::{Parse, Read};
use crate::store::encoding::ValueType;
use crate::store::members::View;
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::{check_member_name, random_count, set, Collection};
use bytes::Bytes;
use fjord_common::algebra::members_reply;
use fjord_common::{error, Bulks, Reply, Shape};

/// SADD and SREM: `key member [member …]`.
pub struct SAddRem {
    key: Bytes,
    members: Vec<Bytes>,
    add: bool,
}

impl Parse for SAddRem {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let add = args[0].eq_ignore_ascii_case(b"sadd");
        if add {
            for m in &args[2..] {
                check_member_name(m)?;
            }
        }
        Ok(Self {
            key: args[1].clone(),
            members: args[2..].to_vec(),
            add,
        })
    }
}

impl WriteOp for SAddRem {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let found = if self.add {
            Collection::find_or_create(txn, &self.key, ValueType::Set).map(Some)
        } else {
            set::find(txn, &self.key)
        };
        let mut s = match found {
            Ok(Some(s)) => s,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let changed = self
            .members
            .iter()
            .filter(|m| {
                if self.add {
                    set::add(txn, &mut s, m)
                } else {
                    set::remove(txn, &mut s, m)
                }
            })
            .count();
        if changed > 0 {
            s.save(txn, &self.key);
        }
        Reply::Int(changed as i64)
    }
}

/// SISMEMBER, SMISMEMBER, SCARD: lookups in one set.
pub struct SIsMember {
    key: Bytes,
    members: Vec<Bytes>,
    reply: Lookup,
}

enum Lookup {
    One,
    Many,
    Card,
}

impl Parse for SIsMember {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let reply = match args[0].to_ascii_lowercase().as_slice() {
            b"smismember" => Lookup::Many,
            b"scard" => Lookup::Card,
            _ => Lookup::One,
        };
        Ok(Self {
            key: args[1].clone(),
            members: args[2..].to_vec(),
            reply,
        })
    }
}

impl Read for SIsMember {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let found = match set::find(&mut view, &self.key) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if let Lookup::Card = self.reply {
            return Reply::Int(found.map_or(0, |s| s.meta.size as i64));
        }
        let mut flags = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let present = match &found {
                Some(s) => match set::contains(&mut view, s, m) {
                    Ok(p) => p,
                    Err(e) => return e,
                },
                None => false,
            };
            flags.push(Reply::Int(i64::from(present)));
        }
        match self.reply {
            Lookup::Many => Reply::Array(flags),
            _ => flags.pop().unwrap_or(Reply::Int(0)),
        }
    }
}

/// `SMEMBERS key`.
pub struct SMembers {
    key: Bytes,
}

impl Parse for SMembers {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
        })
    }
}

impl Read for SMembers {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        match set::find(&mut view, &self.key) {
            Ok(Some(s)) => {
                let mut out = Bulks::new(Shape::Set);
                let read = s.for_each_item(&mut view, false, |member, _| {
                    out.push(member);
                    true
                });
                read.map_or_else(|e| e, |()| out.into())
            }
            Ok(None) => Reply::Set(Vec::new()),
            Err(e) => e,
        }
    }
}

/// `SRANDMEMBER key [count]`: one point read per member drawn ([`set::draw_distinct`]).
pub struct SRandMember {
    key: Bytes,
    count: Option<i64>,
}

impl Parse for SRandMember {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            key: args[1].clone(),
            count: random_count(args, None)?.0,
        })
    }
}

impl Read for SRandMember {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        let s = match set::find(&mut view, &self.key) {
            Ok(Some(s)) => s,
            Ok(None) if self.count.is_none() => return Reply::Nil,
            Ok(None) => return Reply::Array(Vec::new()),
            Err(e) => return e,
        };
        let rng = &mut rand::thread_rng();
        let count = self.count.unwrap_or(1);
        let picks = if count >= 0 {
            set::draw_distinct(&mut view, &s, count as u64, rng)
        } else {
            set::draw_repeating(&mut view, &s, count.unsigned_abs(), rng)
        };
        let names = match picks {
            Ok(p) => p,
            Err(e) => return e,
        };
        match self.count {
            None => or_nil(names.into_iter().next()),
            Some(_) => Reply::Array(names.into_iter().map(Reply::Bulk).collect()),
        }
    }
}

/// `SPOP key [count]`: removes random members ([`set::pop`]); a count that takes them all
/// deletes the set at once.
pub struct SPop {
    key: Bytes,
    count: Option<u64>,
}

impl Parse for SPop {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        if args.len() > 3 {
            return Err(Reply::error(error::SYNTAX));
        }
        Ok(Self {
            key: args[1].clone(),
            count: crate::types::pop_count(args)?,
        })
    }
}

impl WriteOp for SPop {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let mut s = match set::find(txn, &self.key) {
            Ok(Some(s)) => s,
            Ok(None) if self.count.is_none() => return Reply::Nil,
            Ok(None) => return Reply::Set(Vec::new()),
            Err(e) => return e,
        };
        let count = self.count.unwrap_or(1);
        let popped = if count >= s.meta.size {
            let all = set::members(txn, &s);
            txn.delete(&self.key);
            all
        } else {
            let popped = set::pop(txn, &mut s, count, &mut rand::thread_rng());
            if count > 0 {
                s.save(txn, &self.key);
            }
            popped
        };
        let names = match popped {
            Ok(p) => p,
            Err(e) => return e,
        };
        match self.count {
            None => or_nil(names.into_iter().next()),
            Some(_) => members_reply(names),
        }
    }
}

/// `SMOVE source destination member`.
pub struct SMove {
    from: Bytes,
    to: Bytes,
    member: Bytes,
}

impl Parse for SMove {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Self {
            from: args[1].clone(),
            to: args[2].clone(),
            member: args[3].clone(),
        })
    }
}

impl WriteOp for SMove {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        // Redis's order: a missing source first, then both types.
        if txn.get(&self.from).is_none() {
            return Reply::Int(0);
        }
        let mut from = match set::find(txn, &self.from) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if let Err(e) = set::find(txn, &self.to) {
            return e;
        }
        let Some(src) = from.as_mut() else {
            return Reply::Int(0);
        };
        if self.from == self.to {
            return match set::contains(txn, src, &self.member) {
                Ok(present) => Reply::Int(i64::from(present)),
                Err(e) => e,
            };
        }
        if !set::remove(txn, src, &self.member) {
            return Reply::Int(0);
        }
        src.save(txn, &self.from);
        let mut to = match Collection::find_or_create(txn, &self.to, ValueType::Set) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if set::add(txn, &mut to, &self.member) {
            to.save(txn, &self.to);
        }
        Reply::Int(1)
    }
}
