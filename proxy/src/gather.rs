//! Read-only commands over keys in several slots, on the standalone listener, where a client
//! expects what one Redis holding every key would answer (Redis Cluster refuses them with
//! CROSSSLOT, and so do fjord's cluster listeners). The proxy reads each key from its shard
//! and computes the answer itself, with the code the shard uses. As for an MGET split across
//! shards, each shard answers its part as it stands when asked: the reads are not one
//! instant.

use crate::router::{unexpected, Pending, Target};
use bytes::Bytes;
use fjord_common::algebra::{Fetched, SetAlgebra, ZAlgebra};
use fjord_common::command::Resolved;
use fjord_common::hll;
use fjord_common::number::parse_f64;
use fjord_common::{error, slot_of, CommandId, Reply};
use std::collections::BTreeMap;

/// Answers a [`fjord_common::command::Route::Gather`] command whose keys span slots.
pub fn gather(target: &Target, r: Resolved, args: Vec<Bytes>) -> Pending {
    let target = target.clone();
    Pending::Later(Box::pin(async move {
        let answer = match r.spec.id {
            CommandId::Pfcount => pfcount(&target, &args[1..]).await,
            CommandId::Sinter | CommandId::Sunion | CommandId::Sdiff | CommandId::Sintercard => {
                set_algebra(&target, &args).await
            }
            CommandId::Zunion | CommandId::Zinter | CommandId::Zdiff | CommandId::Zintercard => {
                zset_algebra(&target, &args).await
            }
            other => unreachable!("{other:?} is not gathered"),
        };
        answer.unwrap_or_else(|e| e)
    }))
}

/// Sends one request per key to the key's shard (`request` makes it) and returns the
/// replies in key order.
async fn ask_per_key(
    target: &Target,
    keys: &[Bytes],
    mut request: impl FnMut(&Bytes) -> Option<Vec<Bytes>>,
) -> Vec<Option<Reply>> {
    let mut asked_for = Vec::with_capacity(keys.len());
    let mut requests = Vec::new();
    for k in keys {
        let req = request(k);
        asked_for.push(req.is_some());
        if let Some(args) = req {
            requests.push((target.routing.topology.owner(slot_of(k)), args));
        }
    }
    let mut replies = target.ask_each(requests).await.replies().await.into_iter();
    asked_for
        .into_iter()
        .map(|asked| if asked { replies.next() } else { None })
        .collect()
}

/// The inputs of the set or sorted-set algebra over `keys`, read whole from their shards:
/// first each key's type, checked in key order as Redis checks it (`allowed` types pass, a
/// missing key is `None`), then each existing key's members with their scores (1 for a set's).
/// A key that changes between the two reads answers as it is at the second: the reads are
/// not one instant.
async fn inputs(target: &Target, keys: &[Bytes], allowed: &[&str]) -> Result<Fetched, Reply> {
    let word = |w: &'static str| Bytes::from_static(w.as_bytes());
    let types = ask_per_key(target, keys, |k| Some(vec![word("TYPE"), k.clone()])).await;
    let mut kinds = Vec::with_capacity(keys.len());
    for reply in types {
        let kind = match reply {
            Some(Reply::Status(t)) => t.into_owned(),
            Some(e @ Reply::Error(_)) => return Err(e),
            other => return Err(unexpected(other.unwrap_or(Reply::Nil))),
        };
        if kind != "none" && !allowed.contains(&kind.as_str()) {
            return Err(Reply::error(error::WRONGTYPE));
        }
        kinds.push(kind);
    }
    let mut kind_of = kinds.iter();
    let contents = ask_per_key(target, keys, |k| match kind_of.next().map(String::as_str) {
        Some("set") => Some(vec![word("SMEMBERS"), k.clone()]),
        Some("zset") => Some(vec![
            word("ZRANGE"),
            k.clone(),
            word("0"),
            word("-1"),
            word("WITHSCORES"),
        ]),
        _ => None,
    })
    .await;
    let mut fetched = Vec::with_capacity(keys.len());
    for (reply, kind) in contents.into_iter().zip(&kinds) {
        let items = match reply {
            None => None,
            Some(Reply::Array(items)) => Some(items_of(items, kind == "zset")?),
            Some(e @ Reply::Error(_)) => return Err(e),
            Some(other) => return Err(unexpected(other)),
        };
        fetched.push(items);
    }
    Ok(Fetched(fetched))
}

/// SMEMBERS's members (scored 1) or ZRANGE … WITHSCORES's flat member, score list.
fn items_of(items: Vec<Reply>, scored: bool) -> Result<BTreeMap<Bytes, f64>, Reply> {
    let bulk = |r: Reply| match r {
        Reply::Bulk(b) => Ok(b),
        other => Err(unexpected(other)),
    };
    let mut out = BTreeMap::new();
    let mut items = items.into_iter();
    while let Some(member) = items.next() {
        let score = match scored {
            false => 1.0,
            true => {
                let text = bulk(items.next().unwrap_or(Reply::Nil))?;
                parse_f64(&text).ok_or_else(|| unexpected(Reply::Bulk(text)))?
            }
        };
        out.insert(bulk(member)?, score);
    }
    Ok(out)
}

/// SINTER, SUNION, SDIFF, SINTERCARD over keys in several slots.
async fn set_algebra(target: &Target, args: &[Bytes]) -> Result<Reply, Reply> {
    let cmd = SetAlgebra::parse(args)?;
    let mut inputs = inputs(target, &cmd.keys, &["set"]).await?;
    Ok(cmd.reply(cmd.compute(&mut inputs)?))
}

/// ZUNION, ZINTER, ZDIFF, ZINTERCARD over keys in several slots (sets are inputs too).
async fn zset_algebra(target: &Target, args: &[Bytes]) -> Result<Reply, Reply> {
    let cmd = ZAlgebra::parse(args)?;
    let mut inputs = inputs(target, &cmd.keys, &["set", "zset"]).await?;
    Ok(cmd.reply(cmd.compute(&mut inputs)?))
}

/// Each key's string value (`None` when missing); a key of another type is Redis's
/// WRONGTYPE, as GET answers it.
async fn values(target: &Target, keys: &[Bytes]) -> Vec<Result<Option<Bytes>, Reply>> {
    let get = |k: &Bytes| Some(vec![Bytes::from_static(b"GET"), k.clone()]);
    ask_per_key(target, keys, get)
        .await
        .into_iter()
        .map(|reply| match reply.unwrap_or(Reply::Nil) {
            Reply::Bulk(b) => Ok(Some(b)),
            Reply::Nil => Ok(None),
            e @ Reply::Error(_) => Err(e),
            other => Err(unexpected(other)),
        })
        .collect()
}

/// PFCOUNT of several keys: the cardinality of their union. Keys are checked in order, so
/// the first bad one is the one reported, as in Redis.
async fn pfcount(target: &Target, keys: &[Bytes]) -> Result<Reply, Reply> {
    let mut union = hll::Union::default();
    for value in values(target, keys).await {
        if let Some(value) = value? {
            union.add(&value).map_err(|e| Reply::error(e.text()))?;
        }
    }
    Ok(Reply::Int(union.count() as i64))
}
