//! Routing a command to shards, and merging what they answer.
//!
//! The command table says how ([`Route`]): single-slot commands go to their slot's shard as
//! they are; MGET, MSET, DEL, UNLINK, EXISTS and TOUCH are split per shard (not per key) and
//! merged; node-scoped keyless commands (DBSIZE, SCAN, KEYS, RANDOMKEY, FLUSHALL/FLUSHDB) cover
//! the slots of the listener the client came through, shard by shard, with the `FJORD`
//! commands that take a slot set. Requests are queued to the backends when the command is
//! routed, so a pipeline reaches the shards at once; the returned [`Pending`] only waits.

use crate::backend::{self, BackendResult, ShardBackend};
use crate::metrics::ProxyMetrics;
use crate::topology::{Routing, TopologyHandle};
use bytes::Bytes;
use fjord_common::command::{CommandSpec, Merge, Resolved};
use fjord_common::ownership::{Refusal, SlotState};
use fjord_common::slotset::SlotSet;
use fjord_common::{error, slot_of, CommandId, Proto, Reply};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a command refused for a slot in motion is retried before the client gets
/// `TRYAGAIN`: a frozen slot is handed over within one batch's pause, far less than this.
const FOLLOW_FOR: Duration = Duration::from_secs(2);
/// Re-sends to an owner a refusal names, per command (a proxy on an old topology needs one).
const MAX_HOPS: u32 = 5;
/// The longest pause between retries of a frozen or importing slot.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// A reply that is ready, or still to come from shards.
pub enum Pending {
    Ready(Reply),
    /// One shard's reply, passed on as it is (without a boxed future).
    One(oneshot::Receiver<BackendResult>, Arc<ShardBackend>),
    /// The next reply of one of the client's batches ([`crate::batch`]; the common case).
    Batched(usize),
    Later(Pin<Box<dyn Future<Output = Reply> + Send>>),
    /// A READONLY read batched to a replica, to be sent to the primary if the replica cannot
    /// serve it.
    FromReplica(Box<ReplicaRead>),
}

/// A read on its way to a replica, and what re-sends it to the shard's primary.
pub struct ReplicaRead {
    /// Its batch ([`crate::batch::Batches::next`]).
    pub batch: usize,
    /// The replica's destination ([`Routing::backend`]).
    pub dest: usize,
    pub shard: usize,
    pub args: Vec<Bytes>,
    /// The protocol of the client it is for.
    pub proto: Proto,
}

impl ReplicaRead {
    /// The replica's `reply`, or the primary's ([`Target::or_primary`]).
    pub async fn or_primary(self, reply: Reply, target: &Target) -> Reply {
        let reply = target
            .or_primary(self.dest, self.shard, &self.args, reply, self.proto)
            .await;
        target
            .follow(self.shard, &self.args, reply, self.proto)
            .await
    }
}

/// Where a READONLY read on a replica listener may go: a replica picked by `spread` (the
/// client's id), waited for at most `wait` (`replica_max_lag_ms`).
#[derive(Clone, Copy)]
pub struct FromReplicas {
    pub spread: u64,
    pub wait: Duration,
}

impl From<Reply> for Pending {
    fn from(r: Reply) -> Self {
        Pending::Ready(r)
    }
}

impl Pending {
    pub async fn resolve(self) -> Reply {
        match self {
            Pending::Ready(r) => r,
            Pending::One(rx, backend) => into_reply(backend::receive(rx, &backend).await),
            Pending::Later(f) => f.await,
            Pending::Batched(_) | Pending::FromReplica(_) => {
                Reply::error("ERR internal error: a batched reply resolved alone")
            }
        }
    }
}

/// Where the commands of one client read go: the routing in force when it arrived, and per
/// shard the connection ("lane") that carries them, so they stay in order. A session answers
/// every request of a read before it reads again, so each read may pick its lanes afresh
/// (the least busy connection: [`ShardBackend::pick_lane`]); within a read they are fixed.
#[derive(Clone)]
pub struct Target {
    pub routing: Arc<Routing>,
    /// Per shard, the lane chosen on first use; `usize::MAX` until then.
    lanes: Arc<[AtomicUsize]>,
    /// The topology as it changes, for refusals that send a command elsewhere.
    live: Arc<TopologyHandle>,
    metrics: Arc<ProxyMetrics>,
}

impl Target {
    /// The routing in force now.
    pub fn new(live: &Arc<TopologyHandle>, metrics: &Arc<ProxyMetrics>) -> Self {
        let routing = live.load();
        let lanes = (0..routing.destinations())
            .map(|_| AtomicUsize::new(usize::MAX))
            .collect();
        Self {
            routing,
            lanes,
            live: Arc::clone(live),
            metrics: Arc::clone(metrics),
        }
    }

    /// A replica's (`dest`'s) `reply` to a read of `shard`, or the primary's when the replica
    /// refused it as too stale (TRYAGAIN), could not be reached or answer in time
    /// (CLUSTERDOWN), or no longer serves the slot (NOTOWNER, as its primary): a read can be
    /// sent again, and the replica gets no reads for a while. The primary answers in `proto`.
    pub async fn or_primary(
        &self,
        dest: usize,
        shard: usize,
        args: &[Bytes],
        reply: Reply,
        proto: Proto,
    ) -> Reply {
        let failed = matches!(&reply, Reply::Error(e) if e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") || e.starts_with(fjord_common::ownership::PREFIX));
        if !failed {
            self.metrics.replica_reads_served.inc();
            return reply;
        }
        self.metrics.replica_reads_fell_back.inc();
        self.routing.backend(dest).hold_off();
        self.send_as(shard, args, proto).await.resolve().await
    }

    /// `reply` to `args`, or, when it is a shard's `NOTOWNER` refusal (the command was
    /// certainly not applied there, the one case in which a command is sent again), the
    /// answer of the shard that serves the slot: the owner the refusal names, or, for a
    /// slot being handed over or an owner this proxy does not know, the owner of the
    /// topology in force after a short pause; `TRYAGAIN` (which cluster clients retry) once
    /// [`FOLLOW_FOR`] has passed. So a proxy on an old topology costs a hop, never a write
    /// in the wrong place. The shards sent to answer in `proto`.
    pub async fn follow(&self, from: usize, args: &[Bytes], reply: Reply, proto: Proto) -> Reply {
        let Some(mut refusal) = refusal_of(&reply) else {
            return reply;
        };
        let started = Instant::now();
        let (mut pause, mut hops, mut dest) = (Duration::from_millis(1), 0, from);
        loop {
            let named = match (refusal.state, &refusal.owner) {
                (SlotState::Gone, Some(addr)) if hops < MAX_HOPS => {
                    self.live.load().primary_at(addr)
                }
                _ => None,
            };
            dest = match named {
                Some(named) => {
                    hops += 1;
                    named
                }
                None if started.elapsed() + pause > FOLLOW_FOR => {
                    self.metrics.tryagain_replies.inc();
                    return Reply::error(format!(
                        "TRYAGAIN slot {} is being moved between shards; retry",
                        refusal.slot
                    ));
                }
                None => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                    match refusal.state {
                        // The shard handing the slot over, or taking it, will say when it
                        // is done (serving it, or naming the new owner).
                        SlotState::Frozen | SlotState::Importing => dest,
                        _ => self.live.load().topology.owner(refusal.slot),
                    }
                }
            };
            self.metrics.redirects_followed.inc();
            let again = Target::new(&self.live, &self.metrics);
            let reply = again.send_as(dest, args, proto).await.resolve().await;
            match refusal_of(&reply) {
                Some(r) => refusal = r,
                None => return reply,
            }
        }
    }

    /// The connection to `dest` ([`Routing::backend`]) this read's requests use.
    pub fn lane(&self, dest: usize) -> usize {
        let chosen = &self.lanes[dest];
        match chosen.load(Ordering::Relaxed) {
            usize::MAX => {
                let lane = self.routing.backend(dest).pick_lane();
                chosen.store(lane, Ordering::Relaxed);
                lane
            }
            lane => lane,
        }
    }

    fn backend(&self, dest: usize) -> Arc<ShardBackend> {
        Arc::clone(self.routing.backend(dest))
    }

    /// Queues each request on its shard; their answers are awaited with [`Asked::replies`].
    pub async fn ask_each(&self, requests: Vec<(usize, Vec<Bytes>)>) -> Asked {
        let mut pending = Vec::with_capacity(requests.len());
        for (shard, args) in requests {
            pending.push((shard, self.send(shard, &args).await, args));
        }
        Asked {
            target: self.clone(),
            pending,
        }
    }

    /// Queues `args` on `shard` and returns the reply to come, in RESP2: the proxy's own
    /// requests, whose replies it reads or merges.
    pub async fn send(&self, shard: usize, args: &[Bytes]) -> Pending {
        self.send_as(shard, args, Proto::Resp2).await
    }

    /// [`Target::send`] with the reply in `proto`: a client's command, whose reply goes to
    /// the client as the shard made it.
    pub async fn send_as(&self, shard: usize, args: &[Bytes], proto: Proto) -> Pending {
        let backend = self.backend(shard);
        let rx = backend.send(self.lane(shard), args, proto).await;
        Pending::One(rx, backend)
    }

    /// Queues `args` on `shard`; the returned future yields the shard's reply or error.
    async fn send_raw(
        &self,
        shard: usize,
        args: &[Bytes],
    ) -> impl Future<Output = BackendResult> + Send + 'static {
        let backend = self.backend(shard);
        let rx = backend.send(self.lane(shard), args, Proto::Resp2).await;
        async move { backend::receive(rx, &backend).await }
    }
}

fn into_reply(result: BackendResult) -> Reply {
    result.unwrap_or_else(Reply::error)
}

impl Target {
    /// [`Target::follow`] for a part of a split command (`part[0]` the command, then its keys
    /// each with `step - 1` values): refused as a whole for the one slot the refusal names,
    /// its keys go on slot by slot, each to its own owner, and the answers are merged.
    async fn follow_part(
        &self,
        from: usize,
        merge: Merge,
        step: usize,
        part: &[Bytes],
        reply: Reply,
    ) -> Reply {
        if refusal_of(&reply).is_none() {
            return reply;
        }
        let positions: Vec<usize> = (1..part.len()).step_by(step).collect();
        let groups = group_keys(part, &positions, |key| usize::from(slot_of(key)));
        if groups.len() <= 1 {
            return self.follow(from, part, reply, Proto::Resp2).await;
        }
        let mut replies = Vec::with_capacity(groups.len());
        for (slot, ordinals) in &groups {
            let sub = part_of(part, &positions, ordinals, step);
            let now = Target::new(&self.live, &self.metrics);
            let owner = now.routing.topology.owner(*slot as u16);
            let reply = now.send(owner, &sub).await.resolve().await;
            replies.push(Ok(self.follow(owner, &sub, reply, Proto::Resp2).await));
        }
        let keys = groups.iter().map(|(_, o)| o.len()).sum();
        merge_parts(merge, &groups, replies, keys)
    }
}

/// Requests queued by [`Target::ask_each`].
pub struct Asked {
    target: Target,
    pending: Vec<(usize, Pending, Vec<Bytes>)>,
}

impl Asked {
    /// The answers in request order, each followed to the slot's owner if it was refused.
    pub async fn replies(self) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(self.pending.len());
        for (shard, reply, args) in self.pending {
            let reply = reply.resolve().await;
            replies.push(self.target.follow(shard, &args, reply, Proto::Resp2).await);
        }
        replies
    }
}

/// A shard's refusal of a command for a slot it does not serve.
pub fn refusal_of(reply: &Reply) -> Option<Refusal> {
    match reply {
        Reply::Error(e) if e.starts_with(fjord_common::ownership::PREFIX) => Refusal::parse(e),
        _ => None,
    }
}

/// The one slot all of a command's keys hash to; CROSSSLOT when they differ.
pub fn common_slot(spec: &CommandSpec, args: &[Bytes]) -> Result<Option<u16>, Reply> {
    let mut slot = None;
    for i in spec.key_indexes(args) {
        let s = slot_of(&args[i]);
        match slot {
            None => slot = Some(s),
            Some(prev) if prev != s => return Err(Reply::error(error::CROSSSLOT)),
            Some(_) => {}
        }
    }
    Ok(slot)
}

/// The shard a single-slot command goes to.
pub fn single_slot(target: &Target, r: Resolved, args: &[Bytes]) -> Result<usize, Reply> {
    match common_slot(r.effective(), args)? {
        Some(slot) => Ok(target.routing.topology.owner(slot)),
        // A count of keys that names none: any shard gives Redis's error for it.
        None if r.effective().numkeys_at > 0 => Ok(0),
        None => Err(Reply::error(error::wrong_arity(r.spec.name))),
    }
}

/// Splits a multi-key command per shard and merges the parts; `sized(keys, shards)` learns
/// how far it spread. With `replicas` (a READONLY read on a replica listener) each part goes
/// to a replica of its shard that may serve it, and to the primary if it cannot.
pub async fn split(
    target: &Target,
    r: Resolved,
    merge: Merge,
    args: Vec<Bytes>,
    replicas: Option<FromReplicas>,
    sized: impl FnOnce(usize, usize),
) -> Pending {
    let spec = r.spec;
    let topology = &target.routing.topology;
    let step = spec.step.max(1) as usize;
    // MSET's key-value pairs must come complete (the arity alone allows `MSET a 1 b`).
    if !(args.len() - 1).is_multiple_of(step) {
        return Reply::error(error::wrong_arity(spec.name)).into();
    }
    let key_positions: Vec<usize> = spec.key_indexes(&args).collect();
    let groups = group_keys(&args, &key_positions, |key| topology.owner(slot_of(key)));
    sized(key_positions.len(), groups.len());
    if groups.len() <= 1 {
        // The command as it came: nothing to merge.
        let shard = groups.first().map_or(0, |g| g.0);
        let part = target.send_part(shard, replicas, args).await;
        let target = target.clone();
        return Pending::Later(Box::pin(async move {
            let (result, args) = part.await;
            let reply = into_reply(result);
            target.follow_part(shard, merge, step, &args, reply).await
        }));
    }
    let mut parts = Vec::with_capacity(groups.len());
    for (shard, ordinals) in &groups {
        let part = part_of(&args, &key_positions, ordinals, step);
        parts.push((*shard, target.send_part(*shard, replicas, part).await));
    }
    let total_keys = key_positions.len();
    let target = target.clone();
    Pending::Later(Box::pin(async move {
        let mut replies = Vec::with_capacity(parts.len());
        // A part a shard refused was applied nowhere: it alone goes to the slot's owner.
        for (shard, part) in parts {
            let (result, part) = part.await;
            replies.push(match result {
                Ok(reply) => Ok(target.follow_part(shard, merge, step, &part, reply).await),
                failed => failed,
            });
        }
        merge_parts(merge, &groups, replies, total_keys)
    }))
}

impl Target {
    /// Queues one part of a split command on `shard`, or on a replica of it that may serve
    /// it (`replicas`); the future yields the answer (the primary's if the replica could not
    /// serve the part) and the part.
    async fn send_part(
        &self,
        shard: usize,
        replicas: Option<FromReplicas>,
        part: Vec<Bytes>,
    ) -> impl Future<Output = (BackendResult, Vec<Bytes>)> + Send + 'static {
        let replica =
            replicas.and_then(|r| Some((self.routing.replica_for(shard, r.spread)?, r.wait)));
        let sent = self
            .send_raw(replica.map_or(shard, |(dest, _)| dest), &part)
            .await;
        let target = self.clone();
        async move {
            let Some((dest, wait)) = replica else {
                return (sent.await, part);
            };
            let reply = match tokio::time::timeout(wait, sent).await {
                Ok(result) => into_reply(result),
                Err(_) => Reply::error(target.routing.backend(dest).too_slow(wait)),
            };
            let reply = target.or_primary(dest, shard, &part, reply, Proto::Resp2);
            (Ok(reply.await), part)
        }
    }
}

/// The keys at `positions` of `args` grouped by `group_of(key)` (a shard, a slot), in order
/// of first appearance: each group's id and the ordinals of its keys.
fn group_keys(
    args: &[Bytes],
    positions: &[usize],
    group_of: impl Fn(&[u8]) -> usize,
) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (ordinal, &pos) in positions.iter().enumerate() {
        let id = group_of(&args[pos]);
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, ordinals)) => ordinals.push(ordinal),
            None => groups.push((id, vec![ordinal])),
        }
    }
    groups
}

/// The command `args[0]` with only the keys `ordinals` name (each with its `step - 1` values).
fn part_of(args: &[Bytes], positions: &[usize], ordinals: &[usize], step: usize) -> Vec<Bytes> {
    let mut part = Vec::with_capacity(1 + ordinals.len() * step);
    part.push(args[0].clone());
    for &o in ordinals {
        let pos = positions[o];
        part.extend(args[pos..pos + step].iter().cloned());
    }
    part
}

/// Merges per-shard replies. Any failed part fails the whole command: a nil must never stand
/// in for a key whose shard did not answer.
fn merge_parts(
    merge: Merge,
    groups: &[(usize, Vec<usize>)],
    replies: Vec<BackendResult>,
    total_keys: usize,
) -> Reply {
    let mut values = match merge {
        Merge::Values => vec![Reply::Nil; total_keys],
        _ => Vec::new(),
    };
    let mut sum = 0i64;
    for ((_, ordinals), reply) in groups.iter().zip(replies) {
        match (merge, reply) {
            (_, Err(e)) => return Reply::error(e),
            (_, Ok(e @ Reply::Error(_))) => return e,
            (Merge::Values, Ok(Reply::Array(items))) if items.len() == ordinals.len() => {
                for (&o, item) in ordinals.iter().zip(items) {
                    values[o] = item;
                }
            }
            (Merge::Ok, Ok(_)) => {}
            (Merge::SumInts, Ok(Reply::Int(n))) => sum += n,
            (_, Ok(other)) => {
                return Reply::error(format!(
                    "ERR unexpected reply from a shard while merging: {other:?}"
                ))
            }
        }
    }
    match merge {
        Merge::Values => Reply::Array(values),
        Merge::Ok => Reply::ok(),
        Merge::SumInts => Reply::Int(sum),
    }
}

/// Runs a node-scoped command over `scope` (a listener's slots, or all of them).
pub async fn node_scoped(target: &Target, r: Resolved, args: &[Bytes], scope: SlotSet) -> Pending {
    use CommandId as C;
    match r.spec.id {
        C::Dbsize => {
            let parts = fan_out(target, &scope, fjord("DBSIZE", None)).await;
            later(async move { gather(parts).await.map_or_else(|e| e, sum_ints) })
        }
        C::Flushdb | C::Flushall => {
            if !fjord_common::command::flush_options_ok(args) {
                return Reply::error(error::SYNTAX).into();
            }
            let parts = fan_out(target, &scope, fjord("FLUSH", None)).await;
            later(async move { gather(parts).await.map_or_else(|e| e, |_| Reply::ok()) })
        }
        C::Keys => {
            let parts = fan_out(target, &scope, fjord("KEYS", Some(args[1].clone()))).await;
            later(async move {
                let mut keys = Vec::new();
                for part in gather(parts).await? {
                    match part {
                        Reply::Array(items) => keys.extend(items),
                        other => return Err(unexpected(other)),
                    }
                }
                Ok(Reply::Array(keys))
            })
        }
        C::Randomkey => {
            let parts = fan_out(target, &scope, fjord("RANDOMKEY", None)).await;
            later(async move {
                let mut found: Vec<Reply> = gather(parts)
                    .await?
                    .into_iter()
                    .filter(|r| matches!(r, Reply::Bulk(_)))
                    .collect();
                if found.is_empty() {
                    return Ok(Reply::Nil);
                }
                let pick = rand::random::<usize>() % found.len();
                Ok(found.swap_remove(pick))
            })
        }
        C::Scan => scan(target.clone(), args.to_vec(), scope),
        other => Reply::error(format!("ERR {other:?} is not node-scoped")).into(),
    }
}

/// `FJORD <sub> <slots> [extra]`, for each shard's part of the slots.
fn fjord(sub: &'static str, extra: Option<Bytes>) -> impl Fn(String) -> Vec<Bytes> {
    move |slots: String| {
        let mut request = vec![
            Bytes::from_static(b"FJORD"),
            Bytes::from_static(sub.as_bytes()),
            Bytes::from(slots),
        ];
        request.extend(extra.clone());
        request
    }
}

/// A reply still to come, from a future that may fail with an error reply.
fn later<F>(f: F) -> Pending
where
    F: Future + Send + 'static,
    F::Output: IntoReply,
{
    Pending::Later(Box::pin(async move { f.await.into_reply() }))
}

/// What a merging future ends with: a reply, or a reply-or-error.
trait IntoReply {
    fn into_reply(self) -> Reply;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl IntoReply for Result<Reply, Reply> {
    fn into_reply(self) -> Reply {
        self.unwrap_or_else(|e| e)
    }
}

pub(crate) fn unexpected(other: Reply) -> Reply {
    Reply::error(format!("ERR unexpected reply from a shard: {other:?}"))
}

/// Awaits every part in order; the first error (a shard's, or a shard being down) wins.
async fn gather(parts: Vec<impl Future<Output = BackendResult>>) -> Result<Vec<Reply>, Reply> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part.await {
            Ok(e @ Reply::Error(_)) => return Err(e),
            Ok(r) => out.push(r),
            Err(e) => return Err(Reply::error(e)),
        }
    }
    Ok(out)
}

fn sum_ints(replies: Vec<Reply>) -> Reply {
    let mut sum = 0;
    for r in replies {
        match r {
            Reply::Int(n) => sum += n,
            other => return unexpected(other),
        }
    }
    Reply::Int(sum)
}

/// Sends `make(slots)` to every shard owning part of `scope`, `slots` being that part.
/// `CONFIG SET` of `pairs` (Redis's encoding tunables) on every shard; OK once each has set
/// them, or the first shard's error.
pub async fn config_set_on_shards(target: &Target, pairs: Vec<Bytes>) -> Pending {
    let mut args = vec![Bytes::from_static(b"CONFIG"), Bytes::from_static(b"SET")];
    args.extend(pairs);
    let parts = fan_out(target, &SlotSet::all(), |_| args.clone()).await;
    later(async move { gather(parts).await.map_or_else(|e| e, |_| Reply::ok()) })
}

async fn fan_out(
    target: &Target,
    scope: &SlotSet,
    make: impl Fn(String) -> Vec<Bytes>,
) -> Vec<impl Future<Output = BackendResult> + Send + 'static> {
    let mut parts = Vec::new();
    for (shard, slots) in target.routing.topology.split_by_shard(scope) {
        parts.push(target.send_raw(shard, &make(slots.to_string())).await);
    }
    parts
}

/// SCAN over `scope`. The cursor is a shard's cursor, whose top bits hold the slot it stopped
/// in (see the shard's SCAN): the proxy asks that slot's owner to go on within the run of
/// slots it owns, and moves to the next run when a shard says it is done.
fn scan(target: Target, args: Vec<Bytes>, scope: SlotSet) -> Pending {
    later(async move {
        let Some(mut cursor) = std::str::from_utf8(&args[1])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return Reply::error(error::INVALID_CURSOR);
        };
        let topology = &target.routing.topology;
        let start = if cursor == 0 {
            0
        } else {
            ((cursor >> 48) & 0x3fff) as u16
        };
        let Some(mut slot) = scope.next_at_or_after(start) else {
            return scan_reply(0, Vec::new());
        };
        if slot != start {
            cursor = u64::from(slot) << 48;
        }
        let mut keys = Vec::new();
        loop {
            let run = topology.run_from(slot, &scope);
            let run_set = SlotSet::from_ranges([run]);
            let mut request = vec![
                Bytes::from_static(b"FJORD"),
                Bytes::from_static(b"SCAN"),
                Bytes::from(run_set.to_string()),
                Bytes::from(cursor.to_string()),
            ];
            request.extend(args[2..].iter().cloned());
            let reply = target.send_raw(topology.owner(slot), &request).await.await;
            let next = match reply {
                Ok(Reply::Array(mut parts)) if parts.len() == 2 => {
                    if let Some(Reply::Array(found)) = parts.pop() {
                        keys.extend(found);
                    }
                    match parts.pop() {
                        Some(Reply::Bulk(c)) => std::str::from_utf8(&c)
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok())
                            .unwrap_or(0),
                        _ => 0,
                    }
                }
                Ok(e @ Reply::Error(_)) => return e,
                Ok(other) => return unexpected(other),
                Err(e) => return Reply::error(e),
            };
            if next != 0 {
                return scan_reply(next, keys);
            }
            // This run is done: go on with the next one, now or in the client's next call.
            let Some(after) = run
                .end
                .checked_add(1)
                .and_then(|s| scope.next_at_or_after(s))
            else {
                return scan_reply(0, keys);
            };
            slot = after;
            cursor = u64::from(slot) << 48;
            if !keys.is_empty() {
                return scan_reply(cursor, keys);
            }
        }
    })
}

fn scan_reply(cursor: u64, keys: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::text(cursor.to_string()), Reply::Array(keys)])
}

/// LASTSAVE over every shard: the oldest of their last syncs.
pub async fn lastsave(target: &Target) -> Pending {
    let mut parts = Vec::new();
    for shard in 0..target.routing.backends.len() {
        parts.push(
            target
                .send_raw(shard, &[Bytes::from_static(b"LASTSAVE")])
                .await,
        );
    }
    later(async move {
        let mut oldest = i64::MAX;
        for r in gather(parts).await? {
            match r {
                Reply::Int(t) => oldest = oldest.min(t),
                other => return Err(unexpected(other)),
            }
        }
        Ok(Reply::Int(if oldest == i64::MAX { 0 } else { oldest }))
    })
}

/// Fields of the shards' INFO that the proxy's INFO shows summed over the cluster.
pub const SUMMED_INFO_FIELDS: &[&str] = &[
    "rdb_changes_since_last_save",
    "expired_keys",
    "evicted_keys",
    "keyspace_hits",
    "keyspace_misses",
];

/// [`SUMMED_INFO_FIELDS`] added up over the shards that answer. A shard that is down is left
/// out rather than failing INFO, which clients send when they connect.
pub async fn shard_info_totals(
    target: &Target,
) -> impl Future<Output = Vec<(&'static str, u64)>> + Send + 'static {
    let mut parts = Vec::new();
    for shard in 0..target.routing.backends.len() {
        let args = [&b"INFO"[..], b"persistence", b"stats"]
            .map(Bytes::from_static)
            .to_vec();
        parts.push(target.send_raw(shard, &args).await);
    }
    async move {
        let mut totals: Vec<(&'static str, u64)> =
            SUMMED_INFO_FIELDS.iter().map(|f| (*f, 0)).collect();
        for part in parts {
            let (Ok(Reply::Verbatim(text)) | Ok(Reply::Bulk(text))) = part.await else {
                continue;
            };
            for line in String::from_utf8_lossy(&text).lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                if let Some(total) = totals.iter_mut().find(|(f, _)| *f == name) {
                    total.1 += value.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        totals
    }
}

/// The number of keys in `scope`, for INFO keyspace.
pub async fn count_keys(
    target: &Target,
    scope: &SlotSet,
) -> impl Future<Output = Result<u64, Reply>> + Send + 'static {
    let parts = fan_out(target, scope, fjord("DBSIZE", None)).await;
    async move {
        match gather(parts).await.map(sum_ints)? {
            Reply::Int(n) => Ok(n.max(0) as u64),
            other => Err(other),
        }
    }
}
