//! Growing and shrinking a cluster, after `redis-cli --cluster`: `info`, `add-shard`,
//! `del-shard`, `rebalance`; and running a list of slot moves ([`perform`]) for them and for
//! `reshard`.

use crate::node::{self, Node};
use crate::reshard::{self, Request, Selection};
use crate::store::{Change, Store};
use crate::MoveArgs;
use anyhow::{anyhow, bail, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Runs moves one after the other, each checked against the topology as the previous one
/// left it; asks first (once, on a terminal, unless --yes).
pub async fn perform(
    store: &Store,
    moves: Vec<(String, String, Selection)>,
    pace: &MoveArgs,
    password: Option<String>,
) -> Result<ExitCode> {
    if moves.is_empty() {
        println!("nothing to move");
        return Ok(ExitCode::SUCCESS);
    }
    let request = |(from, to, slots): (String, String, Selection)| Request {
        from,
        to,
        slots,
        max_rate: (pace.max_rate > 0).then_some(pace.max_rate),
        batch: pace.batch,
        max_lag_ops: pace.max_lag_ops,
    };
    let requests: Vec<Request> = moves.into_iter().map(request).collect();
    // The first is checked now; later ones once the moves before them are done.
    let first = reshard::check(store, &requests[0])?;
    let summary: Vec<String> = requests
        .iter()
        .map(|r| {
            let what = match &r.slots {
                Selection::Count(n) => format!("{n} slots"),
                Selection::Slots(s) => format!("{} slots ({s})", s.len()),
            };
            format!("{what} from {} to {}", r.from, r.to)
        })
        .collect();
    if !pace.yes && !confirm(&format!("Move {}? (yes/no) ", summary.join(", then ")))? {
        println!("nothing moved");
        return Ok(ExitCode::FAILURE);
    }
    reshard::claim_ownership(store, password.clone()).await?;
    let mut plan = Some(first);
    for req in &requests {
        let checked = match plan.take() {
            Some(p) => p,
            None => reshard::check(store, req)?,
        };
        let recorded = reshard::record(store, checked)?;
        let report = reshard::run(store, &recorded, req, password.clone()).await?;
        if pace.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "moved {} slots from {} to {}: {} keys, {:.1} MB in {:.2} s ({:.0} keys/s); longest write pause {:.1} ms over {} batches{}",
                recorded.slots.len(),
                report.from,
                report.to,
                report.keys,
                report.bytes as f64 / 1e6,
                report.seconds,
                report.keys_per_second,
                report.max_pause_ms,
                report.batches,
                match report.retries {
                    0 => String::new(),
                    n => format!(", {n} batch(es) started over"),
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on a terminal; without one (scripts), the answer is yes.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// How many slots each shard should own: 16384 split by weight, the remainder to the
/// largest fractions (ties to the first listed).
fn shares(weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let slots = f64::from(fjord_common::SLOT_COUNT);
    let exact: Vec<f64> = weights.iter().map(|w| slots * w / total).collect();
    let mut share: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = usize::from(fjord_common::SLOT_COUNT) - share.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for i in order {
        if left == 0 {
            break;
        }
        if weights[i] > 0.0 {
            share[i] += 1;
            left -= 1;
        }
    }
    share
}

/// The moves that bring each shard from `owned` to `wanted` slots: the fullest gives to the
/// emptiest, as few moves as that takes.
fn balance(ids: &[String], owned: &[usize], wanted: &[usize]) -> Vec<(String, String, Selection)> {
    let mut surplus: Vec<i64> = owned
        .iter()
        .zip(wanted)
        .map(|(&o, &w)| o as i64 - w as i64)
        .collect();
    let mut moves = Vec::new();
    loop {
        let giver = (0..ids.len()).max_by_key(|&i| surplus[i]);
        let taker = (0..ids.len()).min_by_key(|&i| surplus[i]);
        let (Some(g), Some(t)) = (giver, taker) else {
            break;
        };
        let n = surplus[g].min(-surplus[t]);
        if n <= 0 {
            break;
        }
        moves.push((ids[g].clone(), ids[t].clone(), Selection::Count(n as usize)));
        surplus[g] -= n;
        surplus[t] += n;
    }
    moves
}

/// `rebalance`.
pub async fn rebalance(
    store: &Store,
    weights: &[String],
    threshold: f64,
    pace: &MoveArgs,
    password: Option<String>,
) -> Result<ExitCode> {
    let t = store.load()?.topology;
    let mut w = vec![1.0; t.shards.len()];
    for text in weights {
        let (id, value) = text
            .split_once('=')
            .ok_or_else(|| anyhow!("--weight {text}: write it ID=W"))?;
        let i = t
            .shards
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| anyhow!("--weight {text}: no shard {id:?}"))?;
        w[i] = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| anyhow!("--weight {text}: the weight is not a number ≥ 0"))?;
    }
    if w.iter().sum::<f64>() <= 0.0 {
        bail!("every weight is 0: some shard has to own the slots");
    }
    let wanted = shares(&w);
    let owned: Vec<usize> = t.shards.iter().map(|s| s.slots.len()).collect();
    let off = owned
        .iter()
        .zip(&wanted)
        .map(|(&o, &n)| (o as f64 - n as f64).abs() * 100.0 / (n.max(1) as f64))
        .fold(0.0, f64::max);
    if off <= threshold && w.iter().all(|&x| x > 0.0) {
        println!("balanced: no shard is more than {threshold}% from its share ({off:.1}% at most)");
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<String> = t.shards.iter().map(|s| s.id.clone()).collect();
    perform(store, balance(&ids, &owned, &wanted), pace, password).await
}

/// What `add-shard` records.
pub struct NewShard {
    pub id: String,
    pub addr: String,
    pub replicas: Vec<String>,
    pub admin: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// `add-shard`: checks the shard answers as an empty primary, then records it with no slot.
pub async fn add_shard(store: &Store, shard: &NewShard, password: Option<String>) -> Result<()> {
    let mut node = Node::new(&shard.addr, password.clone());
    let status = node
        .call(&["FJORD", "STATUS"], Duration::from_secs(5))
        .await
        .map_err(|e| anyhow!("{}: {e} (start its fjord-shard first)", shard.addr))
        .and_then(node::Status::parse)?;
    if !status.master {
        bail!(
            "{} is a replica (of {}): a new shard's primary must be a primary",
            shard.addr,
            status.primary
        );
    }
    let keys = node
        .call(&["DBSIZE"], Duration::from_secs(5))
        .await
        .map_err(|e| anyhow!("{}: {e}", shard.addr))
        .and_then(|f| node::number(&f))?;
    if keys > 0 {
        bail!("{} holds {keys} keys: a new shard starts empty (FLUSHALL it, or use another data folder)", shard.addr);
    }
    let (doc, _) = store.update(|e| {
        e.add_shard(shard)?;
        Ok(Change::Write)
    })?;
    // It owns no slot: it refuses every one, naming its owner.
    reshard::claim_ownership(store, password).await?;
    println!(
        "added shard {} ({}) with no slots; version {}. Give it slots with `fjord-admin rebalance` or `reshard --to {}`",
        shard.id,
        shard.addr,
        doc.version(),
        shard.id
    );
    Ok(())
}

/// `del-shard`.
pub async fn del_shard(
    store: &Store,
    id: &str,
    move_slots: bool,
    pace: &MoveArgs,
    password: Option<String>,
) -> Result<ExitCode> {
    let t = store.load()?.topology;
    let index = t
        .shards
        .iter()
        .position(|s| s.id == id)
        .ok_or_else(|| anyhow!("no shard {id:?} in {}", store))?;
    if t.shards.len() == 1 {
        bail!("{id} is the only shard");
    }
    if t.moving.is_some() {
        bail!("a move is under way or was interrupted: wait for it, or run `fjord-admin fix`");
    }
    let owned = t.shards[index].slots.len();
    if owned > 0 {
        if !move_slots {
            bail!("shard {id} owns {owned} slots: move them first (--move-slots, or reshard)");
        }
        let mut weights = vec![1.0; t.shards.len()];
        weights[index] = 0.0;
        let wanted = shares(&weights);
        let counts: Vec<usize> = t.shards.iter().map(|s| s.slots.len()).collect();
        // Only the leaving shard gives: each other one takes what it lacks of its share,
        // the emptiest first (what the others lack adds up to at least what it owns).
        let mut others: Vec<usize> = (0..t.shards.len()).filter(|&i| i != index).collect();
        others.sort_by_key(|&i| std::cmp::Reverse(wanted[i].saturating_sub(counts[i])));
        let mut left = owned;
        let mut moves = Vec::new();
        for i in others {
            let n = wanted[i].saturating_sub(counts[i]).min(left);
            if n > 0 {
                moves.push((id.to_string(), t.shards[i].id.clone(), Selection::Count(n)));
                left -= n;
            }
        }
        let code = perform(store, moves, pace, password).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    let (doc, _) = store.update(|e| {
        e.remove_shard(id)?;
        Ok(Change::Write)
    })?;
    println!(
        "removed shard {id}; version {}. Its process can be stopped now.",
        doc.version()
    );
    Ok(ExitCode::SUCCESS)
}

/// One shard's figures for `info`.
#[derive(serde::Serialize)]
struct ShardInfo {
    id: String,
    addr: String,
    slots: usize,
    keys: Option<u64>,
    memory_bytes: Option<u64>,
    disk_bytes: Option<u64>,
    replicas: usize,
    error: Option<String>,
}

/// `info`.
pub async fn info(store: &Store, json: bool, password: Option<String>) -> Result<()> {
    let t = store.load()?.topology;
    let mut rows = Vec::new();
    for s in &t.shards {
        let mut node = Node::new(&s.addr, password.clone());
        let mut row = ShardInfo {
            id: s.id.clone(),
            addr: s.addr.clone(),
            slots: s.slots.len(),
            keys: None,
            memory_bytes: None,
            disk_bytes: None,
            replicas: s.replicas.len(),
            error: None,
        };
        let keys = node.call(&["DBSIZE"], Duration::from_secs(5)).await;
        let text = node.call(&["INFO", "memory"], Duration::from_secs(5)).await;
        match (keys, text) {
            (Ok(k), Ok(text)) => {
                row.keys = node::number(&k).ok();
                let text = node::text(&text).unwrap_or_default();
                let field = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
                };
                row.memory_bytes = field("used_memory");
                row.disk_bytes = field("disk_bytes");
            }
            (Err(e), _) | (_, Err(e)) => row.error = Some(e.to_string()),
        }
        rows.push(row);
    }
    if json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    println!("{}: version {}", store, t.version);
    let mb = |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6));
    for r in &rows {
        println!(
            "  {} {}: {} slots, {} keys, memory {}, disk {}, {} replica(s){}",
            r.id,
            r.addr,
            r.slots,
            r.keys.map_or("-".to_string(), |k| k.to_string()),
            mb(r.memory_bytes),
            mb(r.disk_bytes),
            r.replicas,
            r.error
                .as_ref()
                .map_or(String::new(), |e| format!(" [ERR {e}]"))
        );
    }
    if let Some(m) = &t.moving {
        println!(
            "  moving: slots {} from {} to {} (epoch {})",
            m.slots, t.shards[m.from].id, t.shards[m.to].id, m.epoch
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(moves: &[(String, String, Selection)]) -> Vec<(String, String, usize)> {
        moves
            .iter()
            .map(|(f, t, s)| match s {
                Selection::Count(n) => (f.clone(), t.clone(), *n),
                Selection::Slots(s) => (f.clone(), t.clone(), s.len()),
            })
            .collect()
    }

    #[test]
    fn shares_split_every_slot_by_weight() {
        assert_eq!(shares(&[1.0, 1.0, 1.0]), vec![5462, 5461, 5461]);
        assert_eq!(shares(&[1.0; 4]), vec![4096; 4]);
        assert_eq!(shares(&[1.0, 0.0, 1.0]), vec![8192, 0, 8192]);
        assert_eq!(shares(&[3.0, 1.0]), vec![12288, 4096]);
        for w in [vec![1.0, 2.0, 3.0], vec![0.5, 0.25, 0.25, 7.0]] {
            assert_eq!(shares(&w).iter().sum::<usize>(), 16384);
        }
    }

    #[test]
    fn balance_moves_from_the_fullest_to_the_emptiest_and_ends_even() {
        let ids: Vec<String> = ["s1", "s2", "s3", "s4"].map(String::from).to_vec();
        let owned = [5462, 5461, 5461, 0];
        let wanted = shares(&[1.0; 4]);
        let moves = counts(&balance(&ids, &owned, &wanted));
        let mut after = owned.to_vec();
        for (from, to, n) in &moves {
            let (f, t) = (
                ids.iter().position(|i| i == from).unwrap(),
                ids.iter().position(|i| i == to).unwrap(),
            );
            after[f] -= n;
            after[t] += n;
        }
        assert_eq!(after, wanted);
        assert_eq!(moves.len(), 3, "{moves:?}");
        assert!(balance(&ids, &wanted, &wanted).is_empty());
    }
}
