//! `fjord-admin controller`: the daemon that keeps each shard's roles as the topology says
//! and fails a dead primary over to an in-sync replica without losing an acknowledged write.
//!
//! Every `probe_every` it asks every shard process for `FJORD STATUS`. A refused or reset
//! connection counts as dead at once; silence only after `misses` probes in a row. Nothing
//! else (process supervision, the proxy) informs it. Then each shard whose last work is
//! over gets its next, in a task of its own, so that one shard's failover (a lease wait, a
//! command to a process that went silent) never holds up another's:
//!
//! - **Steady state.** The primary serves at the shard's term, each replica follows it at that
//!   term. A shard that is not so is put right: `FJORD PROMOTE` confirms a primary (after its
//!   restart, or when the controller first adopts an unmanaged shard with a new term),
//!   `FJORD FOLLOW` attaches a replica (an old primary included).
//! - **The in-sync record.** `replicas[].in_sync` in the topology is the durable record of the
//!   replicas that hold every acknowledged write. A replica the primary reports in sync is
//!   added on the primary first (`FJORD ISR`), then in the record; one that fell out is taken
//!   out of the record first, then off the primary. So the record never names a replica the
//!   primary did not wait for.
//! - **Failover.** A dead primary's shard gets a new term by compare-and-swap on the store;
//!   the recorded in-sync replicas are fenced with it (from then on the old primary can
//!   acknowledge nothing); the fenced one with the highest (last term, last op id) is
//!   promoted; then the topology is published with it as the primary (version+1), which
//!   proxies pick up by hot reload. A controller that died midway finds, on its next run, a
//!   replica already serving at the shard's term (it publishes it) or none (it rolls back by
//!   confirming the old primary if that one is alive, or fails over again with a newer term).
//!
//! Elected through etcd, the controller opens each shard connection with `FJORD LEADER`, its
//! leadership key's create revision: a shard that has seen a newer leader refuses its
//! commands (see the shard's `repl::control`).
//!
//! A primary that is silent rather than gone may be frozen and wake up: the controller waits
//! out its lease ([`LEASE`]) after fencing, so that by the time another primary serves, the
//! old one serves nothing (its lease is renewed only by acknowledgements of the replicas
//! just fenced). The lease ran from a stamp the primary read before a fenced replica's last
//! acknowledgement of it, so only what is left of it from that acknowledgement (which the
//! fence reports, on the replica's clock) is waited, with a margin for clock rates: a
//! primary silent for several probes has usually used up its lease already.

use crate::metrics::AdminMetrics;
use crate::node::{array, number, CallError, Node, Status};
use crate::store::Store;
use anyhow::{anyhow, bail, Result};
use fjord_common::etcd::{Etcd, Held, Lease};
use fjord_common::repl::LEASE;
use fjord_common::topology::{ReplicationPolicy, Shard, Topology};
use redis_protocol::resp2::types::BytesFrame;
use std::collections::{HashMap, HashSet};
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an elected controller's lease outlives its last renewal: a controller killed or
/// frozen is replaced about this long after, and a frozen one's writes are refused by then.
const LEADER_TTL: Duration = Duration::from_secs(2);

/// Runs the controller on `store`. With etcd, several controllers campaign on a lease and
/// only the elected one acts; all of its topology writes apply only while it still holds its
/// leadership key, so one deposed (its lease expired while it was frozen or cut off) can
/// write nothing. On losing the lease it stops acting and campaigns again.
pub async fn serve(
    store: Store,
    opts: Options,
    metrics: Arc<AdminMetrics>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    let Some(etcd) = store.etcd_client().cloned() else {
        metrics.leader.set(1);
        return Controller::new(store, opts, metrics).run(stop).await;
    };
    let me = format!("pid {} on {}", std::process::id(), hostname());
    tracing::info!(%me, "campaigning to be the acting controller");
    loop {
        metrics.leader.set(0);
        let lease = tokio::select! {
            _ = &mut stop => return Ok(()),
            lease = elected(&etcd, &me) => lease,
        };
        let Some((lease, held)) = lease else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tracing::info!(%me, "elected: this controller acts");
        metrics.leader.set(1);
        let controller = Controller::new(
            store.holding(held.clone()),
            opts.clone(),
            Arc::clone(&metrics),
        );
        // Watched in a task of its own: while etcd cannot answer, each of the acting
        // controller's store calls holds this thread for seconds, and losing the lead must
        // show (log, metric) at once all the same. Its writes are refused meanwhile anyway:
        // they are conditional on the leadership key.
        let (lost_tx, lost) = tokio::sync::oneshot::channel();
        let watch = tokio::spawn({
            let (etcd, me, metrics) = (etcd.clone(), me.clone(), Arc::clone(&metrics));
            async move {
                let why = deposed(&etcd, lease, held).await;
                metrics.leader.set(0);
                tracing::warn!(%me, "lost the leadership ({why}): no longer acting; campaigning again");
                let _ = lost_tx.send(());
            }
        });
        tokio::select! {
            r = controller.run(&mut stop) => {
                watch.abort();
                return r;
            }
            _ = lost => {}
        }
    }
}

/// Returns once this controller no longer leads: its lease expired, or its leadership key is
/// gone (etcd deleted it; the controller's writes are then refused, so it must not go on
/// believing it acts).
async fn deposed(etcd: &Etcd, lease: Lease, held: Held) -> &'static str {
    let mut alive = lease.alive.clone();
    let key = String::from_utf8_lossy(&held.key).into_owned();
    loop {
        tokio::select! {
            changed = alive.changed() => {
                if changed.is_err() || !*alive.borrow_and_update() {
                    return "its lease expired";
                }
            }
            _ = tokio::time::sleep(LEADER_TTL / 4) => {
                if let Ok(false) = etcd.exists(key.clone()).await {
                    return "its leadership key is gone";
                }
            }
        }
    }
}

/// Campaigns once on a new lease; returns once elected, or `None` if the campaign failed
/// (its request timed out: etcd answers a campaign only once it leads) or the lease was lost
/// meanwhile. Each campaign takes a new lease because etcd withdraws a campaign whose
/// request was cancelled by deleting that lease's key, possibly after a campaign retried on
/// the same lease had made the key again: that controller would then act without a key, and
/// every write it made would be refused.
async fn elected(etcd: &Etcd, me: &str) -> Option<(Lease, Held)> {
    let lease = match etcd.lease(LEADER_TTL).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("{e}; campaigning later");
            return None;
        }
    };
    tracing::debug!(%me, lease = lease.id, "campaigning to be the acting controller");
    match etcd
        .campaign(etcd.url.election(), me.to_string(), lease.id)
        .await
    {
        Ok(held) if *lease.alive.borrow() => Some((lease, held)),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("{e}; campaigning again");
            None
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// How the controller probes.
#[derive(Clone, Debug)]
pub struct Options {
    pub probe_every: Duration,
    /// Probes in a row without an answer after which a shard counts as dead.
    pub misses: u32,
    /// The shards' password, if they have one.
    pub password: Option<String>,
    /// How long a recorded move's mover may leave its lease unrenewed before the controller
    /// runs `fix` on it.
    pub abandoned_move: Duration,
}

/// What the probes say about a shard process.
#[derive(Clone, Debug)]
enum Health {
    Up(Status),
    /// `crashed`: its connection was refused or reset (nothing listens: the process is gone),
    /// rather than silent past the probes (it may be frozen, and wake up).
    Dead {
        crashed: bool,
    },
    /// Silent, not yet for long enough.
    Unsure,
}

struct Probed {
    node: Node,
    /// Silent probes in a row.
    misses: u32,
    last: Option<Result<Status, String>>,
    gone: bool,
}

/// What a shard's work keeps from one round to the next: connections of its own, apart
/// from the probes' (a command waiting on a slow process never delays a probe), and how
/// many rounds in a row each replica has been lagging.
#[derive(Default)]
struct ShardLinks {
    nodes: HashMap<String, Node>,
    /// Rounds in a row its primary reported the replica out of sync while the record says
    /// in sync.
    lagging: HashMap<String, u32>,
}

/// A shard's work: idle between rounds, or under way in a task of its own.
enum Work {
    Idle(ShardLinks),
    Running(tokio::task::JoinHandle<(ShardLinks, Result<()>)>),
}

pub struct Controller {
    store: Store,
    opts: Options,
    metrics: Arc<AdminMetrics>,
    probes: HashMap<String, Probed>,
    /// Problems already logged, so that a standing one is logged once.
    reported: HashSet<String>,
    /// Terms this controller allocated, with their shard's id: terms are per shard, so two
    /// shards may hold the same number. Shared with the shards' work.
    own_terms: Arc<Mutex<HashSet<(String, u64)>>>,
    /// `fjord-admin controller pause` is in force (read every round).
    paused: bool,
    /// Each shard's term in the file, and when this controller first saw it.
    terms_seen: HashMap<String, (u64, Instant)>,
    /// Shards logged as degraded (fewer replicas recorded in sync than listed).
    degraded: HashSet<String>,
    /// The file's `replication` section, as read this round.
    policy: ReplicationPolicy,
    /// When this controller first saw the move recorded now (`None`: none is).
    move_seen: Option<Instant>,
    /// `fix` of an abandoned move, running.
    fixing: Option<tokio::task::JoinHandle<()>>,
    /// Per shard id.
    work: HashMap<String, Work>,
}

/// What may be left of a frozen primary's lease, on this controller's clock, when a fenced
/// replica last acknowledged it `since_ack` ago on its own. The lease is [`LEASE`] on the
/// primary's clock from a stamp read before that acknowledgement. With clock rates up to
/// 10% apart, the lease ends at most 1.1 x LEASE after the acknowledgement in real time, of
/// which at least since_ack / 1.1 has passed; a sleep of W on this clock lasts at least
/// W / 1.1, so W = 1.21 x LEASE - since_ack suffices, plus 50 ms for the fence's round trip.
fn lease_left(since_ack: Duration) -> Duration {
    (LEASE * 121 / 100 + Duration::from_millis(50)).saturating_sub(since_ack)
}

/// How long a term another controller took is given before this one starts a failover with a
/// newer term: that one's lease wait and a few probes. Without it, two controllers would keep fencing each other's
/// term during the lease wait.
const OTHERS_FAILOVER_GRACE: Duration = Duration::from_millis(3000);

impl Controller {
    pub fn new(store: Store, opts: Options, metrics: Arc<AdminMetrics>) -> Self {
        Self {
            store,
            opts,
            metrics,
            probes: HashMap::new(),
            reported: HashSet::new(),
            own_terms: Arc::default(),
            paused: false,
            terms_seen: HashMap::new(),
            policy: Default::default(),
            degraded: HashSet::new(),
            move_seen: None,
            fixing: None,
            work: HashMap::new(),
        }
    }

    /// Runs until `stop` resolves.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(self.opts.probe_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(file = %self.store, probe_every_ms = self.opts.probe_every.as_millis() as u64, misses = self.opts.misses, "controller running");
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tick.tick() => {}
            }
            if let Err(e) = self.round().await {
                self.report("round", format!("{e:#}"));
            }
        }
    }

    /// One probe of every shard process, then, for each shard whose last work is over, its
    /// next work in a task of its own: one shard's failover (a lease wait, a command to a
    /// process that went silent) never holds up another's.
    async fn round(&mut self) -> Result<()> {
        // Work that ended before this round's file read and probes: a shard's next work
        // must see what its last one did (a failover's publication, a promoted replica),
        // never a file or a probe from before it ended.
        self.harvest().await;
        let doc = self.store.load()?;
        let paused = self.store.paused()?;
        if paused != self.paused {
            tracing::warn!(
                paused,
                "controllers {}",
                if paused {
                    "paused: no failover until resumed"
                } else {
                    "resumed"
                }
            );
            self.paused = paused;
        }
        self.metrics.paused.set(i64::from(paused));
        self.forget("round");
        self.policy = doc.topology.replication;
        self.probe_all(&doc.topology).await;
        self.fix_abandoned_move(&doc.topology, paused);
        self.work.retain(|id, work| {
            let listed = doc.topology.shards.iter().any(|s| &s.id == id);
            if let (false, Work::Running(task)) = (listed, &work) {
                task.abort();
            }
            listed
        });
        for shard in &doc.topology.shards {
            // A term found at start is old news; only a change seen while running is recent.
            let long_ago = Instant::now()
                .checked_sub(OTHERS_FAILOVER_GRACE)
                .unwrap_or_else(Instant::now);
            let seen = self
                .terms_seen
                .entry(shard.id.clone())
                .or_insert((shard.term, long_ago));
            if seen.0 != shard.term {
                *seen = (shard.term, Instant::now());
            }
            self.observe(shard);
            let Some(mut links) = self.idle_links(&shard.id) else {
                continue;
            };
            let found = self.health_of(shard);
            links.nodes.retain(|a, _| found.contains_key(a));
            links.lagging.retain(|a, _| found.contains_key(a));
            if self.someone_else_acts(shard) {
                self.work.insert(shard.id.clone(), Work::Idle(links));
                continue;
            }
            let mut job = ShardJob {
                store: self.store.clone(),
                opts: self.opts.clone(),
                metrics: Arc::clone(&self.metrics),
                policy: self.policy,
                paused,
                own_terms: Arc::clone(&self.own_terms),
                found,
                links,
            };
            let shard = shard.clone();
            let id = shard.id.clone();
            let task = tokio::spawn(async move {
                let result = job.reconcile(&shard).await;
                (job.links, result)
            });
            self.work.insert(id, Work::Running(task));
        }
        Ok(())
    }

    /// Turns each shard's finished work into idle links, reporting how it ended.
    async fn harvest(&mut self) {
        let done: Vec<String> = self
            .work
            .iter()
            .filter(|(_, w)| matches!(w, Work::Running(task) if task.is_finished()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            let Some(Work::Running(task)) = self.work.remove(&id) else {
                continue;
            };
            let key = format!("shard {id}");
            let links = match task.await {
                Ok((links, Ok(()))) => {
                    self.forget(&key);
                    links
                }
                Ok((links, Err(e))) => {
                    self.report(&key, format!("shard {id}: {e:#}"));
                    links
                }
                Err(e) => {
                    self.report(&key, format!("shard {id}: its work ended: {e}"));
                    ShardLinks::default()
                }
            };
            self.work.insert(id, Work::Idle(links));
        }
    }

    /// The shard's links if none of its work is under way.
    fn idle_links(&mut self, id: &str) -> Option<ShardLinks> {
        match self.work.remove(id) {
            None => Some(ShardLinks::default()),
            Some(Work::Idle(links)) => Some(links),
            Some(running) => {
                self.work.insert(id.to_string(), running);
                None
            }
        }
    }

    /// A recorded move whose mover's lease went stale (it died) is finished or rolled back
    /// by `fix`, in a task of its own so that probing and failing over go on meanwhile.
    fn fix_abandoned_move(&mut self, topology: &Topology, paused: bool) {
        if self.fixing.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Some(m) = &topology.moving else {
            self.move_seen = None;
            return;
        };
        let seen = *self.move_seen.get_or_insert_with(Instant::now);
        let age = self
            .store
            .mover_lease_age()
            .unwrap_or_else(|| seen.elapsed());
        let after = self.opts.abandoned_move;
        if paused || age < after || seen.elapsed() < after {
            return;
        }
        tracing::warn!(slots = %m.slots, epoch = m.epoch, lease_age_s = age.as_secs(), "a move's mover stopped renewing its lease; fixing the move");
        let (store, password) = (self.store.clone(), self.opts.password.clone());
        self.fixing = Some(tokio::spawn(async move {
            match crate::reshard::fix(&store, password).await {
                Ok(Some(done)) => tracing::info!(%done, "fixed an abandoned move"),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "fixing an abandoned move failed; trying again later")
                }
            }
        }));
    }

    async fn probe_all(&mut self, topology: &Topology) {
        let addrs: Vec<String> = topology
            .shards
            .iter()
            .flat_map(|s| {
                std::iter::once(s.addr.clone()).chain(s.replicas.iter().map(|r| r.addr.clone()))
            })
            .collect();
        self.probes.retain(|a, _| addrs.contains(a));
        let timeout = self.opts.probe_every;
        let mut tasks = Vec::new();
        for addr in &addrs {
            let mut probed = self.probes.remove(addr).unwrap_or_else(|| Probed {
                node: Node::new(addr, self.opts.password.clone())
                    .speaking_for(self.store.leader_term()),
                misses: 0,
                last: None,
                gone: false,
            });
            tasks.push(tokio::spawn(async move {
                let r = probed.node.call(&["FJORD", "STATUS"], timeout).await;
                match r {
                    Ok(frame) => {
                        probed.misses = 0;
                        probed.gone = false;
                        probed.last = Some(Status::parse(frame).map_err(|e| e.to_string()));
                    }
                    Err(CallError::Silent) => probed.misses += 1,
                    Err(CallError::Gone(why)) => {
                        probed.gone = true;
                        probed.last = Some(Err(why));
                    }
                    Err(CallError::Refused(e)) => {
                        probed.misses = 0;
                        probed.gone = false;
                        probed.last = Some(Err(e));
                    }
                }
                probed
            }));
        }
        for task in tasks {
            if let Ok(p) = task.await {
                let result = match (&p.last, p.misses, p.gone) {
                    (_, _, true) => "gone",
                    (_, m, _) if m > 0 => "silent",
                    (Some(Ok(_)), ..) => "ok",
                    _ => "refused",
                };
                self.metrics.probes.with_label_values(&[result]).inc();
                self.probes.insert(p.node.addr.clone(), p);
            }
        }
    }

    /// Whether another actor (a controller, `fjord-admin failover`) took the shard's term
    /// moments ago: it may be midway through a failover or a hand-over, which this one must
    /// not undo. After [`OTHERS_FAILOVER_GRACE`] this one finishes or rolls back what is left.
    fn someone_else_acts(&self, shard: &Shard) -> bool {
        let since = self
            .terms_seen
            .get(&shard.id)
            .map_or(Duration::MAX, |(_, at)| at.elapsed());
        !self
            .own_terms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(shard.id.clone(), shard.term))
            && since < OTHERS_FAILOVER_GRACE
    }

    fn observe(&mut self, shard: &Shard) {
        let listed = shard.replicas.len();
        let in_sync = recorded(shard).len();
        let degraded = in_sync < listed;
        if degraded && self.degraded.insert(shard.id.clone()) {
            tracing::warn!(shard = %shard.id, in_sync, replicas = listed, "shard degraded: fewer replicas recorded in sync than the file lists");
        } else if !degraded && self.degraded.remove(&shard.id) {
            tracing::info!(shard = %shard.id, in_sync, replicas = listed, "shard no longer degraded: every replica recorded in sync");
        }
        let m = &self.metrics;
        let id = shard.id.as_str();
        m.degraded.with_label_values(&[id]).set(i64::from(degraded));
        m.term.with_label_values(&[id]).set(shard.term as i64);
        let up = matches!(self.health(&shard.addr), Health::Up(s) if s.master && s.serving);
        m.primary_up.with_label_values(&[id]).set(i64::from(up));
        m.recorded_in_sync
            .with_label_values(&[id])
            .set(recorded(shard).len() as i64);
        // Every shard's failover series exist from the start, at 0.
        for outcome in ["done", "failed"] {
            m.failovers.with_label_values(&[id, outcome]);
        }
    }

    fn health(&self, addr: &str) -> Health {
        match self.probes.get(addr) {
            Some(p) if p.gone => Health::Dead { crashed: true },
            Some(p) if p.misses >= self.opts.misses => Health::Dead { crashed: false },
            Some(p) if p.misses > 0 => Health::Unsure,
            Some(Probed {
                last: Some(Ok(s)), ..
            }) => Health::Up(s.clone()),
            _ => Health::Unsure,
        }
    }

    /// The health of the shard's processes, as this round's probes found them.
    fn health_of(&self, shard: &Shard) -> HashMap<String, Health> {
        std::iter::once(&shard.addr)
            .chain(shard.replicas.iter().map(|r| &r.addr))
            .map(|a| (a.clone(), self.health(a)))
            .collect()
    }

    fn report(&mut self, key: &str, message: String) {
        let entry = format!("{key}\u{0}{message}");
        if self.reported.insert(entry) {
            tracing::error!("{message}");
        }
    }

    fn forget(&mut self, key: &str) {
        let prefix = format!("{key}\u{0}");
        self.reported.retain(|r| !r.starts_with(&prefix));
    }
}

impl Drop for Controller {
    /// A controller that stops (deposed, or shutting down) leaves no work of its own behind.
    fn drop(&mut self) {
        for work in self.work.values() {
            if let Work::Running(task) = work {
                task.abort();
            }
        }
    }
}

/// One shard's work of a round: put it right (roles, the replication policy, the in-sync
/// record), or fail it over.
struct ShardJob {
    store: Store,
    opts: Options,
    metrics: Arc<AdminMetrics>,
    policy: ReplicationPolicy,
    paused: bool,
    own_terms: Arc<Mutex<HashSet<(String, u64)>>>,
    /// The shard's processes as the round's probes found them.
    found: HashMap<String, Health>,
    links: ShardLinks,
}

impl ShardJob {
    async fn reconcile(&mut self, shard: &Shard) -> Result<()> {
        match self.health(&shard.addr) {
            Health::Dead { crashed: true } => {
                self.failover(shard, "the primary is gone", false).await
            }
            Health::Dead { crashed: false } => {
                self.failover(shard, "the primary is silent", true).await
            }
            Health::Unsure => Ok(()),
            Health::Up(status) => self.steady(shard, status).await,
        }
    }

    /// The primary answers: make the shard what the topology says.
    async fn steady(&mut self, shard: &Shard, primary: Status) -> Result<()> {
        let term = shard.term;
        if term == 0 || primary.term > term {
            // Unmanaged so far (or our file is behind the shard): a term of our own first.
            let new = self.next_term(shard);
            if self.store.take_term(&shard.id, term, &shard.addr, new)? {
                self.own_terms
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((shard.id.clone(), new));
                self.metrics
                    .topology_writes
                    .with_label_values(&["term"])
                    .inc();
                tracing::info!(shard = %shard.id, term = new, "managing the shard under a new term");
            }
            return Ok(());
        }
        // A failover whose controller died before publishing: publish it.
        for r in &shard.replicas {
            if let Health::Up(s) = self.health(&r.addr) {
                if s.master && s.serving && s.term == term {
                    return self.publish(shard, term, &r.addr).await;
                }
            }
        }
        if !(primary.master && primary.serving && primary.term == term) {
            if !primary.master {
                bail!("the topology names {} the primary, but it is a replica (of {:?}): fix the file or run fjord-admin failover", shard.addr, primary.primary);
            }
            // A restarted primary that lost what an in-sync replica holds (an unsynced
            // suffix) must not come back as the primary.
            let ahead = recorded(shard).into_iter().any(|r| match self.health(&r) {
                Health::Up(s) => (s.last_term, s.last_id) > (primary.last_term, primary.last_id),
                _ => false,
            });
            if ahead && !primary.serving {
                // Fenced since its restart, it serves nothing: no lease to wait out.
                return self
                    .failover(
                        shard,
                        "the restarted primary is behind an in-sync replica",
                        false,
                    )
                    .await;
            }
            let required = peer_addrs(&recorded(shard));
            let mut args = vec!["FJORD".to_string(), "PROMOTE".into(), term.to_string()];
            args.extend(required);
            self.call(&shard.addr, &args).await?;
            tracing::info!(shard = %shard.id, primary = %shard.addr, term, "primary confirmed");
            return Ok(());
        }
        for r in &shard.replicas {
            if let Health::Up(s) = self.health(&r.addr) {
                let attached = !s.master && s.serving && s.term == term && s.primary == shard.addr;
                if !attached {
                    self.call(
                        &r.addr,
                        &[
                            "FJORD".into(),
                            "FOLLOW".into(),
                            term.to_string(),
                            shard.addr.clone(),
                        ],
                    )
                    .await?;
                    tracing::info!(shard = %shard.id, replica = %r.addr, primary = %shard.addr, term, "replica attached");
                }
            }
        }
        self.apply_policy(shard, &primary).await?;
        self.keep_record(shard, &primary).await
    }

    /// Gives the primary the file's `replication` section if it runs with another.
    async fn apply_policy(&mut self, shard: &Shard, primary: &Status) -> Result<()> {
        let policy = self.policy;
        let acks = policy.acks.name();
        let min = policy.min_insync_replicas;
        if primary.acks == acks && primary.min_insync == min as u64 {
            return Ok(());
        }
        self.call(
            &shard.addr,
            &[
                "FJORD".into(),
                "ACKS".into(),
                shard.term.to_string(),
                acks.into(),
                min.to_string(),
            ],
        )
        .await?;
        tracing::info!(shard = %shard.id, primary = %shard.addr, acks, min_insync_replicas = min, "replication policy applied");
        Ok(())
    }

    /// Keeps `replicas[].in_sync` and the primary's required set in step (see the module doc
    /// for the order of the two writes).
    async fn keep_record(&mut self, shard: &Shard, primary: &Status) -> Result<()> {
        let mut record: Vec<String> = recorded(shard);
        for r in &shard.replicas {
            let peer = peer_addr(&r.addr);
            let insync = primary.membership(&peer) == Some("insync");
            let lagging = self.links.lagging.entry(r.addr.clone()).or_default();
            *lagging = if r.in_sync && !insync {
                *lagging + 1
            } else {
                0
            };
            let lagging = *lagging;
            if r.in_sync && !insync {
                let dead = matches!(self.health(&r.addr), Health::Dead { .. });
                if dead || lagging >= self.opts.misses {
                    if !self.record(shard, &r.addr, false)? {
                        return Ok(());
                    }
                    record.retain(|a| a != &r.addr);
                    self.set_required(shard, &record).await?;
                    tracing::warn!(shard = %shard.id, replica = %r.addr, "replica out of sync: recorded, and the primary no longer waits for it");
                }
            } else if !r.in_sync && insync {
                let mut with = record.clone();
                with.push(r.addr.clone());
                self.set_required(shard, &with).await?;
                if !self.record(shard, &r.addr, true)? {
                    return Ok(());
                }
                record = with;
                tracing::info!(shard = %shard.id, replica = %r.addr, "replica in sync: recorded");
            }
        }
        let mut want = peer_addrs(&record);
        let mut have = primary.required.clone();
        want.sort();
        have.sort();
        if want != have {
            self.set_required(shard, &record).await?;
        }
        Ok(())
    }

    /// Records the replica in or out of sync, unless the shard's term or primary changed
    /// since `shard` was read (then nothing is written: the next round looks again).
    fn record(&self, shard: &Shard, replica: &str, in_sync: bool) -> Result<bool> {
        let written =
            self.store
                .record_in_sync(&shard.id, shard.term, &shard.addr, replica, in_sync)?;
        if written {
            self.metrics
                .topology_writes
                .with_label_values(&["in_sync"])
                .inc();
        }
        Ok(written)
    }

    async fn set_required(&mut self, shard: &Shard, replicas: &[String]) -> Result<()> {
        let mut args = vec!["FJORD".to_string(), "ISR".into(), shard.term.to_string()];
        args.extend(peer_addrs(replicas));
        self.call(&shard.addr, &args).await.map(drop)
    }

    /// Replaces a dead primary by its best fenced in-sync replica. `wait_lease`: the old
    /// primary may be alive (frozen): its lease must run out before another one serves.
    async fn failover(&mut self, shard: &Shard, why: &str, wait_lease: bool) -> Result<()> {
        if self.paused {
            bail!(
                "{why}, and controllers are paused (`fjord-admin controller resume`): no failover"
            );
        }
        let candidates: Vec<String> = recorded(shard)
            .into_iter()
            .filter(|r| matches!(self.health(r), Health::Up(_)))
            .collect();
        if candidates.is_empty() {
            bail!("{why}, and no replica recorded in sync answers: its slots stay down until it is back");
        }
        let started = Instant::now();
        let old = shard.term;
        let term = self.next_term(shard);
        // The term is this controller's only if its own write put it there: another
        // controller may have allocated the same number first.
        if !self.store.take_term(&shard.id, old, &shard.addr, term)? {
            tracing::info!(shard = %shard.id, "the topology changed under the failover; looking again");
            return Ok(());
        }
        self.own_terms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((shard.id.clone(), term));
        tracing::warn!(shard = %shard.id, primary = %shard.addr, term, reason = why, "failing over");
        self.metrics
            .topology_writes
            .with_label_values(&["term"])
            .inc();
        let result = self
            .fence_and_promote(shard, term, &candidates, wait_lease)
            .await;
        let outcome = if result.is_ok() { "done" } else { "failed" };
        self.metrics
            .failovers
            .with_label_values(&[shard.id.as_str(), outcome])
            .inc();
        if result.is_ok() {
            self.metrics
                .failover_seconds
                .observe(started.elapsed().as_secs_f64());
            tracing::warn!(shard = %shard.id, term, took_ms = started.elapsed().as_millis() as u64, "failover done");
        }
        result
    }

    /// The failover's steps once its term is allocated: fence the candidates, wait out the
    /// old primary's lease if need be, promote the best, publish it.
    async fn fence_and_promote(
        &mut self,
        shard: &Shard,
        term: u64,
        candidates: &[String],
        wait_lease: bool,
    ) -> Result<()> {
        let mut best: Option<((u64, u64), String)> = None;
        // The longest any fenced replica has gone without acknowledging the old primary.
        let mut since_ack = Duration::ZERO;
        for c in candidates {
            match self
                .call(c, &["FJORD".into(), "FENCE".into(), term.to_string()])
                .await
            {
                Ok(frame) => {
                    let parts = array(frame)?;
                    let (last_term, last_id, promotable, acked_ms) = match parts.as_slice() {
                        [a, b, c, BytesFrame::Integer(d)] => (
                            number(a)?,
                            number(b)?,
                            number(c)? == 1,
                            u64::try_from(*d).ok(),
                        ),
                        _ => bail!("FJORD FENCE: unexpected answer from {c}"),
                    };
                    if let Some(ms) = acked_ms {
                        since_ack = since_ack.max(Duration::from_millis(ms));
                    }
                    tracing::info!(shard = %shard.id, replica = %c, last_term, last_id, promotable, since_ack_ms = ?acked_ms, "fenced");
                    if promotable && best.as_ref().is_none_or(|(k, _)| (last_term, last_id) > *k) {
                        best = Some(((last_term, last_id), c.clone()));
                    }
                }
                Err(e) => {
                    tracing::warn!(shard = %shard.id, replica = %c, error = %e, "could not fence")
                }
            }
        }
        let Some((_, chosen)) = best else {
            bail!("no in-sync replica could be fenced and promoted; trying again");
        };
        if wait_lease {
            let wait = lease_left(since_ack);
            tracing::info!(shard = %shard.id, wait_ms = wait.as_millis() as u64, since_ack_ms = since_ack.as_millis() as u64, "waiting out the old primary's lease");
            tokio::time::sleep(wait).await;
        }
        self.call(
            &chosen,
            &["FJORD".into(), "PROMOTE".into(), term.to_string()],
        )
        .await?;
        self.publish(shard, term, &chosen).await
    }

    /// Publishes `addr` as the shard's primary at `term` (version+1).
    async fn publish(&mut self, shard: &Shard, term: u64, addr: &str) -> Result<()> {
        if let Some(version) = self.store.publish_primary(&shard.id, term, addr)? {
            self.metrics
                .topology_writes
                .with_label_values(&["failover"])
                .inc();
            tracing::info!(shard = %shard.id, primary = %addr, term, version, "topology published");
        }
        Ok(())
    }

    /// A term above any this shard's processes or the file have seen.
    fn next_term(&self, shard: &Shard) -> u64 {
        let seen = std::iter::once(&shard.addr)
            .chain(shard.replicas.iter().map(|r| &r.addr))
            .filter_map(|a| match self.health(a) {
                Health::Up(s) => Some(s.term.max(s.oplog_term).max(s.last_term)),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        shard.term.max(seen) + 1
    }

    async fn call(&mut self, addr: &str, args: &[String]) -> Result<BytesFrame> {
        let (password, leader) = (&self.opts.password, self.store.leader_term());
        let node = self
            .links
            .nodes
            .entry(addr.to_string())
            .or_insert_with(|| Node::new(addr, password.clone()).speaking_for(leader));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Commands that write (a term, a role) may take a sync of the shard's store.
        node.call(&args, self.opts.probe_every.max(Duration::from_secs(2)))
            .await
            .map_err(|e| anyhow!("{addr}: {} {e}", args[..2].join(" ")))
    }

    fn health(&self, addr: &str) -> Health {
        self.found.get(addr).cloned().unwrap_or(Health::Unsure)
    }
}

/// The replicas the record calls in sync (topology addresses).
fn recorded(shard: &Shard) -> Vec<String> {
    shard
        .replicas
        .iter()
        .filter(|r| r.in_sync)
        .map(|r| r.addr.clone())
        .collect()
}

fn peer_addrs(addrs: &[String]) -> Vec<String> {
    addrs.iter().map(|a| peer_addr(a)).collect()
}

/// A replica's address as its primary sees it (`ip:port`: the link's peer IP, the port the
/// replica serves on).
fn peer_addr(addr: &str) -> String {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.to_string())
        .unwrap_or_else(|| addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_long_unacknowledged_needs_no_wait() {
        assert_eq!(
            lease_left(Duration::ZERO),
            LEASE * 121 / 100 + Duration::from_millis(50)
        );
        assert_eq!(
            lease_left(Duration::from_millis(100)),
            LEASE * 121 / 100 - Duration::from_millis(50)
        );
        assert_eq!(lease_left(Duration::from_secs(1)), Duration::ZERO);
    }
}
