//! The one commit path: every mutation of the store is applied and committed under one lock,
//! by the writer thread or, when that costs no wait, by the connection that sent it.
//!
//! Connection tasks send write commands here, every write of one read of a connection in one
//! request, and await their replies (one message per request). The thread takes the first
//! queued request, then everything else already queued (up to a group limit), applies
//! each in order to a [`Txn`] — committed state plus the group's own uncommitted changes, so
//! `INCR`s in one group see each other — and commits the group as one fjall batch. In
//! `fsync: always` the batch is synced before it becomes visible and before any reply of the
//! group is sent: one fsync covers the whole group (group commit). If the write or the fsync
//! fails, the whole group is answered with MISCONF and the store stops taking writes.
//!
//! A connection with no writes in flight may instead apply and commit its writes itself, on
//! its own thread, when that costs no wait: the writer is idle (its commit lock is free), the
//! fsync mode is not `always` (the fsync would block the connection thread) and fjall is not
//! about to stall writes. At one write per round trip this saves the two thread hand-offs
//! that otherwise cost more than the write. Whichever thread commits, it holds the one commit
//! lock and goes through the same [`Txn`], so the order of writes stays total: each committed
//! group writes one entry of the oplog ([`super::oplog`]) in its batch, and op ids follow
//! commit order.
//!
//! A replica's writer takes the primary's entries instead ([`Writer::replay`]): it applies
//! their changes to a [`Txn`] as raw puts and deletes, deriving counts and the expiry index
//! as any commit does, and stores each entry as it came, under the same op id.

use super::cache::CacheKey;
use super::encoding::{
    data_key, expiry_key, garbage_key, slot_count_key, split_data_key, CollectionMeta, Entry,
    HEADER_LEN, NEXT_VERSION_KEY,
};
use super::members::{byte_range, merge_members, scan_bounds};
use super::oplog::{Change, Op, OpKind, OplogError};
use super::slots::{SlotTable, SLOT_STATES_KEY};
use super::{now_ms, FlushLog, Store, StoreError};
use crate::config::FsyncMode;
use bytes::Bytes;
use fjord_common::error;
use fjord_common::ownership::SlotState;
use fjord_common::slotset::SlotSet;
use fjord_common::Reply;
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Decides when a committed group's replies may leave: on a primary with in-sync replicas,
/// once they have acknowledged the group's op ([`crate::repl::acks`]).
pub trait ReplyGate: Send + Sync + 'static {
    /// Whether writes should be grouped by the writer thread rather than committed inline
    /// (while replicas stream): each group is one op for them to apply and acknowledge,
    /// and inline commits make one per connection's request (measured: SET -P 1 with a
    /// replica in sync, 14k ops/s inline against 32k grouped).
    fn wants_grouping(&self) -> bool;
    /// Runs `release` once op `id` is acknowledged as required; at once if nothing is.
    fn hold(&self, id: u64, release: Box<dyn FnOnce() + Send>);
}

/// A command that changes the store, applied by the writer thread.
pub trait WriteOp: Send + 'static {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply;
}

/// Most commands in one group: bounds the batch's memory and the latency of the first reply.
const MAX_GROUP: usize = 1024;

/// Keys deleted per batch when flushing part of the keyspace.
const FLUSH_CHUNK: usize = 10_000;
/// Keys deleted per turn of the writer when flushing slots no client can write (moved away):
/// the writes of the slots still served go in between.
const FLUSH_TURN: usize = 250;

/// How a flush shares the writer.
#[derive(Clone, PartialEq, Eq)]
enum FlushPace {
    /// All at once, no write in between (FLUSHALL).
    Whole,
    /// One turn of [`FLUSH_TURN`] keys after this data key (from the start if none); while
    /// keys may remain, the reply is the last key deleted, where the next turn goes on.
    Turn(Option<Vec<u8>>),
}

enum Request {
    /// Writes in order; their replies come back together, in the same order.
    Ops(Vec<Box<dyn WriteOp>>, oneshot::Sender<Vec<Reply>>),
    /// Delete every key in the slots (FLUSHALL, FJORD FLUSH); runs outside any group.
    Flush(SlotSet, FlushPace, oneshot::Sender<Reply>),
    /// Apply another store's oplog entries, in order (a replica's stream).
    Replay(Vec<Op>, oneshot::Sender<Result<(), OplogError>>),
    /// Run alone under the commit lock, between groups (the steps of a full sync, a
    /// consistent snapshot point).
    Exclusive(Box<dyn FnOnce(&Store) + Send>),
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

/// What the writer thread and inline commits share.
struct Shared {
    store: Arc<Store>,
    gate: Arc<dyn ReplyGate>,
    /// Held while a group is applied and committed, by whichever thread commits it.
    commit: Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // Nothing is left half-done under the lock when a thread panics: the Txn is dropped.
        self.commit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What an inline commit gives back: its replies, or the wait for them while the in-sync
/// replicas acknowledge the group.
pub enum Inline {
    Answered(Vec<Reply>),
    Held(PendingReplies),
}

/// Waits for a flush's reply.
pub type PendingReply = oneshot::Receiver<Reply>;

/// Waits for the replies of a request of writes, in order.
pub type PendingReplies = oneshot::Receiver<Vec<Reply>>;

impl Writer {
    /// Starts the writer thread. It ends when every `Writer` handle is dropped and the queue
    /// is drained; the returned handle joins it.
    pub fn start(
        store: Arc<Store>,
        gate: Arc<dyn ReplyGate>,
        queue_len: usize,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue_len);
        let shared = Arc::new(Shared {
            store,
            gate,
            commit: Mutex::new(()),
        });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("fjord-writer".into())
            .spawn(move || run(&thread_shared, rx))
            .expect("spawning the writer thread");
        (Self { tx, shared }, handle)
    }

    /// Applies and commits `ops` on the calling thread if that costs no wait (see the module
    /// doc); otherwise hands them back, to be submitted. The caller must have no earlier
    /// writes still queued, or these would overtake them.
    pub fn commit_inline(
        &self,
        ops: Vec<Box<dyn WriteOp>>,
    ) -> Result<Inline, Vec<Box<dyn WriteOp>>> {
        let store = &*self.shared.store;
        if store.options.fsync == FsyncMode::Always
            || store.writes_may_stall()
            || self.shared.gate.wants_grouping()
        {
            return Err(ops);
        }
        let Ok(guard) = self.shared.commit.try_lock() else {
            return Err(ops);
        };
        let mut group = Group::new(store);
        let mut replies = [group.apply(ops)];
        group.commit(&mut replies);
        store.stats.inline_groups.inc();
        let [replies] = replies;
        // Through the gate as every group's replies go: a replica that joined the in-sync
        // set since the check above is waited for. Under the commit lock, so that the gate
        // gets groups in op order.
        let (tx, mut rx) = oneshot::channel();
        let release = Box::new(move || {
            let _ = tx.send(replies);
        });
        hold(&self.shared, release);
        drop(guard);
        Ok(match rx.try_recv() {
            Ok(replies) => Inline::Answered(replies),
            Err(_) => Inline::Held(rx),
        })
    }

    /// Queues `ops`, applied in order; the replies arrive once the group they are in is
    /// committed (and synced if required).
    pub async fn submit(&self, ops: Vec<Box<dyn WriteOp>>) -> PendingReplies {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Request::Ops(ops, tx)).await;
        rx
    }

    /// Queues a flush of `slots`. Slots this shard gave away (every one `gone`: the
    /// source's delete after a move) are flushed a turn at a time, so that the writes of the
    /// slots it still serves do not wait for the whole range, and at most `max_rate` keys/s
    /// (`reshard --max-rate`: the delete takes the machine from clients as the copy does).
    pub async fn flush(&self, slots: SlotSet, max_rate: Option<u64>) -> PendingReply {
        let (tx, rx) = oneshot::channel();
        let table = self.shared.store.slot_table();
        if !slots.slots().all(|s| table.get(s).state == SlotState::Gone) {
            let _ = self
                .tx
                .send(Request::Flush(slots, FlushPace::Whole, tx))
                .await;
            return rx;
        }
        let queue = self.tx.clone();
        tokio::spawn(async move {
            let mut after = None;
            let started = Instant::now();
            for turns in 1u64.. {
                let (turn, done) = oneshot::channel();
                let request = Request::Flush(slots.clone(), FlushPace::Turn(after.take()), turn);
                if queue.send(request).await.is_err() {
                    return;
                }
                match done.await {
                    Ok(Reply::Bulk(last)) => after = Some(last.to_vec()),
                    Ok(reply) => {
                        let _ = tx.send(reply);
                        return;
                    }
                    Err(_) => return,
                }
                if let Some(rate) = max_rate {
                    let due =
                        Duration::from_secs_f64((turns * FLUSH_TURN as u64) as f64 / rate as f64);
                    tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
                }
            }
        });
        rx
    }

    /// `flush` for threads outside the async runtime.
    pub fn flush_blocking(&self, slots: SlotSet) -> Option<Reply> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .blocking_send(Request::Flush(slots, FlushPace::Whole, tx))
            .ok()?;
        rx.blocking_recv().ok()
    }

    /// Starts a new term on this store (a promotion): one marker entry, committed in order
    /// with the writes around it.
    pub async fn begin_term(&self, term: u64) -> PendingReplies {
        self.submit(vec![begin_term(term)]).await
    }

    /// Queues entries of a primary's oplog, to be applied in order and stored as they are;
    /// the result comes once they are committed. The first must be the op id after this
    /// store's last.
    pub async fn replay(&self, ops: Vec<Op>) -> oneshot::Receiver<Result<(), OplogError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Request::Replay(ops, tx)).await;
        rx
    }

    /// Runs `f` under the commit lock, between groups, on the writer thread.
    pub async fn exclusive<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Option<T> {
        let (request, rx) = exclusive_request(f);
        self.tx.send(request).await.ok()?;
        rx.await.ok()
    }

    /// `exclusive` for threads outside the async runtime.
    pub fn exclusive_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Option<T> {
        let (request, rx) = exclusive_request(f);
        self.tx.blocking_send(request).ok()?;
        rx.blocking_recv().ok()
    }

    /// `replay` for threads outside the async runtime.
    pub fn replay_blocking(&self, ops: Vec<Op>) -> Option<Result<(), OplogError>> {
        let (tx, rx) = oneshot::channel();
        self.tx.blocking_send(Request::Replay(ops, tx)).ok()?;
        rx.blocking_recv().ok()
    }

    /// `submit` for threads outside the async runtime (active expiry).
    pub fn submit_blocking(&self, op: Box<dyn WriteOp>) -> Option<Reply> {
        let (tx, rx) = oneshot::channel();
        self.tx.blocking_send(Request::Ops(vec![op], tx)).ok()?;
        rx.blocking_recv().ok()?.pop()
    }
}

/// The request that runs `f` alone, and where its result comes back.
fn exclusive_request<T: Send + 'static>(
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> (Request, oneshot::Receiver<T>) {
    let (tx, rx) = oneshot::channel();
    let job = Box::new(move |store: &Store| {
        let _ = tx.send(f(store));
    });
    (Request::Exclusive(job), rx)
}

/// Hands the replies of the group just committed (the last op) to the acknowledgement gate;
/// their release also makes the group's writes visible to reads ([`super::visibility`]).
fn hold(shared: &Shared, release: Box<dyn FnOnce() + Send>) {
    let store = Arc::clone(&shared.store);
    let id = store.oplog.last_id();
    shared.gate.hold(
        id,
        Box::new(move || {
            store.visible.release(id);
            release();
        }),
    );
}

fn run(shared: &Shared, mut rx: mpsc::Receiver<Request>) {
    let store = &*shared.store;
    let mut deferred: Option<Request> = None;
    loop {
        let first = match deferred.take() {
            Some(r) => r,
            None => match rx.blocking_recv() {
                Some(r) => r,
                None => break,
            },
        };
        let guard = shared.lock();
        match first {
            Request::Flush(slots, pace, reply) => {
                let result = flush(store, &slots, pace);
                let release = Box::new(move || {
                    let _ = reply.send(result);
                });
                hold(shared, release);
                drop(guard);
            }
            Request::Exclusive(job) => {
                job(store);
                drop(guard);
            }
            Request::Replay(ops, reply) => {
                let result = replay(store, ops);
                if let Err(OplogError::Store(e)) = &result {
                    store.mark_unwritable(e);
                }
                drop(guard);
                let _ = reply.send(result);
            }
            Request::Ops(ops, reply) => {
                let mut group = Group::new(store);
                let mut replies = vec![group.apply(ops)];
                let mut senders = vec![reply];
                while group.writes < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Request::Ops(ops, reply)) => {
                            replies.push(group.apply(ops));
                            senders.push(reply);
                        }
                        Ok(other) => {
                            deferred = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                group.commit(&mut replies);
                // After the group's op, and every op before it, is acknowledged as required:
                // a reply may tell of state an unacknowledged write left. Handed to the gate
                // under the commit lock, so that it gets groups in op order.
                let release = Box::new(move || {
                    for (replies, tx) in replies.into_iter().zip(senders) {
                        let _ = tx.send(replies);
                    }
                });
                hold(shared, release);
                drop(guard);
            }
        }
    }
    if let Err(e) = store.sync() {
        tracing::error!(error = %e, "final sync at shutdown failed");
    }
}

/// A source shard's collection versions (by slot, since member keys lead with it) and the
/// versions this store gave them, for one import ([`Txn::apply_imported`]).
pub type VersionMap = HashMap<(u16, u64), u64>;

/// Requests of writes applied to one transaction and committed together.
struct Group<'a> {
    txn: Txn<'a>,
    writes: usize,
}

impl<'a> Group<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            txn: Txn::new(store),
            writes: 0,
        }
    }

    /// Applies one request's writes in order; their replies stand once the group commits.
    /// A replica's store takes none (its changes come from its primary's oplog).
    fn apply(&mut self, ops: Vec<Box<dyn WriteOp>>) -> Vec<Reply> {
        if self.txn.store.is_replica() {
            return vec![Reply::error(error::READONLY); ops.len()];
        }
        self.writes += ops.len();
        ops.into_iter().map(|op| op.apply(&mut self.txn)).collect()
    }

    /// Commits the group; if that fails, every reply becomes MISCONF and the store stops
    /// taking writes.
    fn commit(self, replies: &mut [Vec<Reply>]) {
        let store = self.txn.store;
        let result = self.txn.commit();
        store.stats.group_writes.observe(self.writes as f64);
        store.stats.writes.inc_by(self.writes as u64);
        if let Err(e) = result {
            store.mark_unwritable(&e);
            for r in replies {
                r.fill(Reply::error(error::MISCONF));
            }
        }
    }
}

fn flush(store: &Store, slots: &SlotSet, pace: FlushPace) -> Reply {
    if !store.is_writable() {
        return Reply::error(error::MISCONF);
    }
    let result = if (0..fjord_common::SLOT_COUNT)
        .all(|s| slots.contains(s) || store.count_in_slot(s) == 0)
    {
        // Every slot with keys is being flushed: clearing the keyspaces is O(1).
        store.clear_all(FlushLog::New).map(|()| None)
    } else {
        match pace {
            FlushPace::Whole => flush_slots(store, slots).map(|()| None),
            FlushPace::Turn(after) => delete_batch(store, slots, after.as_deref(), FLUSH_TURN),
        }
    };
    match result {
        Ok(None) => Reply::ok(),
        Ok(Some(last)) => Reply::Bulk(Bytes::from(last)),
        Err(e) => {
            store.mark_unwritable(&e);
            Reply::error(error::MISCONF)
        }
    }
}

/// Deletes the keys of some slots in bounded batches. Not atomic as a whole: a crash midway
/// leaves part of the slots flushed, which a retried flush completes.
fn flush_slots(store: &Store, slots: &SlotSet) -> Result<(), StoreError> {
    let mut after = None;
    loop {
        match delete_batch(store, slots, after.as_deref(), FLUSH_CHUNK)? {
            Some(last) => after = Some(last),
            None => return Ok(()),
        }
    }
}

/// Deletes up to `max` keys of `slots` after the data key `after`, in one batch; returns the
/// last one deleted if there may be more. Going on from there, not from the start, skips the
/// tombstones of the batches before (a scan from the start would read them all again).
/// Expired-but-present keys are deleted too (now = 0).
fn delete_batch(
    store: &Store,
    slots: &SlotSet,
    after: Option<&[u8]>,
    max: usize,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    store.scan_slots(slots, after, usize::MAX, 0, |dkey, _| {
        keys.push(dkey.to_vec());
        keys.len() < max
    })?;
    if keys.is_empty() {
        return Ok(None);
    }
    let mut txn = Txn::new(store);
    for dkey in &keys {
        txn.remove_physical(dkey);
    }
    txn.commit()?;
    Ok((keys.len() == max).then(|| keys.pop()).flatten())
}

/// The write that starts `term` (its group's entry is the term marker).
pub fn begin_term(term: u64) -> Box<dyn WriteOp> {
    Box::new(BeginTerm(term))
}

/// Makes the group a term marker.
struct BeginTerm(u64);

impl WriteOp for BeginTerm {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        txn.new_term = Some(self.0);
        Reply::ok()
    }
}

/// Applies a primary's entries: runs of changes share one [`Txn`] and one batch; a
/// FLUSHALL clears the store as the primary's did.
fn replay(store: &Store, ops: Vec<Op>) -> Result<(), OplogError> {
    if !store.is_writable() {
        return Err(OplogError::Store(super::corrupt(
            "the store refuses writes",
        )));
    }
    // Checked before anything is applied: a stream that skips or repeats an op is the
    // sender's mistake, not a reason to stop taking writes.
    let (next, _) = store.oplog.next();
    if let Some((i, op)) = ops
        .iter()
        .enumerate()
        .find(|(i, op)| op.id != next + *i as u64)
    {
        return Err(OplogError::OutOfOrder {
            got: op.id,
            last: next + i as u64 - 1,
        });
    }
    let mut txn = Txn::new(store);
    txn.replaying = true;
    for op in ops {
        match op.kind {
            OpKind::Changes | OpKind::Term => txn.replay(op)?,
            OpKind::FlushAll => {
                std::mem::replace(&mut txn, Txn::new(store)).commit()?;
                txn.replaying = true;
                store.clear_all(FlushLog::Replayed(&op))?;
            }
        }
        if txn.replayed.len() >= MAX_GROUP {
            std::mem::replace(&mut txn, Txn::new(store)).commit()?;
            txn.replaying = true;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Loads the changes of a chunk of a primary's snapshot (a full sync), big values' pieces
/// joined: applied as a replayed entry's are, with no entry of their own (the snapshot is
/// not part of the history).
pub(crate) fn load_snapshot_changes(store: &Store, changes: Vec<Change>) -> Result<(), OplogError> {
    let mut txn = Txn::new(store);
    txn.replaying = true;
    txn.unlogged = true;
    txn.apply_changes(0, changes)?;
    txn.commit()?;
    Ok(())
}

/// Commits what `f` does with no oplog entry: removals of what no read can see (a dead
/// collection's members, [`super::garbage`]), which each store makes on its own. Only inside
/// [`Writer::exclusive`], so that no group of logged writes shares the batch.
pub(crate) fn commit_unlogged(
    store: &Store,
    f: impl FnOnce(&mut Txn<'_>),
) -> Result<(), StoreError> {
    let mut txn = Txn::new(store);
    txn.unlogged = true;
    f(&mut txn);
    txn.commit()
}

/// A data key as the group sees it.
struct Loaded {
    /// `Some` = present (maybe expired), `None` = absent.
    state: Option<Entry>,
    /// Whether the row cache held the key when the group first loaded it (which decides
    /// whether the new state is cached: [`super::cache`]).
    cached: bool,
    /// Changed in this group: the batch writes its final state.
    dirty: bool,
    /// Present when the group first loaded it: then the key filter has it already (every
    /// key was added by the commit that created it, or by the fill at start).
    existed: bool,
}

/// What a group does with a member it reads: whether caching it is worth anything.
enum Use {
    Keep,
    Once,
}

/// The state one group of writes sees and changes. (foldhash, seeded per process: these maps
/// hold at most one group's keys, so SipHash's stronger defence against chosen keys would
/// only add to the cost of every key a write touches.)
pub struct Txn<'a> {
    store: &'a Store,
    /// Data keys read or written in this group.
    overlay: HashMap<Vec<u8>, Loaded>,
    /// Expiry index entries to add (true) or remove (false); the last decision wins.
    index: HashMap<Vec<u8>, bool>,
    count_delta: HashMap<u16, i64>,
    /// Members put (`Some`) or removed (`None`); ordered, so that scans can merge it with
    /// the committed members.
    members: BTreeMap<Vec<u8>, Option<Bytes>>,
    /// Garbage markers of dead collection versions to write (true) or remove (false).
    garbage: HashMap<(u16, u64), bool>,
    /// Whether a collection version was handed out (the counter is then persisted).
    new_versions: bool,
    error: Option<StoreError>,
    expired: u64,
    /// Keys put or deleted, for INFO's `rdb_changes_since_last_save`.
    changes: u64,
    /// Applying another store's entries: garbage markers come from them, not from the
    /// writes ([`super::oplog`] says why).
    replaying: bool,
    /// Those entries, stored as they came instead of a new one.
    replayed: Vec<Op>,
    /// The term this group starts (its entry is then a term marker).
    new_term: Option<u64>,
    /// Writes no oplog entry (a snapshot being loaded).
    unlogged: bool,
    /// New slot states, in force for the rest of the group and published once it commits.
    slot_table: Option<Arc<SlotTable>>,
    /// Committed members read ahead, by collection (the slot and version its member keys
    /// start with), one window for reads from the low end and one from the high end (so
    /// that LPOPs and RPOPs of one list in a group do not keep replacing one): a run of
    /// pops of one collection in a group (list pops, ZPOPMIN and ZPOPMAX walks) finds its
    /// members there instead of a lookup or an opened range each. Reads look behind the
    /// group's own changes (`members`) first.
    windows: [HashMap<Vec<u8>, Window>; 2],
    /// Bytes of values read ahead so far.
    ahead_bytes: usize,
}

/// Every committed member in `lo..end`, in key order, and how many the next read-ahead of
/// its collection reads.
#[derive(Default)]
struct Window {
    lo: Vec<u8>,
    end: Vec<u8>,
    entries: Vec<(Vec<u8>, Bytes)>,
    next_len: usize,
}

impl Window {
    fn covers(&self, key: &[u8]) -> bool {
        self.lo.as_slice() <= key && key < self.end.as_slice()
    }

    /// Whether a read of `lo..hi` from its low end (its high end when `rev`) starts inside.
    fn starts(&self, lo: &[u8], hi: &[u8], rev: bool) -> bool {
        match rev {
            false => self.covers(lo),
            true => self.lo.as_slice() < hi && hi <= self.end.as_slice(),
        }
    }

    /// A covered member's committed value: `Some(None)` when it has none.
    fn get(&self, key: &[u8]) -> Option<Option<&Bytes>> {
        self.covers(key).then(|| {
            let at = self
                .entries
                .binary_search_by(|(k, _)| k.as_slice().cmp(key));
            at.ok().map(|i| &self.entries[i].1)
        })
    }
}

/// A member key's collection: its slot and version.
const COLLECTION_PREFIX: usize = 10;

/// Reads up to `n` committed members of `lo..hi` from its low end (its high end when `rev`)
/// as a window.
fn fill_window(
    store: &Store,
    lo: &[u8],
    hi: &[u8],
    rev: bool,
    n: usize,
) -> Result<(Window, usize), StoreError> {
    let read = committed_members(store, lo, hi, rev, true);
    let mut window = Window {
        lo: lo.to_vec(),
        end: hi.to_vec(),
        ..Window::default()
    };
    let mut bytes = 0;
    for m in read.map(owned) {
        let (k, v) = m?;
        if !(lo..hi).contains(&k.as_slice()) {
            break;
        }
        store.stats.members_read.inc();
        bytes += v.len();
        window.entries.push((k, v));
        if window.entries.len() >= n || bytes >= READ_AHEAD_BYTES {
            // Up to and with the last one read (its key and a zero byte is the next
            // possible key).
            let last = window.entries[window.entries.len() - 1].0.clone();
            match rev {
                false => window.end = [last.as_slice(), &[0]].concat(),
                true => window.lo = last,
            }
            break;
        }
    }
    if rev {
        window.entries.reverse();
    }
    Ok((window, bytes))
}

/// The committed members of `lo..hi` in order (reversed when `rev`; [`scan_bounds`] for
/// `open_ended`).
fn committed_members<'s>(
    store: &'s Store,
    lo: &[u8],
    hi: &[u8],
    rev: bool,
    open_ended: bool,
) -> Box<dyn Iterator<Item = fjall::Guard> + 's> {
    let range = store
        .members
        .range::<&[u8], _>(scan_bounds(lo, hi, rev, open_ended));
    match rev {
        false => Box::new(range),
        true => Box::new(range.rev()),
    }
}

/// A member fjall read, copied out of its block.
fn owned(g: fjall::Guard) -> Result<(Vec<u8>, Bytes), StoreError> {
    g.into_inner()
        .map(|(k, v)| (k.to_vec(), Bytes::copy_from_slice(&v)))
        .map_err(StoreError::from)
}

/// The first read-ahead of a group, and the most any reads: a group of one pipeline's pops
/// reads little it does not take, a group of many clients' pops few ranges.
const READ_AHEAD_FIRST: usize = 16;
const READ_AHEAD_MAX: usize = 256;
/// Bytes of values past which a read-ahead stops (elements may be big), and past which a
/// group reads no more ahead.
const READ_AHEAD_BYTES: usize = 1 << 20;
const READ_AHEAD_GROUP_BYTES: usize = 16 << 20;

impl<'a> Txn<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            store,
            overlay: HashMap::new(),
            index: HashMap::new(),
            count_delta: HashMap::new(),
            members: BTreeMap::new(),
            garbage: HashMap::new(),
            new_versions: false,
            error: None,
            expired: 0,
            changes: 0,
            replaying: false,
            replayed: Vec::new(),
            new_term: None,
            unlogged: false,
            slot_table: None,
            windows: Default::default(),
            ahead_bytes: 0,
        }
    }

    /// The slot states as this group left them.
    pub fn slot_table(&self) -> Arc<SlotTable> {
        match &self.slot_table {
            Some(t) => Arc::clone(t),
            None => self.store.slot_table(),
        }
    }

    /// The refusal of a write to `slots` under the slot states as this group left them
    /// (checked for every keyed write: without taking a reference to the table).
    pub fn write_refusal(&self, slots: &[u16]) -> Option<fjord_common::ownership::Refusal> {
        let slots = slots.iter().copied();
        match &self.slot_table {
            Some(t) => t.refusal(slots, true),
            None => self.store.slot_table.load().refusal(slots, true),
        }
    }

    /// Replaces the slot states from here on in the group.
    pub fn set_slot_table(&mut self, table: SlotTable) {
        self.slot_table = Some(Arc::new(table));
    }

    /// The current time for the command being applied.
    pub fn now(&self) -> u64 {
        now_ms()
    }

    /// Physical state of a data key, loading it into the overlay on first use.
    fn load(&mut self, dkey: &[u8]) -> Option<Entry> {
        if let Some(loaded) = self.overlay.get(dkey) {
            return loaded.state.clone();
        }
        let (_, key) = split_data_key(dkey);
        let rows = &self.store.rows;
        let from_cache = rows.get(key);
        let cached = from_cache.is_some();
        let read = match from_cache {
            Some(state) => Ok(state),
            // Under the commit lock: every committed key has been recorded by now.
            None if rows.holds_every_key() => Ok(None),
            None => self.store.read_data(dkey),
        };
        let state = match read {
            Ok(state) => state,
            Err(e) => {
                // Remember the failure: the group will be answered with MISCONF.
                self.error.get_or_insert(e);
                None
            }
        };
        let loaded = Loaded {
            existed: state.is_some(),
            state: state.clone(),
            cached,
            dirty: false,
        };
        self.overlay.insert(dkey.to_vec(), loaded);
        state
    }

    /// The live value of `key`; an expired value is deleted on the way, as Redis does.
    pub fn get(&mut self, key: &[u8]) -> Option<Entry> {
        let dkey = data_key(key);
        let entry = self.load(&dkey)?;
        if entry.is_expired(self.now()) {
            self.remove_physical(&dkey);
            self.expired += 1;
            return None;
        }
        Some(entry)
    }

    /// Stores `entry` under `key`, replacing any value. A collection it replaces becomes
    /// garbage unless `entry` keeps its version; a collection entry must keep its members
    /// in the key's slot (RENAME and COPY across slots copy them: `crate::types`).
    pub fn put(&mut self, key: &[u8], entry: Entry) {
        self.put_data(data_key(key), entry);
    }

    /// `put` by data key.
    fn put_data(&mut self, dkey: Vec<u8>, entry: Entry) {
        let old = self.load(&dkey);
        let slot = split_data_key(&dkey).0;
        let new_version = collection_version(&entry);
        if !self.replaying {
            if let Some(v) = old.as_ref().and_then(collection_version) {
                if new_version != Some(v) {
                    self.garbage.insert((slot, v), true);
                }
            }
            // RENAME within a slot deletes the old name first: its version lives on.
            if let Some(v) = new_version {
                if self.garbage.get(&(slot, v)) == Some(&true) {
                    self.garbage.remove(&(slot, v));
                }
            }
        }
        match &old {
            None => self.count(&dkey, 1),
            Some(old) if old.expire_at != entry.expire_at => {
                if let Some(at) = old.expire_at {
                    self.index.insert(expiry_key(at, &dkey), false);
                }
            }
            Some(_) => {}
        }
        if let Some(at) = entry.expire_at {
            if old.as_ref().and_then(|o| o.expire_at) != Some(at) {
                self.index.insert(expiry_key(at, &dkey), true);
            }
        }
        self.changes += 1;
        self.set_state(dkey, Some(entry));
    }

    /// Deletes `key`; returns whether a live value was there.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        if self.get(key).is_none() {
            return false;
        }
        self.remove_physical(&data_key(key));
        true
    }

    /// Deletes whatever is stored under a data key, expired or not.
    pub(crate) fn remove_physical(&mut self, dkey: &[u8]) {
        if let Some(old) = self.load(dkey) {
            if let Some(v) = collection_version(&old).filter(|_| !self.replaying) {
                self.garbage.insert((split_data_key(dkey).0, v), true);
            }
            self.count(dkey, -1);
            self.changes += 1;
            if let Some(at) = old.expire_at {
                self.index.insert(expiry_key(at, dkey), false);
            }
            self.set_state(dkey.to_vec(), None);
        }
    }

    /// Drops an expiry index entry that no longer matches its key (active expiry).
    pub(crate) fn forget_index_entry(&mut self, ikey: &[u8]) {
        self.index.entry(ikey.to_vec()).or_insert(false);
    }

    /// Physical state of a data key for active expiry (which checks deadlines itself).
    pub(crate) fn load_physical(&mut self, dkey: &[u8]) -> Option<Entry> {
        self.load(dkey)
    }

    /// A version no collection has used, for a new collection.
    pub fn new_version(&mut self) -> u64 {
        self.new_versions = true;
        self.store.next_version.fetch_add(1, Ordering::Relaxed)
    }

    /// The value under a member key, as this group left it.
    pub fn read_member(&mut self, mkey: &[u8]) -> Option<Bytes> {
        self.read_member_for(mkey, Use::Keep)
    }

    /// [`Txn::read_member`] of a member the group then changes or removes (a pop): what is
    /// read from fjall is not cached, for the commit records what the member becomes, and
    /// making room in a full cache for it would cost a pop as much as the read saves.
    pub fn read_member_once(&mut self, mkey: &[u8]) -> Option<Bytes> {
        self.read_member_for(mkey, Use::Once)
    }

    /// Removes a member and returns what it held (a pop).
    pub fn take_member(&mut self, mkey: Vec<u8>) -> Option<Bytes> {
        let value = self.read_member_once(&mkey);
        self.remove_member(mkey);
        value
    }

    /// [`Txn::take_member`] of one of a run of pops, towards `last` (the far end of what
    /// the collection holds, inclusive): the pop reads the members up to `last` ahead
    /// ([`Txn::read_ahead`]), so a run of pops reads a range per many members instead of
    /// one lookup each.
    pub fn take_member_ahead(&mut self, mkey: Vec<u8>, last: &[u8]) -> Option<Bytes> {
        if !self.members.contains_key(&mkey) {
            let rev = mkey.as_slice() > last;
            let hi = [mkey.as_slice().max(last), &[0]].concat();
            self.read_ahead(mkey.as_slice().min(last), &hi, rev);
        }
        self.take_member(mkey)
    }

    /// Before a read of `lo..hi` that may stop early (a pop, a page), from its low end (its
    /// high end when `rev`). From the group's second such read of a collection on, one
    /// that starts outside the collection's window reads the committed members from there
    /// ahead into it (16, then twice as many each time, up to 256 or 1 MiB, and 16 MiB a
    /// group).
    fn read_ahead(&mut self, lo: &[u8], hi: &[u8], rev: bool) {
        let prefix = &lo[..lo.len().min(COLLECTION_PREFIX)];
        if self.ahead_bytes >= READ_AHEAD_GROUP_BYTES {
            return;
        }
        // Looked up before an entry is made: most reads find their collection's window.
        let windows = &mut self.windows[rev as usize];
        if !windows.contains_key(prefix) {
            windows.insert(prefix.to_vec(), Window::default());
        }
        let window = windows.get_mut(prefix).expect("just made");
        if window.starts(lo, hi, rev) {
            return;
        }
        match window.next_len {
            0 => window.next_len = READ_AHEAD_FIRST,
            n => {
                let next_len = (n * 2).min(READ_AHEAD_MAX);
                *window = match fill_window(self.store, lo, hi, rev, n) {
                    Ok((w, bytes)) => {
                        self.ahead_bytes += bytes;
                        Window { next_len, ..w }
                    }
                    Err(e) => {
                        self.error.get_or_insert(e);
                        Window::default()
                    }
                };
            }
        }
    }

    /// The window holding `mkey`'s committed value, if one covers it.
    fn window_of(&self, mkey: &[u8]) -> Option<&Window> {
        let prefix = &mkey[..mkey.len().min(COLLECTION_PREFIX)];
        self.windows
            .iter()
            .filter_map(|windows| windows.get(prefix))
            .find(|w| w.covers(mkey))
    }

    fn read_member_for(&mut self, mkey: &[u8], then: Use) -> Option<Bytes> {
        if let Some(v) = self.members.get(mkey) {
            return v.clone();
        }
        if let Some(v) = self.window_of(mkey).and_then(|w| w.get(mkey)) {
            return v.cloned();
        }
        let store = self.store;
        let load = || {
            store.stats.members_read.inc();
            Ok::<_, fjall::Error>(store.members.get(mkey)?.map(|v| Bytes::copy_from_slice(&v)))
        };
        let read = match then {
            Use::Keep => store.member_cache.get_or_load(mkey, load),
            Use::Once => store.member_cache.get_or(mkey, load),
        };
        match read {
            Ok(v) => v,
            Err(e) => {
                self.error.get_or_insert(e.into());
                None
            }
        }
    }

    /// Stores a member (a collection's entry must count it: `crate::types`).
    pub fn put_member(&mut self, mkey: Vec<u8>, value: Bytes) {
        self.members.insert(mkey, Some(value));
    }

    /// Removes a member.
    pub fn remove_member(&mut self, mkey: Vec<u8>) {
        self.members.insert(mkey, None);
    }

    /// Visits members in `lo..hi` as this group left them (see [`super::members::Members`]).
    /// With `open_ended`, the walk may stop early (a pop, a page of a big sorted set): it
    /// goes through the collection's read-ahead window ([`Txn::read_ahead`]), and beyond it
    /// opens the committed range at its near end only, cutting it at the far one here, as
    /// [`super::members::View`] does for the same reason (a table reader would seek the far
    /// bound long before the walk gets there).
    pub(crate) fn scan_members_merged(
        &mut self,
        lo: &[u8],
        hi: &[u8],
        rev: bool,
        open_ended: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) {
        if open_ended {
            self.read_ahead(lo, hi, rev);
        }
        let store = self.store;
        let stats = &store.stats;
        let window = match open_ended {
            true => self.windows[rev as usize]
                .get(&lo[..lo.len().min(COLLECTION_PREFIX)])
                .filter(|w| w.starts(lo, hi, rev)),
            false => None,
        };
        // What the window holds of the range, in the walk's order, and where fjall takes
        // over: past the window's far end, or at the walk's start without one.
        let (ahead, near): (&[(Vec<u8>, Bytes)], &[u8]) = match window {
            Some(w) if rev => {
                let to = w.entries.partition_point(|(k, _)| k.as_slice() < hi);
                (&w.entries[..to], w.lo.as_slice())
            }
            Some(w) => {
                let from = w.entries.partition_point(|(k, _)| k.as_slice() < lo);
                (&w.entries[from..], w.end.as_slice())
            }
            None if rev => (&[], hi),
            None => (&[], lo),
        };
        let ahead: Box<dyn Iterator<Item = _>> = match rev {
            false => Box::new(ahead.iter()),
            true => Box::new(ahead.iter().rev()),
        };
        let (rest_lo, rest_hi) = match rev {
            true => (lo, near.min(hi)),
            false => (near.max(lo), hi),
        };
        // Opened only if the walk gets past what was read ahead, and not for a window that
        // reaches the far end.
        let beyond = (rest_lo < rest_hi).then(|| {
            committed_members(store, rest_lo, rest_hi, rev, open_ended)
                .map(owned)
                .inspect(|_| stats.members_read.inc())
        });
        let within = |m: &Result<(Vec<u8>, Bytes), StoreError>| match m {
            Ok((k, _)) => (lo..hi).contains(&k.as_slice()),
            Err(_) => true,
        };
        let disk = ahead
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .chain(beyond.into_iter().flatten())
            .take_while(within);
        let overlay = self.members.range::<[u8], _>(byte_range(lo, hi));
        let overlay: Box<dyn Iterator<Item = _>> = match rev {
            false => Box::new(overlay),
            true => Box::new(overlay.rev()),
        };
        let result = merge_members(disk, overlay.map(|(k, v)| (k.as_slice(), v)), rev, visit);
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    /// Forgets a garbage marker once its version's members are gone ([`super::garbage`]).
    /// A FLUSHALL may have removed the marker since the sweep read it: then there is none
    /// to drop (and to count).
    pub(crate) fn drop_garbage_marker(&mut self, slot: u16, version: u64) {
        let on_disk = || {
            self.store
                .meta
                .contains_key(garbage_key(slot, version))
                .unwrap_or(true)
        };
        if self.garbage.get(&(slot, version)) == Some(&true) || on_disk() {
            self.garbage.insert((slot, version), false);
        }
    }

    /// Applies one of a primary's entries (see [`replay`]).
    fn replay(&mut self, op: Op) -> Result<(), OplogError> {
        self.apply_changes(op.id, op.changes()?)?;
        if op.kind == OpKind::Term {
            self.new_term = Some(op.term);
        }
        self.replayed.push(op);
        Ok(())
    }

    /// Applies the changes of entry `id` as raw puts and deletes.
    fn apply_changes(&mut self, id: u64, changes: Vec<Change>) -> Result<(), OplogError> {
        let bad = || OplogError::Malformed(id);
        for change in changes {
            match change {
                Change::Put(dkey, value) => {
                    let entry = Entry::decode(value).ok_or_else(bad)?;
                    if dkey.len() < 2 {
                        return Err(bad());
                    }
                    self.put_data(dkey.to_vec(), entry);
                }
                Change::Delete(dkey) if dkey.len() >= 2 => self.remove_physical(&dkey),
                Change::Delete(_) => return Err(bad()),
                Change::PutMember(mkey, value) => self.put_member(mkey.to_vec(), value),
                Change::DeleteMember(mkey) => self.remove_member(mkey.to_vec()),
                Change::Garbage {
                    slot,
                    version,
                    dead: true,
                } => {
                    self.garbage.insert((slot, version), true);
                }
                // Logged only by stores from before each store reclaimed its own garbage:
                // the marker stays until this store has removed the members itself.
                Change::Garbage { dead: false, .. } => {}
                Change::NextVersion(next) => {
                    self.store.next_version.fetch_max(next, Ordering::Relaxed);
                    self.new_versions = true;
                }
                Change::SlotStates(raw) => {
                    self.set_slot_table(SlotTable::decode(&raw).ok_or_else(bad)?);
                }
                // Joined before anything applies them ([`super::oplog::Pieces`]).
                Change::Piece { .. } => return Err(bad()),
            }
        }
        Ok(())
    }

    /// Applies the changes of one of another shard's entries, filtered to slots this store
    /// imports, as this store's own writes: counts, the expiry index and garbage are derived
    /// here, and the entry logged is this store's. Members are keyed by collection version
    /// and versions are each store's own, so a collection gets a version of this store the
    /// first time the import meets it (`versions` remembers which); members of a version no
    /// imported entry holds belong to a dead collection and are left behind. Returns the
    /// data entries put.
    pub(crate) fn apply_imported(
        &mut self,
        id: u64,
        changes: &[Change],
        versions: &mut VersionMap,
    ) -> Result<u64, OplogError> {
        let bad = || OplogError::Malformed(id);
        // Deletes first: a RENAME's delete of the old name must come before the put that
        // keeps its version, or the version would count as garbage (see `put_data`). An
        // entry holds each key once, so no other order matters.
        for change in changes {
            if let Change::Delete(dkey) = change {
                if dkey.len() < 2 {
                    return Err(bad());
                }
                self.remove_physical(dkey);
            }
        }
        let mut puts = 0;
        for change in changes {
            let Change::Put(dkey, value) = change else {
                continue;
            };
            let mut entry = Entry::decode(value.clone()).ok_or_else(bad)?;
            if dkey.len() < 2 {
                return Err(bad());
            }
            if entry.kind.is_collection() {
                let mut meta =
                    CollectionMeta::decode(entry.kind, &entry.payload).ok_or_else(bad)?;
                let from = (split_data_key(dkey).0, meta.version);
                meta.version = match versions.get(&from) {
                    Some(&v) => v,
                    None => {
                        let v = self.new_version();
                        versions.insert(from, v);
                        v
                    }
                };
                entry.payload = meta.encode();
            }
            self.put_data(dkey.to_vec(), entry);
            puts += 1;
        }
        let mapped = |mkey: &[u8]| -> Option<Vec<u8>> {
            let slot = u16::from_be_bytes(mkey.get(..2)?.try_into().ok()?);
            let version = u64::from_be_bytes(mkey.get(2..10)?.try_into().ok()?);
            let ours = versions.get(&(slot, version))?;
            let mut key = mkey.to_vec();
            key[2..10].copy_from_slice(&ours.to_be_bytes());
            Some(key)
        };
        for change in changes {
            match change {
                Change::PutMember(mkey, value) => {
                    if let Some(key) = mapped(mkey) {
                        self.put_member(key, value.clone());
                    }
                }
                Change::DeleteMember(mkey) => {
                    if let Some(key) = mapped(mkey) {
                        self.remove_member(key);
                    }
                }
                // Joined before anything applies them ([`super::oplog::Pieces`]).
                Change::Piece { .. } => return Err(bad()),
                _ => {}
            }
        }
        Ok(puts)
    }

    /// Keys committed in `slot` (this group's changes not counted).
    pub fn slot_count(&self, slot: u16) -> u64 {
        self.store.count_in_slot(slot)
    }

    /// The term of this store's history.
    pub fn term(&self) -> u64 {
        self.store.oplog.term()
    }

    pub(crate) fn note_expired(&mut self) {
        self.expired += 1;
    }

    fn set_state(&mut self, dkey: Vec<u8>, state: Option<Entry>) {
        let loaded = self.overlay.entry(dkey).or_insert(Loaded {
            state: None,
            cached: false,
            dirty: false,
            existed: false,
        });
        loaded.state = state;
        loaded.dirty = true;
    }

    fn count(&mut self, dkey: &[u8], delta: i64) {
        let (slot, _) = split_data_key(dkey);
        *self.count_delta.entry(slot).or_insert(0) += delta;
    }

    /// Writes the group as one atomic batch with its oplog entry, synced first when the
    /// fsync mode says so.
    fn commit(mut self) -> Result<(), StoreError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut dirty: Vec<(Vec<u8>, Loaded)> =
            self.overlay.drain().filter(|(_, l)| l.dirty).collect();
        if dirty.is_empty()
            && self.index.is_empty()
            && self.members.is_empty()
            && self.garbage.is_empty()
            && self.replayed.is_empty()
            && self.new_term.is_none()
            && self.slot_table.is_none()
        {
            return Ok(());
        }
        dirty.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let dirty_len = dirty.len();
        let store = self.store;
        let mut batch = store.db.batch();
        // A new entry, unless the group replays another store's. A group that starts a
        // term writes its marker first, then (if it changed anything) an entry of changes
        // in the new term: writes share a group with the term's start (a promotion under
        // load), and a marker carries no changes.
        let new_entry = self.replayed.is_empty() && !self.unlogged;
        let marker = self
            .new_term
            .filter(|_| new_entry)
            .map(|term| store.oplog.begin(OpKind::Term, term));
        let mut op = new_entry.then(|| {
            let term = self.new_term.unwrap_or_else(|| store.oplog.term());
            store.oplog.begin(OpKind::Changes, term)
        });
        if let Some(term) = self.new_term {
            store.oplog.record_term(&mut batch, term);
        }
        // The final states, for the row cache once the batch is committed.
        let mut states = Vec::with_capacity(dirty.len());
        // Slots of what reads could see change ([`super::visibility`]): released when this
        // group's replies pass the acknowledgement gate, or on a replica when its primary
        // says it acknowledged them (a snapshot's chunks are covered as a whole instead).
        let mut touched: Vec<u16> = Vec::new();
        let mark = !self.unlogged;
        for (dkey, loaded) in dirty {
            if mark {
                touched.push(split_data_key(&dkey).0);
            }
            let key = CacheKey::from_slice(split_data_key(&dkey).1);
            let state = match loaded.state {
                Some(entry) => {
                    let encoded = entry.encode();
                    // The cached entry shares the encoded value: the payload it came with is
                    // a slice of a client's read buffer, which it must not keep alive.
                    let payload = encoded.slice(HEADER_LEN..);
                    if !loaded.existed {
                        store.note_present(&dkey);
                    }
                    if let Some(op) = &mut op {
                        op.put(&dkey, &encoded);
                    }
                    batch.insert(&store.data, dkey, &encoded[..]);
                    Some(Entry { payload, ..entry })
                }
                None => {
                    if let Some(op) = &mut op {
                        op.delete(&dkey);
                    }
                    batch.remove(&store.data, dkey);
                    None
                }
            };
            states.push((key, state, loaded.cached));
        }
        let entries = dirty_len + self.index.len() + self.members.len();
        // The members' final states, for the member cache once the batch is committed.
        let mut member_states = Vec::with_capacity(self.members.len());
        for (mkey, value) in std::mem::take(&mut self.members) {
            if mark {
                touched.push(u16::from_be_bytes([mkey[0], mkey[1]]));
            }
            match value {
                Some(v) => {
                    if let Some(op) = &mut op {
                        op.put_member(&mkey, &v);
                    }
                    // Copied: a value from a command is a slice of the client's read
                    // buffer (one read from fjall, of a whole block), which the member
                    // cache would otherwise keep alive (fjall copies into its own).
                    let v = Bytes::copy_from_slice(&v);
                    batch.insert(&store.members, mkey.as_slice(), &v[..]);
                    member_states.push((mkey, Some(v)));
                }
                None => {
                    if let Some(op) = &mut op {
                        op.delete_member(&mkey);
                    }
                    batch.remove(&store.members, mkey.as_slice());
                    member_states.push((mkey, None));
                }
            }
        }
        let mut dead_delta = 0i64;
        // In key order, so that the entry's bytes do not depend on a hash map's.
        let mut garbage: Vec<((u16, u64), bool)> = self.garbage.drain().collect();
        garbage.sort_unstable();
        for ((slot, version), add) in garbage {
            if let Some(op) = &mut op {
                op.garbage(slot, version, add);
            }
            dead_delta += if add { 1 } else { -1 };
            if add {
                batch.insert(&store.meta, garbage_key(slot, version), []);
            } else {
                batch.remove(&store.meta, garbage_key(slot, version));
            }
        }
        if self.new_versions {
            let next = store.next_version.load(Ordering::Relaxed);
            if let Some(op) = &mut op {
                op.next_version(next);
            }
            batch.insert(&store.meta, NEXT_VERSION_KEY, next.to_be_bytes().to_vec());
        }
        if let Some(table) = &self.slot_table {
            let encoded = table.encode();
            if let Some(op) = &mut op {
                op.slot_states(&encoded);
            }
            batch.insert(&store.meta, SLOT_STATES_KEY, &encoded[..]);
        }
        // The oplog's entry (or the replayed ones): the op id is the next one, under the
        // commit lock, so ids follow commit order.
        let (first_id, mut end_bytes) = store.oplog.next();
        let mut last_id = first_id - 1;
        let mut logged = 0;
        let op = op.filter(|op| marker.is_none() || !op.is_empty());
        for op in marker.into_iter().chain(op) {
            let len = store.oplog.append(&mut batch, op, last_id + 1, end_bytes);
            last_id += 1;
            end_bytes += len;
            logged += len;
        }
        for op in &self.replayed {
            store
                .oplog
                .append_replayed(&mut batch, op, last_id + 1)
                .map_err(|e| super::corrupt(&e.to_string()))?;
            (last_id, end_bytes) = (op.id, op.bytes_before + op.len());
            logged += op.len();
        }
        for (ikey, add) in self.index.drain() {
            if add {
                batch.insert(&store.expiry, ikey, []);
            } else {
                batch.remove(&store.expiry, ikey);
            }
        }
        let mut new_counts = Vec::with_capacity(self.count_delta.len());
        for (&slot, &delta) in &self.count_delta {
            if delta == 0 {
                continue;
            }
            let current = store.slot_counts[usize::from(slot)].load(Ordering::Relaxed) as i64;
            let n = (current + delta).max(0) as u64;
            // An empty slot has no count, however it came to be empty (a replica that
            // commits the same writes in other groups holds the same).
            match n {
                0 => batch.remove(&store.meta, slot_count_key(slot)),
                _ => batch.insert(&store.meta, slot_count_key(slot), n.to_be_bytes().to_vec()),
            }
            new_counts.push((slot, n));
        }
        let mode = match store.options.fsync {
            FsyncMode::Always => fjall::PersistMode::SyncData,
            FsyncMode::Everysec | FsyncMode::No => fjall::PersistMode::Buffer,
        };
        for slot in touched {
            store.visible.mark(slot, last_id);
        }
        let started = Instant::now();
        // From before fjall shows the batch until the cache has recorded it.
        let window = store.rows.commit_window();
        if let Err(e) = batch.durability(Some(mode)).commit() {
            for (key, ..) in &states {
                store.rows.forget(key);
            }
            for (mkey, _) in &member_states {
                store.member_cache.forget(mkey);
            }
            return Err(e.into());
        }
        if store.options.fsync == FsyncMode::Always {
            store.record_fsync(started);
        }
        store.oplog.committed(last_id, end_bytes, logged);
        if let Some(term) = self.new_term {
            store.oplog.term_committed(term);
        }
        if let Some(table) = self.slot_table.take() {
            store.slot_table.store(table);
        }
        // Before any reply of the group leaves, so an acknowledged write is what reads see.
        for (key, state, cached) in states {
            store.rows.record(key, state, cached);
        }
        drop(window);
        for (mkey, state) in member_states {
            store.member_cache.record(mkey, state);
        }
        for (slot, n) in new_counts {
            store.slot_counts[usize::from(slot)].store(n, Ordering::Relaxed);
        }
        store.stats.expired_keys.inc_by(self.expired);
        store.stats.key_changes.inc_by(self.changes);
        store.stats.entries_written.inc_by(entries as u64);
        store.stats.dead_collections.add(dead_delta);
        // The group is committed whatever this does: a failure here is fjall's to report
        // on the next commit.
        if let Err(e) = store.seal_full_memtables() {
            tracing::warn!("sealing full memtables: {e}");
        }
        Ok(())
    }
}

/// The version of a collection's members (`None` for a string).
fn collection_version(entry: &Entry) -> Option<u64> {
    if !entry.kind.is_collection() {
        return None;
    }
    CollectionMeta::decode(entry.kind, &entry.payload).map(|m| m.version)
}
