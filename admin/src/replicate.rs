//! `fjord-admin replicate SHARD ADDR [--replace OLD]`: adds a replica to a shard, or puts one
//! in place of a dead one. The new shard process must already run (`fjord-shard --listen ADDR
//! --data-dir DIR`; whatever it holds is replaced by the primary's data). This command only
//! records it in the topology (not in sync) and then reports progress: the controller, which
//! alone sets roles, attaches it to the primary (`FJORD FOLLOW`), it full-syncs while writes
//! go on, and once the primary counts it in sync the controller records it so, which is when
//! this command exits. Until then it is never promoted.

use crate::node::{Node, Status};
use crate::store::{Change, Store};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long without any sign of a controller before saying so.
const NO_CONTROLLER_HINT: Duration = Duration::from_secs(10);

/// What to add.
pub struct Request {
    pub shard: String,
    pub addr: String,
    pub admin: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// The replica the new one takes the place of (it must not answer).
    pub replace: Option<String>,
    /// How long to wait for the replica to be recorded in sync.
    pub timeout: Duration,
}

pub async fn run(store: &Store, req: &Request, password: Option<String>) -> Result<()> {
    let mut new = Node::new(&req.addr, password.clone());
    if let Err(e) = status(&mut new).await {
        bail!(
            "{} does not answer ({e:#}): start it first, e.g. fjord-shard --listen {} --data-dir DIR",
            req.addr,
            req.addr
        );
    }
    if let Some(old) = &req.replace {
        if status(&mut Node::new(old, password.clone())).await.is_ok() {
            bail!(
                "{old} still answers: stop it first, or add {} without --replace",
                req.addr
            );
        }
    }
    let (doc, _) = store.update(|e| {
        e.add_replica(
            &req.shard,
            &req.addr,
            req.admin.as_deref(),
            req.data_dir.as_deref(),
            req.replace.as_deref(),
        )?;
        Ok(Change::Write)
    })?;
    println!(
        "{}: {} recorded as a replica of {} (version {}){}; waiting for the controller to attach it and for it to catch up",
        store,
        req.addr,
        req.shard,
        doc.version(),
        req.replace
            .as_ref()
            .map(|o| format!(" in place of {o}"))
            .unwrap_or_default()
    );
    let started = Instant::now();
    let mut hinted = false;
    let mut last_line = String::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let doc = store.load()?;
        let Some(shard) = doc.topology.shards.iter().find(|s| s.id == req.shard) else {
            bail!("shard {} is gone from the cluster file", req.shard);
        };
        if shard.addr == req.addr {
            println!(
                "{} is now the shard's primary (a failover promoted it)",
                req.addr
            );
            return Ok(());
        }
        let Some(entry) = shard.replicas.iter().find(|r| r.addr == req.addr) else {
            bail!("{} was taken out of the cluster file meanwhile", req.addr);
        };
        if entry.in_sync {
            println!(
                "{} is in sync with {} and recorded so, after {:.1} s",
                req.addr,
                shard.addr,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        let mine = status(&mut new).await.ok();
        let primary = status(&mut Node::new(&shard.addr, password.clone()))
            .await
            .ok();
        let line = match (&mine, &primary) {
            (Some(m), Some(p)) if !m.master => format!(
                "  link {}, at op {} of the primary's {}",
                m.link, m.last_id, p.last_id
            ),
            (Some(_), _) => "  not attached yet".to_string(),
            (None, _) => format!("  {} does not answer", req.addr),
        };
        if line != last_line {
            println!("{line}");
            last_line = line;
        }
        let attached = mine.as_ref().is_some_and(|m| !m.master);
        if !attached && !hinted && started.elapsed() > NO_CONTROLLER_HINT {
            println!(
                "  (nothing has attached it: is `fjord-admin controller` running on this file?)"
            );
            hinted = true;
        }
        if started.elapsed() > req.timeout {
            bail!(
                "{} is not in sync after {} s; it stays in the file, and the controller goes on",
                req.addr,
                req.timeout.as_secs()
            );
        }
    }
}

async fn status(node: &mut Node) -> Result<Status> {
    Status::parse(node.call(&["FJORD", "STATUS"], CALL_TIMEOUT).await?)
}
