//! Read-only commands over keys in several slots, on the standalone listener, where a client
//! expects what one Redis holding every key would answer (Redis Cluster refuses them with
//! CROSSSLOT, and so do fjord's cluster listeners). The proxy reads each key from its shard
//! and computes the answer itself, with the code the shard uses. As for an MGET split across
//! shards, each shard answers its part as it stands when asked: the reads are not one
//! instant.

use crate::router::{unexpected, Pending, Target};
use bytes::Bytes;
use fjord_common::command::Resolved;
use fjord_common::hll;
use fjord_common::{slot_of, CommandId, Reply};

/// Answers a [`fjord_common::command::Route::Gather`] command whose keys span slots.
pub fn gather(target: &Target, r: Resolved, args: Vec<Bytes>) -> Pending {
    let target = target.clone();
    Pending::Later(Box::pin(async move {
        let answer = match r.spec.id {
            CommandId::Pfcount => pfcount(&target, &args[1..]).await,
            other => unreachable!("{other:?} is not gathered"),
        };
        answer.unwrap_or_else(|e| e)
    }))
}

/// Each key's string value (`None` when missing); a key of another type is Redis's
/// WRONGTYPE, as GET answers it.
async fn values(target: &Target, keys: &[Bytes]) -> Vec<Result<Option<Bytes>, Reply>> {
    let requests = keys
        .iter()
        .map(|k| {
            let owner = target.routing.topology.owner(slot_of(k));
            (owner, vec![Bytes::from_static(b"GET"), k.clone()])
        })
        .collect();
    let asked = target.ask_each(requests).await;
    asked
        .replies()
        .await
        .into_iter()
        .map(|reply| match reply {
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
