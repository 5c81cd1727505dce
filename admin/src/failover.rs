//! `fjord-admin failover SHARD [--to ADDR]`: a graceful hand-over for maintenance, like
//! `CLUSTER FAILOVER`. The primary is fenced first (it takes no new write; clients get
//! `TRYAGAIN` and retry), the replica catches up with everything the primary committed —
//! so with everything it acknowledged —, then the replica is fenced, promoted and published,
//! and the old primary follows it. Nothing is lost; writes pause for the catch-up, the
//! promotion and the proxies' reload.
//!
//! If this command dies midway the shard's term is in the file with the old primary fenced:
//! a running controller rolls that back (confirms the old primary) once the term is a few
//! seconds old.

use crate::node::{array, number, Node, Status};
use crate::store::Store;
use anyhow::{anyhow, bail, Context, Result};
use std::time::{Duration, Instant};

const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the replica may take to catch up before the hand-over is abandoned.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

pub async fn run(
    store: &Store,
    id: &str,
    to: Option<&str>,
    password: Option<String>,
) -> Result<()> {
    let doc = store.load()?;
    let shard = doc
        .topology
        .shards
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| anyhow!("no shard {id} in {}", store))?;
    if shard.term == 0 {
        bail!("shard {id} has no term yet: a controller (`fjord-admin controller`) must manage it first");
    }
    let target = shard
        .replicas
        .iter()
        .filter(|r| r.in_sync)
        .find(|r| to.is_none_or(|a| a == r.addr))
        .map(|r| r.addr.clone())
        .ok_or_else(|| match to {
            Some(a) => anyhow!("{a} is not a replica of {id} recorded in sync"),
            None => anyhow!("shard {id} has no replica recorded in sync to hand over to"),
        })?;
    let mut primary = Node::new(&shard.addr, password.clone());
    let mut replica = Node::new(&target, password);
    let status = |frame| Status::parse(frame);
    let p = status(primary.call(&["FJORD", "STATUS"], CALL_TIMEOUT).await?)?;
    let r = status(replica.call(&["FJORD", "STATUS"], CALL_TIMEOUT).await?)?;
    let term = [shard.term, p.term, p.oplog_term, r.term, r.oplog_term]
        .into_iter()
        .max()
        .unwrap_or(0)
        + 1;
    if !store.take_term(id, shard.term, &shard.addr, term)? {
        bail!("shard {id} changed meanwhile (did a controller act?): run the command again");
    }
    let started = Instant::now();
    let t = term.to_string();
    let fenced = array(primary.call(&["FJORD", "FENCE", &t], CALL_TIMEOUT).await?)?;
    let last_id = fenced
        .get(1)
        .map(number)
        .transpose()?
        .context("FJORD FENCE: no last op")?;
    tracing::info!(shard = id, primary = %shard.addr, term, last_id, "primary fenced; waiting for the replica to catch up");
    loop {
        let r = status(replica.call(&["FJORD", "STATUS"], CALL_TIMEOUT).await?)?;
        if r.last_id >= last_id {
            break;
        }
        if started.elapsed() > CATCH_UP_LIMIT {
            bail!("{target} did not catch up with op {last_id} within {CATCH_UP_LIMIT:?} (it holds {}); {} stays fenced until a controller confirms it again", r.last_id, shard.addr);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    replica.call(&["FJORD", "FENCE", &t], CALL_TIMEOUT).await?;
    replica
        .call(&["FJORD", "PROMOTE", &t], CALL_TIMEOUT)
        .await?;
    let version = store.publish_primary(id, term, &target)?.ok_or_else(|| {
        anyhow!("shard {id} changed before the publication; a controller will finish or roll back")
    })?;
    primary
        .call(&["FJORD", "FOLLOW", &t, &target], CALL_TIMEOUT)
        .await?;
    println!(
        "shard {id}: {target} is the primary at term {term} (cluster file version {version}; writes paused {} ms on the shard); {} follows it",
        started.elapsed().as_millis(),
        shard.addr
    );
    Ok(())
}
