//! SORT and SORT_RO whose BY or GET patterns name other keys, which may live on any shard.
//!
//! The proxy reads the collection from its shard (`TYPE`, then `SORT_RO key BY nosort`: its
//! elements in its own order), the values the patterns name from wherever they are (an MGET
//! split per shard for keys, an HGET per hash field), and orders them with the code the
//! shard itself sorts with ([`fjord_common::sort`]), so the answer is what one Redis holding
//! every key would give. A STORE is written to the destination's shard in one commit
//! (`FJORD STORELIST`), wherever its slot is: unlike Redis Cluster, fjord needs no common
//! slot for it (nor for MGET or MSET). Unlike one Redis, the reads are not one instant: each
//! shard answers its part as it stands then, as for an MGET split across shards.
//!
//! SORT without such patterns, storing (if at all) in the key's slot, goes to the key's shard
//! as it is.

use crate::router::{self, unexpected, Pending, Target};
use bytes::Bytes;
use fjord_common::command::{self, Merge, Resolved};
use fjord_common::sort::{Lookup, SortSpec, Source};
use fjord_common::{error, slot_of, CommandId, Proto, Reply};
use std::collections::HashMap;

/// Whether this SORT is the proxy's to answer: its options parse, and a pattern names other
/// keys or it stores into another slot. (Badly formed options go to the shard, which answers
/// Redis's error.)
pub fn resolved_here(r: Resolved, args: &[Bytes]) -> bool {
    SortSpec::parse(args, r.spec.id == CommandId::SortRo).is_ok_and(|s| {
        let elsewhere = s
            .store
            .as_ref()
            .is_some_and(|d| slot_of(d) != slot_of(&args[1]));
        s.reads_other_keys() || elsewhere
    })
}

/// Answers a SORT that [`resolved_here`] says is the proxy's.
pub async fn sort(target: &Target, r: Resolved, args: Vec<Bytes>) -> Pending {
    let shard = target.routing.topology.owner(slot_of(&args[1]));
    let spec = match SortSpec::parse(&args, r.spec.id == CommandId::SortRo) {
        Ok(spec) => spec,
        Err(e) => return Reply::error(e).into(),
    };
    let target = target.clone();
    let key = args[1].clone();
    Pending::Later(Box::pin(async move {
        run(&target, shard, &spec, key).await.unwrap_or_else(|e| e)
    }))
}

async fn run(target: &Target, shard: usize, spec: &SortSpec, key: Bytes) -> Result<Reply, Reply> {
    let source = match ask(target, shard, request(&[b"TYPE", &key])).await? {
        Reply::Status(t) => match &*t {
            "list" | "none" => Source::List,
            "set" => Source::Set,
            "zset" => Source::ZSet,
            _ => return Err(Reply::error(error::WRONGTYPE)),
        },
        other => return Err(unexpected(other)),
    };
    let elements = bulks(
        ask(
            target,
            shard,
            request(&[b"SORT_RO", &key, b"BY", b"nosort"]),
        )
        .await?,
    )?;
    let weights = match &spec.by {
        Some(pattern) => {
            let wanted: Vec<Lookup> = elements
                .iter()
                .map(|e| fjord_common::sort::lookup(pattern, e))
                .collect();
            fetch(target, wanted).await?
        }
        None => HashMap::new(),
    };
    let ordered = spec
        .order(source, elements, |l| weights.get(l).cloned().flatten())
        .map_err(Reply::error)?;
    let wanted: Vec<Lookup> = ordered
        .iter()
        .flat_map(|e| spec.gets.iter().map(|p| fjord_common::sort::lookup(p, e)))
        .collect();
    let values = fetch(target, wanted).await?;
    let out = spec.output(&ordered, |l| values.get(l).cloned().flatten());
    let Some(dest) = &spec.store else {
        return Ok(Reply::Array(
            out.into_iter()
                .map(|v| v.map_or(Reply::Nil, Reply::Bulk))
                .collect(),
        ));
    };
    let mut store = request(&[b"FJORD", b"STORELIST", dest]);
    store.extend(out.into_iter().map(Option::unwrap_or_default));
    let owner = target.routing.topology.owner(slot_of(dest));
    ask(target, owner, store).await
}

/// The values `lookups` name, each read once: keys by an MGET split per shard (which gives
/// nothing for a key that is not a string), hash fields by an HGET each (nothing for a key
/// that is not a hash).
async fn fetch(
    target: &Target,
    lookups: Vec<Lookup>,
) -> Result<HashMap<Lookup, Option<Bytes>>, Reply> {
    let mut found: HashMap<Lookup, Option<Bytes>> = HashMap::new();
    let (mut keys, mut fields) = (Vec::new(), Vec::new());
    for l in lookups {
        if found.contains_key(&l) {
            continue;
        }
        match &l {
            Lookup::Key(k) => keys.push(Bytes::copy_from_slice(k)),
            Lookup::Field(..) => fields.push(l.clone()),
            Lookup::Element | Lookup::Nothing => {}
        }
        found.insert(l, None);
    }
    // Every HGET is queued before any answer is awaited, and with the MGET's parts.
    let requests = fields
        .iter()
        .map(|l| {
            let Lookup::Field(k, f) = l else {
                unreachable!("only fields here")
            };
            let args = vec![
                Bytes::from_static(b"HGET"),
                Bytes::copy_from_slice(k),
                Bytes::copy_from_slice(f),
            ];
            (target.routing.topology.owner(slot_of(k)), args)
        })
        .collect();
    let hgets = target.ask_each(requests).await;
    if !keys.is_empty() {
        let mut args = vec![Bytes::from_static(b"MGET")];
        args.extend(keys.iter().cloned());
        let mget = command::resolve(&args).map_err(Reply::error)?;
        let reply = router::split(
            target,
            mget,
            Merge::Values,
            args,
            None,
            |_: usize, _: usize| {},
        )
        .await
        .resolve()
        .await;
        let Reply::Array(values) = reply else {
            return Err(match reply {
                e @ Reply::Error(_) => e,
                other => unexpected(other),
            });
        };
        for (k, v) in keys.into_iter().zip(values) {
            let value = match v {
                Reply::Bulk(b) => Some(b),
                _ => None,
            };
            found.insert(Lookup::Key(k.to_vec()), value);
        }
    }
    for (l, reply) in fields.into_iter().zip(hgets.replies().await) {
        let value = match reply {
            Reply::Bulk(b) => Some(b),
            Reply::Error(e) if e.starts_with("WRONGTYPE") => None,
            e @ Reply::Error(_) => return Err(e),
            _ => None,
        };
        found.insert(l, value);
    }
    Ok(found)
}

/// `args` sent to `shard`, following a refusal to the slot's owner; an error reply is `Err`.
async fn ask(target: &Target, shard: usize, args: Vec<Bytes>) -> Result<Reply, Reply> {
    let reply = target.send(shard, &args).await.resolve().await;
    match target.follow(shard, &args, reply, Proto::Resp2).await {
        e @ Reply::Error(_) => Err(e),
        r => Ok(r),
    }
}

fn request(words: &[&[u8]]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::copy_from_slice(w)).collect()
}

fn bulks(reply: Reply) -> Result<Vec<Bytes>, Reply> {
    match reply {
        Reply::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Reply::Bulk(b) => Ok(b),
                other => Err(unexpected(other)),
            })
            .collect(),
        other => Err(unexpected(other)),
    }
}
