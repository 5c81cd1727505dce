//! Set and sorted-set algebra: SINTER, SUNION, SDIFF, SINTERCARD (with the STORE forms) and
//! ZUNION, ZINTER, ZDIFF, ZINTERCARD (with theirs): how their arguments read and how their
//! results are computed, over inputs read through [`Inputs`]. A shard reads the inputs from
//! its store; the proxy, for a read on the standalone listener whose keys span slots, from
//! what it fetched from each key's shard. Both answer the same, with this code.

use crate::number::{parse_f64, parse_i64};
use crate::{error, Reply};
use bytes::Bytes;
use std::collections::BTreeMap;

/// The inputs of one command, one per key, in the keys' order. Their types were checked
/// when they were found, in that order, as Redis checks them.
pub trait Inputs {
    /// How many inputs there are.
    fn count(&self) -> usize;
    /// Input `i`'s number of members; `None` when its key is missing.
    fn size(&self, i: usize) -> Option<u64>;
    /// Every member of input `i` with its score (1 for a set's), in member order.
    fn items(&mut self, i: usize) -> Result<Vec<(Bytes, f64)>, Reply>;
    /// Input `i`'s score for `member`, if it holds it.
    fn score(&mut self, i: usize, member: &[u8]) -> Result<Option<f64>, Reply>;
}

/// Inputs already read whole: the proxy's, fetched from the shards.
pub struct Fetched(pub Vec<Option<BTreeMap<Bytes, f64>>>);

impl Inputs for Fetched {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn size(&self, i: usize) -> Option<u64> {
        self.0[i].as_ref().map(|m| m.len() as u64)
    }

    fn items(&mut self, i: usize) -> Result<Vec<(Bytes, f64)>, Reply> {
        Ok(self.0[i]
            .iter()
            .flatten()
            .map(|(m, s)| (m.clone(), *s))
            .collect())
    }

    fn score(&mut self, i: usize, member: &[u8]) -> Result<Option<f64>, Reply> {
        Ok(self.0[i].as_ref().and_then(|m| m.get(member).copied()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Union,
    Inter,
    Diff,
}

impl Op {
    /// The operation a command's name says (`sinterstore` → Inter, `zdiff` → Diff, …).
    fn of(name: &[u8]) -> Op {
        let name = name.to_ascii_lowercase();
        let bare = name.strip_prefix(b"s").or(name.strip_prefix(b"z"));
        match bare.unwrap_or(&name) {
            n if n.starts_with(b"union") => Op::Union,
            n if n.starts_with(b"inter") => Op::Inter,
            _ => Op::Diff,
        }
    }
}

/// A set list reply: a set in RESP3, an array in RESP2.
pub fn members_reply(members: impl IntoIterator<Item = Bytes>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

/// Members with their scores, as a reply: pairs (RESP3) or flat (RESP2) with scores.
pub fn scored_reply(items: Vec<(Bytes, f64)>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (Reply::Bulk(m), Reply::Double(s)))
                .collect(),
        )
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

/// SINTER, SUNION, SDIFF (`key [key …]`), their STORE forms (`destination key [key …]`) and
/// SINTERCARD (`numkeys key [key …] [LIMIT limit]`).
pub struct SetAlgebra {
    pub op: Op,
    pub dest: Option<Bytes>,
    pub keys: Vec<Bytes>,
    /// SINTERCARD: reply with the count, stopping at `limit` (0: none).
    pub card: Option<usize>,
}

impl SetAlgebra {
    pub fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = args[0].to_ascii_lowercase();
        if name == b"sintercard" {
            let (keys, limit) = numkeys_and_limit(args)?;
            return Ok(Self {
                op: Op::Inter,
                dest: None,
                keys,
                card: Some(limit),
            });
        }
        let store = name.ends_with(b"store");
        let first = if store { 2 } else { 1 };
        Ok(Self {
            op: Op::of(&name),
            dest: store.then(|| args[1].clone()),
            keys: args[first..].to_vec(),
            card: None,
        })
    }

    /// The result in byte order; an intersection walks the smallest input and looks its
    /// members up in the others, stopping at SINTERCARD's limit.
    pub fn compute(&self, inputs: &mut impl Inputs) -> Result<Vec<Bytes>, Reply> {
        // Every member scores 1 whatever it aggregates with, so the sorted-set order is
        // the members' byte order.
        let combination = Combination {
            op: self.op,
            weights: vec![1.0; inputs.count()],
            aggregate: Aggregate::Max,
            limit: self.card.unwrap_or(0),
        };
        let items = combination.compute(inputs)?;
        Ok(items.into_iter().map(|(m, _)| m).collect())
    }

    /// The reply of the read forms (not the STORE ones) to a computed result.
    pub fn reply(&self, members: Vec<Bytes>) -> Reply {
        match self.card {
            Some(_) => Reply::Int(members.len() as i64),
            None => members_reply(members),
        }
    }
}

/// The keys after a `numkeys` argument and the `LIMIT` option after them, with Redis's
/// checks (SINTERCARD, ZINTERCARD).
fn numkeys_and_limit(args: &[Bytes]) -> Result<(Vec<Bytes>, usize), Reply> {
    let numkeys = parse_i64(&args[1])
        .filter(|&n| n >= 1)
        .ok_or(Reply::error("ERR numkeys should be greater than 0"))?;
    let numkeys = numkeys as usize;
    if numkeys > args.len() - 2 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let keys = args[2..2 + numkeys].to_vec();
    let mut limit = 0usize;
    let mut rest = args[2 + numkeys..].iter();
    while let Some(opt) = rest.next() {
        match rest.next() {
            Some(n) if opt.eq_ignore_ascii_case(b"limit") => {
                let n = parse_i64(n)
                    .filter(|&n| n >= 0)
                    .ok_or(Reply::error("ERR LIMIT can't be negative"))?;
                limit = usize::try_from(n).unwrap_or(usize::MAX);
            }
            _ => return Err(Reply::error(error::SYNTAX)),
        }
    }
    Ok((keys, limit))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            // inf + -inf is NaN; Redis makes it 0.
            Aggregate::Sum => Some(a + b).filter(|s| !s.is_nan()).unwrap_or(0.0),
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        }
    }
}

/// ZUNION, ZINTER, ZDIFF and their STORE forms: `[destination] numkeys key [key …]
/// [WEIGHTS w …] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`, and ZINTERCARD (`numkeys key [key
/// …] [LIMIT limit]`). Sets are inputs too, their members scored 1.
pub struct ZAlgebra {
    pub dest: Option<Bytes>,
    pub keys: Vec<Bytes>,
    combination: Combination,
    with_scores: bool,
    /// ZINTERCARD: reply with the count.
    card: bool,
}

/// What the algebra computes: `op` over weighted inputs, scores aggregated, an intersection
/// stopping after `limit` members (0: none).
struct Combination {
    op: Op,
    weights: Vec<f64>,
    aggregate: Aggregate,
    limit: usize,
}

fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or(Reply::error(error::NOT_INTEGER))
}

impl ZAlgebra {
    pub fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = args[0].to_ascii_lowercase();
        let needs_a_key = || {
            Reply::error(format!(
                "ERR at least 1 input key is needed for '{}' command",
                String::from_utf8_lossy(&name)
            ))
        };
        if name == b"zintercard" {
            // Redis reads ZINTERCARD's count as ZINTER's, with ZINTER's error texts.
            if int_arg(&args[1])? < 1 {
                return Err(needs_a_key());
            }
            let (keys, limit) = numkeys_and_limit(args)?;
            return Ok(ZAlgebra {
                dest: None,
                combination: Combination {
                    op: Op::Inter,
                    weights: vec![1.0; keys.len()],
                    aggregate: Aggregate::Sum,
                    limit,
                },
                keys,
                with_scores: false,
                card: true,
            });
        }
        let op = Op::of(&name);
        let store = name.ends_with(b"store");
        let at = if store { 2 } else { 1 };
        let numkeys = int_arg(&args[at])?;
        if numkeys < 1 {
            return Err(needs_a_key());
        }
        let numkeys = numkeys as usize;
        if numkeys > args.len() - at - 1 {
            return Err(Reply::error(error::SYNTAX));
        }
        let keys = args[at + 1..at + 1 + numkeys].to_vec();
        let mut z = ZAlgebra {
            dest: store.then(|| args[1].clone()),
            keys,
            combination: Combination {
                op,
                weights: vec![1.0; numkeys],
                aggregate: Aggregate::Sum,
                limit: 0,
            },
            with_scores: false,
            card: false,
        };
        let rest = &args[at + 1 + numkeys..];
        let mut i = 0;
        while i < rest.len() {
            let more = rest.len() - i - 1;
            match rest[i].to_ascii_uppercase().as_slice() {
                b"WEIGHTS" if op != Op::Diff && more >= numkeys => {
                    for (j, w) in rest[i + 1..i + 1 + numkeys].iter().enumerate() {
                        z.combination.weights[j] =
                            parse_f64(w).ok_or(Reply::error("ERR weight value is not a float"))?;
                    }
                    i += numkeys;
                }
                b"AGGREGATE" if op != Op::Diff && more >= 1 => {
                    z.combination.aggregate = match rest[i + 1].to_ascii_uppercase().as_slice() {
                        b"SUM" => Aggregate::Sum,
                        b"MIN" => Aggregate::Min,
                        b"MAX" => Aggregate::Max,
                        _ => return Err(Reply::error(error::SYNTAX)),
                    };
                    i += 1;
                }
                b"WITHSCORES" if !store => z.with_scores = true,
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        Ok(z)
    }

    /// The result, ordered by score then member, as a sorted set orders it.
    pub fn compute(&self, inputs: &mut impl Inputs) -> Result<Vec<(Bytes, f64)>, Reply> {
        self.combination.compute(inputs)
    }

    /// The reply of the read forms (not the STORE ones) to a computed result.
    pub fn reply(&self, items: Vec<(Bytes, f64)>) -> Reply {
        match self.card {
            true => Reply::Int(items.len() as i64),
            false => scored_reply(items, self.with_scores),
        }
    }
}

impl Combination {
    /// The result, ordered by score then member. An intersection walks the smallest input
    /// and looks its members up in the others.
    fn compute(&self, inputs: &mut impl Inputs) -> Result<Vec<(Bytes, f64)>, Reply> {
        let n = inputs.count();
        let weighted = |s: f64, w: f64| Some(s * w).filter(|v| !v.is_nan()).unwrap_or(0.0);
        let mut out: Vec<(Bytes, f64)> = match self.op {
            Op::Union => {
                let mut all: BTreeMap<Bytes, f64> = BTreeMap::new();
                for i in 0..n {
                    for (member, s) in inputs.items(i)? {
                        let s = weighted(s, self.weights[i]);
                        all.entry(member)
                            .and_modify(|t| *t = self.aggregate.apply(*t, s))
                            .or_insert(s);
                    }
                }
                all.into_iter().collect()
            }
            Op::Inter => {
                if (0..n).any(|i| inputs.size(i).is_none()) {
                    return Ok(Vec::new());
                }
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| inputs.size(i));
                let Some((&first, others)) = order.split_first() else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                'members: for (member, s) in inputs.items(first)? {
                    let mut total = weighted(s, self.weights[first]);
                    for &j in others {
                        let Some(other) = inputs.score(j, &member)? else {
                            continue 'members;
                        };
                        total = self
                            .aggregate
                            .apply(total, weighted(other, self.weights[j]));
                    }
                    out.push((member, total));
                    if out.len() == self.limit {
                        break;
                    }
                }
                out
            }
            Op::Diff => {
                if n == 0 || inputs.size(0).is_none() {
                    return Ok(Vec::new());
                }
                let mut out = Vec::new();
                'diff: for (member, s) in inputs.items(0)? {
                    for j in 1..n {
                        if inputs.size(j).is_some() && inputs.score(j, &member)?.is_some() {
                            continue 'diff;
                        }
                    }
                    out.push((member, s));
                }
                out
            }
        };
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::split_args as args;

    fn input(items: &[(&str, f64)]) -> Option<BTreeMap<Bytes, f64>> {
        Some(
            items
                .iter()
                .map(|(m, s)| (Bytes::from(m.to_string()), *s))
                .collect(),
        )
    }

    #[test]
    fn names_say_the_operation() {
        for (name, op) in [
            ("sinterstore", Op::Inter),
            ("SUNION", Op::Union),
            ("sdiff", Op::Diff),
            ("zunionstore", Op::Union),
            ("zinter", Op::Inter),
            ("ZDIFFSTORE", Op::Diff),
        ] {
            assert_eq!(Op::of(name.as_bytes()), op, "{name}");
        }
    }

    #[test]
    fn sorted_set_algebra_weighs_and_aggregates() {
        let mut inputs = Fetched(vec![
            input(&[("a", 1.0), ("b", 2.0)]),
            input(&[("b", 1.0), ("c", 1.0)]),
            None,
        ]);
        let z = ZAlgebra::parse(&args("zunion 3 x y z WEIGHTS 2 3 1 AGGREGATE MAX")).unwrap();
        let out = z.compute(&mut inputs).unwrap();
        let names: Vec<(&[u8], f64)> = out.iter().map(|(m, s)| (&m[..], *s)).collect();
        assert_eq!(names, vec![(&b"a"[..], 2.0), (b"c", 3.0), (b"b", 4.0)]);
        let z = ZAlgebra::parse(&args("zinter 2 x y")).unwrap();
        let mut two = Fetched(inputs.0[..2].to_vec());
        assert_eq!(z.compute(&mut two).unwrap(), vec![(Bytes::from("b"), 3.0)]);
        let card = ZAlgebra::parse(&args("zintercard 3 x y z")).unwrap();
        assert_eq!(card.compute(&mut inputs).unwrap(), vec![]);
    }

    #[test]
    fn set_algebra_stops_at_the_limit() {
        let mut inputs = Fetched(vec![
            input(&[("a", 1.0), ("b", 1.0), ("c", 1.0)]),
            input(&[("a", 1.0), ("b", 1.0), ("c", 1.0), ("d", 1.0)]),
        ]);
        let s = SetAlgebra::parse(&args("sintercard 2 x y LIMIT 2")).unwrap();
        assert_eq!(s.compute(&mut inputs).unwrap().len(), 2);
        let s = SetAlgebra::parse(&args("sdiff y x")).unwrap();
        let mut swapped = Fetched(vec![inputs.0[1].clone(), inputs.0[0].clone()]);
        assert_eq!(s.compute(&mut swapped).unwrap(), vec![Bytes::from("d")]);
    }
}
