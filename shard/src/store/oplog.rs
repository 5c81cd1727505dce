//! The operation log: every committed change, in commit order, for replicas to pull.
//!
//! fjall has no change feed, so the commit path writes one oplog entry per committed group
//! into the same atomic batch as the data (a crash keeps both or neither). An entry holds the
//! group's *resulting* raw changes, never commands: an INCR is logged as the value it left,
//! an expiry as a delete, a SPOP as the member entries it removed. A replica applies them
//! through its own writer ([`super::writer::Writer::replay`]) and writes the same entries,
//! so it can be promoted or feed another replica.
//!
//! Logged: the data keyspace's puts and deletes, the members keyspace's, new garbage markers,
//! the collection-version counter and the slot states. Not logged: what a store derives from those (per-slot
//! counts, the expiry index), which the replaying store derives the same way. Garbage
//! markers are logged rather than derived because deriving them depends on the order of a
//! group's writes (RENAME deletes the old name, then revives its version under the new one),
//! and an entry lists its changes in key order. Not logged either: the removal of a dead
//! version's members and of its marker, which each store makes on its own
//! ([`super::garbage`]).
//!
//! # Entry layout (in the `oplog` keyspace, keyed by op id, u64 BE)
//!
//! `format (u8, 1) ++ kind (u8) ++ term (u64 BE) ++ bytes_before (u64 BE) ++ changes (u32
//! BE)`, then for kind 0 (changes) that many `tag (u8)` records (the count makes an entry
//! cut at a record's end detectable):
//!
//! | tag | record |
//! | --- | --- |
//! | 1 put data | `key len (u32 BE) ++ data key ++ value len (u32 BE) ++ encoded value` |
//! | 2 delete data | `key len (u32 BE) ++ data key` |
//! | 3 put member | `key len ++ member key ++ value len ++ value` |
//! | 4 delete member | `key len ++ member key` |
//! | 5 garbage marked | `slot (u16 BE) ++ version (u64 BE)` |
//! | 6 garbage swept | `slot (u16 BE) ++ version (u64 BE)`; no longer written, ignored when applied (each store removes its own markers, [`super::garbage`]) |
//! | 7 next version | `version (u64 BE)` |
//! | 8 slot states | `len (u32 BE) ++ the whole table` ([`super::slots`]) |
//! | 9 piece of a data value | `key len ++ data key ++ value's whole len (u32 BE) ++ piece len ++ piece` |
//! | 10 piece of a member's value | the same with a member key |
//!
//! Pieces appear only in a snapshot's chunks ([`super::Store::snapshot_chunks`]): a value
//! bigger than a chunk goes as consecutive pieces, each a record of its own, so that the
//! stream is cut between them; the receiver joins them back into a put ([`Pieces`]).
//!
//! Kind 1 marks the start of a term (the header's), kind 2 a FLUSHALL; neither has a body.
//! `bytes_before` is the total size of every entry before this one in the history, so the
//! bytes between two entries are a subtraction, without reading what lies between.
//!
//! Op ids start at 1 and are gap-free. The history id (`meta` key `history`), made when a
//! store is created, names the sequence: a replica resumes only from a primary with the same
//! history. `meta` also holds `term` and `oplogfirst`, the first op id retention kept.
//!
//! # Retention
//!
//! Entries beyond `retention_bytes` are trimmed from the front by a background thread
//! ([`start_trimming`]), never the newest one. A reader (a replica catching up, a full
//! sync's tail) takes a [`Pin`] at the op id it reads from; trimming stops short of the
//! oldest pin, until a pin holds more than `pin_max_bytes` behind it: then that pin is lost
//! (its reader gets [`OplogError::PinLost`], counted in `fjord_shard_oplog_pins_lost_total`)
//! and trimming goes on, so a stuck reader cannot fill the disk.

use super::{background, corrupt, Round, StoreError};
use bytes::{BufMut, Bytes, BytesMut};
use fjall::{Database, Keyspace, OwnedWriteBatch};
use fjord_common::metrics;
use prometheus::{IntCounter, IntGauge, Registry};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The layout version of an entry.
const FORMAT: u8 = 1;
/// Bytes before an entry's body: format, kind, term, bytes_before, number of changes.
const HEADER_LEN: usize = 22;

const TERM_KEY: &[u8] = b"term";
const HISTORY_KEY: &[u8] = b"history";
const FIRST_KEY: &[u8] = b"oplogfirst";
/// Present while a full sync is replacing the store's contents: such a store holds half a
/// snapshot and must not be promoted.
const SYNCING_KEY: &[u8] = b"syncing";

/// Most entries one trimming round removes (one batch).
const TRIM_BATCH: usize = 10_000;
/// Pause between looks when nothing was to be trimmed.
const TRIM_INTERVAL: Duration = Duration::from_millis(200);

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    /// A committed group's changes.
    Changes = 0,
    /// The start of the term in the header.
    Term = 1,
    /// Everything was deleted (FLUSHALL of a whole store).
    FlushAll = 2,
}

/// One change of a [`OpKind::Changes`] entry, as the store wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A data key (`slot ++ key`) and its new encoded value.
    Put(Bytes, Bytes),
    Delete(Bytes),
    /// A member key and its value.
    PutMember(Bytes, Bytes),
    DeleteMember(Bytes),
    /// A collection version died (`dead`), or its members have been swept.
    Garbage {
        slot: u16,
        version: u64,
        dead: bool,
    },
    /// The collection-version counter moved on to this value.
    NextVersion(u64),
    /// The slot states, whole (encoded).
    SlotStates(Bytes),
    /// A piece of a value too big for one snapshot chunk (of a member's if `member`): the
    /// pieces of a value come in order, each with the value's whole length ([`Pieces`]).
    Piece {
        member: bool,
        key: Bytes,
        total: u32,
        piece: Bytes,
    },
}

/// Why the oplog cannot give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum OplogError {
    #[error("oplog entry {0} is malformed")]
    Malformed(u64),
    #[error("op {wanted} is no longer in the oplog (it starts at {first})")]
    Trimmed { wanted: u64, first: u64 },
    #[error("op {wanted} is not in the oplog yet (the last is {last})")]
    Ahead { wanted: u64, last: u64 },
    #[error("op {got} does not follow the last op held, {last}")]
    OutOfOrder { got: u64, last: u64 },
    #[error("the reader fell more than {0} bytes behind the oplog's end and lost its place")]
    PinLost(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A decoded entry. Its bytes are kept, so that a replica stores exactly what it received.
#[derive(Clone, Debug)]
pub struct Op {
    pub id: u64,
    pub kind: OpKind,
    pub term: u64,
    pub bytes_before: u64,
    raw: Bytes,
}

impl Op {
    /// Reads an entry's header; the body is checked by [`Op::changes`].
    pub fn decode(id: u64, raw: Bytes) -> Result<Self, OplogError> {
        if raw.len() < HEADER_LEN || raw[0] != FORMAT {
            return Err(OplogError::Malformed(id));
        }
        let kind = match raw[1] {
            0 => OpKind::Changes,
            1 => OpKind::Term,
            2 => OpKind::FlushAll,
            _ => return Err(OplogError::Malformed(id)),
        };
        let word = |at: usize| u64::from_be_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]));
        Ok(Self {
            id,
            kind,
            term: word(2),
            bytes_before: word(10),
            raw,
        })
    }

    /// The entry as stored.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Its size, which the next entry's `bytes_before` adds.
    pub fn len(&self) -> u64 {
        self.raw.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The changes of a [`OpKind::Changes`] entry (none for a marker), checked to the end.
    pub fn changes(&self) -> Result<Vec<Change>, OplogError> {
        let bad = || OplogError::Malformed(self.id);
        let mut body = Reader {
            buf: &self.raw,
            at: HEADER_LEN,
        };
        let count = u32::from_be_bytes(self.raw[18..22].try_into().unwrap_or([0; 4]));
        if self.kind != OpKind::Changes && count != 0 {
            return Err(bad());
        }
        // Not sized from `count` (it comes from outside): the records themselves bound it.
        let mut out = Vec::new();
        while let Some(tag) = body.u8() {
            let change = match tag {
                1 => Change::Put(body.bytes().ok_or_else(bad)?, body.bytes().ok_or_else(bad)?),
                2 => Change::Delete(body.bytes().ok_or_else(bad)?),
                3 => {
                    Change::PutMember(body.bytes().ok_or_else(bad)?, body.bytes().ok_or_else(bad)?)
                }
                4 => Change::DeleteMember(body.bytes().ok_or_else(bad)?),
                5 | 6 => Change::Garbage {
                    slot: body.u16().ok_or_else(bad)?,
                    version: body.u64().ok_or_else(bad)?,
                    dead: tag == 5,
                },
                7 => Change::NextVersion(body.u64().ok_or_else(bad)?),
                8 => Change::SlotStates(body.bytes().ok_or_else(bad)?),
                9 | 10 => Change::Piece {
                    member: tag == 10,
                    key: body.bytes().ok_or_else(bad)?,
                    total: body.u32().ok_or_else(bad)?,
                    piece: body.bytes().ok_or_else(bad)?,
                },
                _ => return Err(bad()),
            };
            out.push(change);
        }
        if out.len() != count as usize {
            return Err(bad());
        }
        Ok(out)
    }
}

/// A cursor over an entry's body that never reads past its end.
struct Reader<'a> {
    buf: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<std::ops::Range<usize>> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len())?;
        let range = self.at..end;
        self.at = end;
        Some(range)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|r| self.buf[r.start])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .map(|r| u16::from_be_bytes([self.buf[r.start], self.buf[r.start + 1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let r = self.take(4)?;
        Some(u32::from_be_bytes(self.buf[r].try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        let r = self.take(8)?;
        Some(u64::from_be_bytes(self.buf[r].try_into().ok()?))
    }

    /// A length-prefixed byte string, sharing the entry's buffer.
    fn bytes(&mut self) -> Option<Bytes> {
        let len = self.u32()? as usize;
        self.take(len).map(|r| self.buf.slice(r))
    }
}

/// Builds one entry as the commit path writes its batch.
pub struct OpBuilder {
    buf: Vec<u8>,
    count: u32,
}

impl OpBuilder {
    pub fn new(kind: OpKind, term: u64, bytes_before: u64) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.put_u8(FORMAT);
        buf.put_u8(kind as u8);
        buf.put_u64(term);
        buf.put_u64(bytes_before);
        buf.put_u32(0);
        Self { buf, count: 0 }
    }

    /// Starts a record.
    fn tag(&mut self, tag: u8) {
        self.buf.put_u8(tag);
        self.count += 1;
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entry's bytes, placed `bytes_before` into the history.
    fn finish_at(mut self, bytes_before: u64) -> Vec<u8> {
        self.buf[10..18].copy_from_slice(&bytes_before.to_be_bytes());
        self.finish()
    }

    /// The entry's bytes, its count of changes filled in.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf[18..22].copy_from_slice(&self.count.to_be_bytes());
        self.buf
    }

    fn field(&mut self, bytes: &[u8]) {
        // Keys and values are far below 4 GiB (bulk strings are limited to 512 MiB).
        self.buf.put_u32(bytes.len() as u32);
        self.buf.extend_from_slice(bytes);
    }

    pub fn put(&mut self, dkey: &[u8], value: &[u8]) {
        self.tag(1);
        self.field(dkey);
        self.field(value);
    }

    pub fn delete(&mut self, dkey: &[u8]) {
        self.tag(2);
        self.field(dkey);
    }

    pub fn put_member(&mut self, mkey: &[u8], value: &[u8]) {
        self.tag(3);
        self.field(mkey);
        self.field(value);
    }

    pub fn delete_member(&mut self, mkey: &[u8]) {
        self.tag(4);
        self.field(mkey);
    }

    pub fn garbage(&mut self, slot: u16, version: u64, dead: bool) {
        self.tag(if dead { 5 } else { 6 });
        self.buf.put_u16(slot);
        self.buf.put_u64(version);
    }

    pub fn next_version(&mut self, version: u64) {
        self.tag(7);
        self.buf.put_u64(version);
    }

    pub fn slot_states(&mut self, table: &[u8]) {
        self.tag(8);
        self.field(table);
    }

    /// A piece of `key`'s value (a member's if `member`), `total` bytes long in all.
    pub fn piece(&mut self, member: bool, key: &[u8], total: usize, piece: &[u8]) {
        self.tag(if member { 10 } else { 9 });
        self.field(key);
        // Values are at most 512 MiB and a little (the entry's header).
        self.buf.put_u32(total as u32);
        self.field(piece);
    }
}

/// The most a value joined from pieces may hold: a 512 MiB string and its entry's header.
const MAX_JOINED: usize = (512 << 20) + 64;

/// Joins the pieces of a big value, sent over several snapshot chunks, back into one put.
#[derive(Default)]
pub struct Pieces {
    /// The value being joined: whether a member's, its key, its whole length, and what
    /// came so far.
    pending: Option<(bool, Bytes, usize, BytesMut)>,
}

impl Pieces {
    /// The changes of chunk `id` with pieces joined: a value's put comes with its last
    /// piece. Pieces out of order, or anything between the pieces of a value, are
    /// malformed.
    pub fn join(&mut self, id: u64, changes: Vec<Change>) -> Result<Vec<Change>, OplogError> {
        let bad = || OplogError::Malformed(id);
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            let Change::Piece {
                member,
                key,
                total,
                piece,
            } = change
            else {
                if self.pending.is_some() {
                    return Err(bad());
                }
                out.push(change);
                continue;
            };
            let total = total as usize;
            if total > MAX_JOINED {
                return Err(bad());
            }
            let (m, k, t, value) = self.pending.get_or_insert_with(|| {
                // Grown as pieces come, not sized from a length that comes from outside.
                (member, key.clone(), total, BytesMut::new())
            });
            if (*m, &*k, *t) != (member, &key, total) || value.len() + piece.len() > total {
                return Err(bad());
            }
            value.extend_from_slice(&piece);
            if value.len() == total {
                if let Some((member, key, _, value)) = self.pending.take() {
                    let value = value.freeze();
                    out.push(match member {
                        true => Change::PutMember(key, value),
                        false => Change::Put(key, value),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Whether a value still waits for pieces (a snapshot that ends so is malformed).
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// Limits the oplog keeps to.
#[derive(Clone, Copy, Debug)]
pub struct OplogOptions {
    /// Bytes of entries kept for replicas that reconnect (Redis's `repl-backlog-size`).
    pub retention_bytes: u64,
    /// Most bytes a pinned reader may hold behind it before it loses its place.
    pub pin_max_bytes: u64,
}

/// The oplog's figures, as Prometheus series.
pub struct OplogStats {
    pub first_id: IntGauge,
    pub last_id: IntGauge,
    pub retained_bytes: IntGauge,
    pub bytes_written: IntCounter,
    pub trimmed: IntCounter,
    pub pins: IntGauge,
    pub pins_lost: IntCounter,
    pub term: IntGauge,
}

impl Default for OplogStats {
    fn default() -> Self {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        Self {
            first_id: gauge(
                "fjord_shard_oplog_first_op_id",
                "Oldest op id the oplog still holds",
            ),
            last_id: gauge(
                "fjord_shard_oplog_last_op_id",
                "Newest op id committed (INFO's master_repl_offset)",
            ),
            retained_bytes: gauge("fjord_shard_oplog_bytes", "Bytes of oplog entries retained"),
            bytes_written: counter(
                "fjord_shard_oplog_written_bytes_total",
                "Bytes of oplog entries written: what the oplog adds to every commit",
            ),
            trimmed: counter(
                "fjord_shard_oplog_trimmed_total",
                "Oplog entries removed by retention",
            ),
            pins: gauge(
                "fjord_shard_oplog_pins",
                "Readers (replicas, syncs) holding the oplog from an op id",
            ),
            pins_lost: counter(
                "fjord_shard_oplog_pins_lost_total",
                "Readers that fell further behind than oplog_pin_max_mb and lost their place",
            ),
            term: gauge("fjord_shard_term", "The term this shard's history is in"),
        }
    }
}

impl OplogStats {
    pub fn register(&self, registry: &Registry) {
        for g in [
            &self.first_id,
            &self.last_id,
            &self.retained_bytes,
            &self.pins,
            &self.term,
        ] {
            metrics::register(registry, g.clone());
        }
        for c in [&self.bytes_written, &self.trimmed, &self.pins_lost] {
            metrics::register(registry, c.clone());
        }
    }
}

/// Where a pinned reader stands.
struct PinState {
    /// The next op id it will read.
    next: AtomicU64,
    /// `bytes_before` of that op (the oplog's end bytes when it is not written yet).
    bytes: AtomicU64,
    lost: AtomicBool,
}

/// What trimming and pinning agree on, under one lock.
struct Retained {
    first_id: u64,
    /// `bytes_before` of the first entry.
    first_bytes: u64,
    pins: Vec<Arc<PinState>>,
}

/// The oplog of one store.
pub struct Oplog {
    db: Database,
    keyspace: Keyspace,
    meta: Keyspace,
    /// The op id the next commit takes. Moved only under the commit lock.
    next_id: AtomicU64,
    /// Total size of every entry before `next_id`.
    end_bytes: AtomicU64,
    term: AtomicU64,
    history: Mutex<String>,
    retained: Arc<Mutex<Retained>>,
    options: OplogOptions,
    /// The last op id, for replication links waiting for more.
    committed_tx: tokio::sync::watch::Sender<u64>,
    pub stats: OplogStats,
}

impl Oplog {
    /// Opens the oplog kept in `keyspace`, with its ids and term from `meta`; a store without
    /// a history (new, or written before the oplog) gets one.
    pub(crate) fn open(
        db: Database,
        keyspace: Keyspace,
        meta: Keyspace,
        options: OplogOptions,
    ) -> Result<Self, StoreError> {
        let word = |key: &[u8]| -> Result<Option<u64>, StoreError> {
            Ok(meta
                .get(key)?
                .and_then(|v| v[..].try_into().ok().map(u64::from_be_bytes)))
        };
        let history = match meta.get(HISTORY_KEY)? {
            Some(h) => String::from_utf8_lossy(&h).into_owned(),
            None => {
                let h = new_history_id();
                meta.insert(HISTORY_KEY, h.as_bytes())?;
                h
            }
        };
        let term = word(TERM_KEY)?.unwrap_or(0);
        let stored_first = word(FIRST_KEY)?.unwrap_or(1);
        let last = keyspace
            .last_key_value()
            .map(|guard| edge_entry(guard, "last"))
            .transpose()?;
        let (next_id, end_bytes) = match &last {
            Some(op) => (op.id + 1, op.bytes_before + op.len()),
            None => (stored_first.max(1), 0),
        };
        // The first entry from where trimming left off (seeking there skips its tombstones).
        let first = keyspace.range(stored_first.to_be_bytes()..).next();
        let (first_id, first_bytes) = match first.map(|g| edge_entry(g, "first")).transpose()? {
            Some(op) => (op.id, op.bytes_before),
            None => (next_id, end_bytes),
        };
        let stats = OplogStats::default();
        stats.term.set(term as i64);
        let oplog = Self {
            db,
            keyspace,
            meta,
            committed_tx: tokio::sync::watch::Sender::new(next_id - 1),
            next_id: AtomicU64::new(next_id),
            end_bytes: AtomicU64::new(end_bytes),
            term: AtomicU64::new(term),
            history: Mutex::new(history),
            retained: Arc::new(Mutex::new(Retained {
                first_id,
                first_bytes,
                pins: Vec::new(),
            })),
            options,
            stats,
        };
        oplog.update_gauges(first_id, first_bytes);
        Ok(oplog)
    }

    /// The newest op id committed (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.next_id.load(Ordering::Acquire) - 1
    }

    /// The oldest op id still held.
    pub fn first_id(&self) -> u64 {
        self.lock().first_id
    }

    /// Bytes of the entries held.
    pub fn retained_bytes(&self) -> u64 {
        self.end_bytes.load(Ordering::Acquire) - self.lock().first_bytes
    }

    /// The keyspace the entries are in.
    pub(super) fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// Bytes of the oplog's tables on disk.
    pub fn disk_space(&self) -> u64 {
        self.keyspace.disk_space()
    }

    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }

    /// The id of this store's history (40 hex digits, as Redis's replication ids).
    pub fn history(&self) -> String {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The term of the last op held (the term marker's when none is).
    pub fn last_term(&self) -> u64 {
        match self.read_one(self.last_id()) {
            Ok(op) => op.term,
            Err(_) => self.term(),
        }
    }

    /// Waits for commits: the receiver sees the last op id change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed_tx.subscribe()
    }

    /// Whether a full sync into this store is under way (or was cut short by a crash).
    pub fn is_full_syncing(&self) -> bool {
        self.meta.get(SYNCING_KEY).ok().flatten().is_some()
    }

    /// Before a full sync replaces this store's contents: a history of its own, so that a
    /// crash midway makes the next sync a full one again, not a resume on half a snapshot.
    pub(crate) fn begin_full_sync(&self) -> Result<(), StoreError> {
        let temporary = new_history_id();
        self.meta.insert(SYNCING_KEY, b"1")?;
        self.meta.insert(HISTORY_KEY, temporary.as_bytes())?;
        *self.history.lock().unwrap_or_else(|e| e.into_inner()) = temporary;
        Ok(())
    }

    /// After a full sync's snapshot is in: the oplog holds nothing, continues at `next_id`
    /// of the primary's history, in its term.
    pub(crate) fn finish_full_sync(
        &self,
        history: &str,
        term: u64,
        next_id: u64,
        bytes_before: u64,
    ) -> Result<(), StoreError> {
        let mut retained = self.lock();
        self.keyspace.clear()?;
        let mut batch = self.db.batch();
        batch.insert(&self.meta, HISTORY_KEY, history.as_bytes().to_vec());
        batch.insert(&self.meta, TERM_KEY, term.to_be_bytes().to_vec());
        batch.insert(&self.meta, FIRST_KEY, next_id.to_be_bytes().to_vec());
        batch.remove(&self.meta, SYNCING_KEY);
        batch
            .durability(Some(fjall::PersistMode::SyncAll))
            .commit()?;
        for pin in &retained.pins {
            pin.lost.store(true, Ordering::Release);
        }
        (retained.first_id, retained.first_bytes) = (next_id, bytes_before);
        self.next_id.store(next_id, Ordering::Release);
        self.end_bytes.store(bytes_before, Ordering::Release);
        drop(retained);
        *self.history.lock().unwrap_or_else(|e| e.into_inner()) = history.to_string();
        self.term_committed(term);
        self.update_gauges(next_id, bytes_before);
        self.committed_tx.send_replace(next_id - 1);
        Ok(())
    }

    pub fn options(&self) -> OplogOptions {
        self.options
    }

    fn lock(&self) -> MutexGuard<'_, Retained> {
        self.retained.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an entry the commit being built will write (under the commit lock); where it
    /// falls in the history is set when it is appended.
    pub(crate) fn begin(&self, kind: OpKind, term: u64) -> OpBuilder {
        OpBuilder::new(kind, term, 0)
    }

    /// Persists a new term in the batch of its marker.
    pub(crate) fn record_term(&self, batch: &mut OwnedWriteBatch, term: u64) {
        batch.insert(&self.meta, TERM_KEY, term.to_be_bytes().to_vec());
    }

    /// The marker of `term` is committed: entries from now on carry it.
    pub(crate) fn term_committed(&self, term: u64) {
        self.term.store(term, Ordering::Release);
        self.stats.term.set(term as i64);
    }

    /// Adds an entry to the commit's batch as op `id`, `bytes_before` into the history (the
    /// first of a batch continues from [`Oplog::next`]); returns the entry's size, for
    /// [`Oplog::committed`] once the batch is.
    pub(crate) fn append(
        &self,
        batch: &mut OwnedWriteBatch,
        op: OpBuilder,
        id: u64,
        bytes_before: u64,
    ) -> u64 {
        let buf = op.finish_at(bytes_before);
        let len = buf.len() as u64;
        batch.insert(&self.keyspace, id.to_be_bytes(), buf);
        len
    }

    /// Adds an entry another store wrote (a replica's copy). It must be the next op id, or
    /// the history would have a gap.
    pub(crate) fn append_replayed(
        &self,
        batch: &mut OwnedWriteBatch,
        op: &Op,
        expected_id: u64,
    ) -> Result<(), OplogError> {
        if op.id != expected_id {
            return Err(OplogError::OutOfOrder {
                got: op.id,
                last: expected_id - 1,
            });
        }
        batch.insert(&self.keyspace, op.id.to_be_bytes(), &op.raw[..]);
        Ok(())
    }

    /// Records that entries up to `last_id`, ending `end_bytes` into the history, are
    /// committed (after the batch that holds them).
    pub(crate) fn committed(&self, last_id: u64, end_bytes: u64, written: u64) {
        self.end_bytes.store(end_bytes, Ordering::Release);
        self.next_id.store(last_id + 1, Ordering::Release);
        self.stats.bytes_written.inc_by(written);
        self.stats.last_id.set(last_id as i64);
        let first = self.lock().first_bytes;
        self.stats.retained_bytes.set((end_bytes - first) as i64);
        self.committed_tx.send_replace(last_id);
    }

    /// The op id and end bytes the next appended entry continues from.
    pub(crate) fn next(&self) -> (u64, u64) {
        (
            self.next_id.load(Ordering::Relaxed),
            self.end_bytes.load(Ordering::Relaxed),
        )
    }

    fn update_gauges(&self, first_id: u64, first_bytes: u64) {
        self.stats.first_id.set(first_id as i64);
        self.stats.last_id.set(self.last_id() as i64);
        let end = self.end_bytes.load(Ordering::Acquire);
        self.stats.retained_bytes.set((end - first_bytes) as i64);
    }

    /// Holds the oplog from op `from` on (the next op a reader wants), so that retention keeps
    /// it until the reader moves on or falls more than `pin_max_bytes` behind.
    pub fn pin(&self, from: u64) -> Result<Pin, OplogError> {
        let mut retained = self.lock();
        let next = self.next_id.load(Ordering::Acquire);
        if from < retained.first_id {
            return Err(OplogError::Trimmed {
                wanted: from,
                first: retained.first_id,
            });
        }
        if from > next {
            return Err(OplogError::Ahead {
                wanted: from,
                last: next - 1,
            });
        }
        let bytes = if from == next {
            self.end_bytes.load(Ordering::Acquire)
        } else {
            self.read_one(from)?.bytes_before
        };
        let state = Arc::new(PinState {
            next: AtomicU64::new(from),
            bytes: AtomicU64::new(bytes),
            lost: AtomicBool::new(false),
        });
        retained.pins.push(Arc::clone(&state));
        self.stats.pins.set(retained.pins.len() as i64);
        Ok(Pin {
            state,
            retained: Arc::clone(&self.retained),
            gauge: self.stats.pins.clone(),
        })
    }

    /// The entry under `id`.
    pub fn read_one(&self, id: u64) -> Result<Op, OplogError> {
        let raw = self
            .keyspace
            .get(id.to_be_bytes())
            .map_err(StoreError::from)?
            .ok_or(OplogError::Malformed(id))?;
        Op::decode(id, Bytes::copy_from_slice(&raw))
    }

    /// The entries from the pin's place on, up to about `max_bytes` (at least one if there
    /// is one), in order; the pin moves past them.
    pub fn read(&self, pin: &Pin, max_bytes: u64) -> Result<Vec<Op>, OplogError> {
        let lost = || OplogError::PinLost(self.options.pin_max_bytes);
        if pin.state.lost.load(Ordering::Acquire) {
            return Err(lost());
        }
        let from = pin.state.next.load(Ordering::Acquire);
        let end = self.next_id.load(Ordering::Acquire);
        let mut ops = Vec::new();
        let mut bytes = 0;
        for guard in self.keyspace.range(from.to_be_bytes()..end.to_be_bytes()) {
            let (k, v) = guard.into_inner().map_err(StoreError::from)?;
            let id = op_id(&k);
            let expected = from + ops.len() as u64;
            if id != expected {
                return Err(OplogError::Malformed(expected));
            }
            let op = Op::decode(id, Bytes::copy_from_slice(&v))?;
            bytes += op.len();
            ops.push(op);
            if bytes >= max_bytes {
                break;
            }
        }
        // Trimming could have passed the pin while this read: then what was read may be cut.
        if pin.state.lost.load(Ordering::Acquire) {
            return Err(lost());
        }
        if let Some(last) = ops.last() {
            pin.state
                .bytes
                .store(last.bytes_before + last.len(), Ordering::Release);
            pin.state.next.store(last.id + 1, Ordering::Release);
        }
        Ok(ops)
    }

    /// Removes entries past retention from the front, respecting pins (see the module doc).
    fn trim(&self) -> Result<Round, StoreError> {
        let mut retained = self.lock();
        let end_bytes = self.end_bytes.load(Ordering::Acquire);
        let last = self.last_id();
        let over = (end_bytes - retained.first_bytes).saturating_sub(self.options.retention_bytes);
        if over == 0 || retained.first_id >= last {
            return Ok(Round::Idle);
        }
        // Pins that hold too much lose their place; the oldest remaining one bounds the trim.
        let mut limit = last; // never the newest entry
        for pin in &retained.pins {
            if pin.lost.load(Ordering::Acquire) {
                continue;
            }
            let behind = end_bytes.saturating_sub(pin.bytes.load(Ordering::Acquire));
            if behind > self.options.pin_max_bytes {
                pin.lost.store(true, Ordering::Release);
                self.stats.pins_lost.inc();
                tracing::warn!(
                    behind_bytes = behind,
                    max_bytes = self.options.pin_max_bytes,
                    "an oplog reader fell too far behind and lost its place"
                );
            } else {
                limit = limit.min(pin.next.load(Ordering::Acquire));
            }
        }
        let mut batch = self.db.batch();
        let mut freed = 0;
        let mut removed = 0usize;
        let mut new_first = (retained.first_id, retained.first_bytes);
        let start = retained.first_id.to_be_bytes();
        for guard in self.keyspace.range(start..limit.to_be_bytes()) {
            if freed >= over || removed >= TRIM_BATCH {
                break;
            }
            let (k, v) = guard.into_inner()?;
            let id = op_id(&k);
            // Each id is written once: a weak delete vanishes with it in compaction.
            batch.remove_weak(&self.keyspace, k);
            freed += v.len() as u64;
            removed += 1;
            new_first = (id + 1, new_first.1 + v.len() as u64);
        }
        if removed == 0 {
            return Ok(Round::Idle);
        }
        batch.insert(&self.meta, FIRST_KEY, new_first.0.to_be_bytes().to_vec());
        batch.commit()?;
        (retained.first_id, retained.first_bytes) = new_first;
        self.stats.trimmed.inc_by(removed as u64);
        drop(retained);
        self.update_gauges(new_first.0, new_first.1);
        Ok(if removed >= TRIM_BATCH {
            Round::Busy
        } else {
            Round::Idle
        })
    }
}

/// A reader's hold on the oplog; released when dropped.
pub struct Pin {
    state: Arc<PinState>,
    retained: Arc<Mutex<Retained>>,
    gauge: IntGauge,
}

impl Pin {
    /// The next op id the reader will get.
    pub fn next_id(&self) -> u64 {
        self.state.next.load(Ordering::Acquire)
    }

    /// Where that op stands in the history's bytes (its `bytes_before`).
    pub fn bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::Acquire)
    }

    /// Whether trimming took the reader's place (see [`OplogError::PinLost`]).
    pub fn is_lost(&self) -> bool {
        self.state.lost.load(Ordering::Acquire)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut retained = self.retained.lock().unwrap_or_else(|e| e.into_inner());
        retained.pins.retain(|p| !Arc::ptr_eq(p, &self.state));
        self.gauge.set(retained.pins.len() as i64);
    }
}

/// Starts the thread that applies retention; it stops when `stop` is set.
pub fn start_trimming(
    store: Arc<super::Store>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    background(
        "fjord-oplog-trim",
        stop,
        TRIM_INTERVAL,
        move || match store.oplog().trim() {
            Ok(round) => round,
            Err(e) => {
                tracing::warn!(error = %e, "trimming the oplog failed");
                Round::Idle
            }
        },
    )
}

/// The op id a key of the oplog keyspace names.
fn op_id(key: &[u8]) -> u64 {
    u64::from_be_bytes(key.try_into().unwrap_or([0; 8]))
}

/// The first or last entry, read at open: one that does not decode means a damaged store.
fn edge_entry(guard: fjall::Guard, which: &str) -> Result<Op, StoreError> {
    let (k, v) = guard.into_inner()?;
    Op::decode(op_id(&k), Bytes::copy_from_slice(&v))
        .map_err(|_| corrupt(&format!("the {which} oplog entry is malformed")))
}

/// A new history id: 40 hex digits, random, as Redis makes its replication ids.
fn new_history_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ShardConfig;
    use crate::fuzzing::Harness;
    use crate::store::Store;
    use fjord_common::Reply;

    fn harness(dir: &std::path::Path, retention_mb: u64, pin_max_mb: u64) -> Harness {
        Harness::open(ShardConfig {
            data_dir: dir.to_path_buf(),
            oplog_retention_mb: retention_mb,
            oplog_pin_max_mb: pin_max_mb,
            ..ShardConfig::default()
        })
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::from(w.to_string()))
            .collect()
    }

    fn run(h: &Harness, line: &str) -> Reply {
        let reply = h.run(&args(line));
        assert!(!matches!(reply, Reply::Error(_)), "{line}: {reply:?}");
        reply
    }

    fn store(h: &Harness) -> &Store {
        &h.server().store
    }

    /// Every entry from `from` on.
    fn read_all(store: &Store, from: u64) -> Vec<Op> {
        let pin = store.oplog().pin(from).unwrap();
        let mut ops = Vec::new();
        loop {
            let more = store.oplog().read(&pin, 1 << 20).unwrap();
            if more.is_empty() {
                return ops;
            }
            ops.extend(more);
        }
    }

    /// Everything a store holds, keyspace by keyspace, but for what names its own history.
    fn contents(store: &Store) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for (name, ks) in [
            ("data", &store.data),
            ("members", &store.members),
            ("expiry", &store.expiry),
            ("meta", &store.meta),
            ("oplog", &store.oplog.keyspace),
        ] {
            for guard in ks.iter() {
                let (k, v) = guard.into_inner().unwrap();
                if name == "meta" && (&k[..] == HISTORY_KEY || &k[..] == FIRST_KEY) {
                    continue;
                }
                out.push((name, k.to_vec(), v.to_vec()));
            }
        }
        out
    }

    #[test]
    fn changes_round_trip_and_a_cut_entry_is_refused_without_a_panic() {
        let mut b = OpBuilder::new(OpKind::Changes, 3, 100);
        b.put(b"\x00\x01k", b"value");
        b.delete(b"\x00\x02gone");
        b.put_member(b"member-key", b"");
        b.delete_member(b"old-member");
        b.garbage(7, 9, true);
        b.garbage(7, 8, false);
        b.next_version(42);
        let raw = Bytes::from(b.finish());
        let op = Op::decode(5, raw.clone()).unwrap();
        assert_eq!((op.id, op.term, op.bytes_before), (5, 3, 100));
        let by = |s: &'static [u8]| Bytes::from_static(s);
        assert_eq!(
            op.changes().unwrap(),
            vec![
                Change::Put(by(b"\x00\x01k"), by(b"value")),
                Change::Delete(by(b"\x00\x02gone")),
                Change::PutMember(by(b"member-key"), by(b"")),
                Change::DeleteMember(by(b"old-member")),
                Change::Garbage {
                    slot: 7,
                    version: 9,
                    dead: true
                },
                Change::Garbage {
                    slot: 7,
                    version: 8,
                    dead: false
                },
                Change::NextVersion(42),
            ]
        );
        for cut in 0..raw.len() {
            let short = raw.slice(..cut);
            if let Ok(op) = Op::decode(5, short) {
                assert!(op.changes().is_err(), "cut at {cut}");
            }
        }
        let mut marker = OpBuilder::new(OpKind::Term, 4, 0);
        marker.delete(b"xx");
        assert!(Op::decode(1, Bytes::from(marker.finish()))
            .unwrap()
            .changes()
            .is_err());
    }

    /// A snapshot sends a value bigger than a chunk in pieces, so that no chunk holds much
    /// more than the chunk size, and [`Pieces`] joins them back into exactly the puts of a
    /// snapshot in whole values; pieces out of order, interrupted or too long are malformed.
    #[test]
    fn a_snapshot_sends_big_values_in_pieces_that_join_back() {
        let dir = tempfile::tempdir().unwrap();
        let h = harness(dir.path(), 256, 4096);
        let big = "x".repeat(100_000);
        let field = "y".repeat(70_000);
        for line in [
            format!("SET big {big}"),
            "SET small v".to_string(),
            format!("HSET h f {field} g 1"),
            format!("SET {{h}}big2 {field}"),
        ] {
            run(&h, &line);
        }
        let sa = store(&h);
        let chunks = |chunk_bytes: usize| {
            let mut out = Vec::new();
            let snapshot = sa.database().snapshot();
            assert!(sa
                .snapshot_chunks(&snapshot, None, chunk_bytes, |c| {
                    out.push(c);
                    true
                })
                .unwrap());
            out
        };
        let changes = |chunks: Vec<Bytes>| {
            let mut pieces = Pieces::default();
            let mut all = Vec::new();
            for c in chunks {
                all.extend(
                    pieces
                        .join(0, Op::decode(0, c).unwrap().changes().unwrap())
                        .unwrap(),
                );
            }
            assert!(!pieces.is_pending());
            all
        };
        let small = chunks(4096);
        assert!(small.len() > 40, "{} chunks", small.len());
        assert!(small.iter().all(|c| c.len() < 2 * 4096 + 100));
        assert_eq!(changes(small), changes(chunks(1 << 20)));

        let key = Bytes::from_static(b"\0\0k");
        let piece = |total: u32, bytes: &'static [u8]| Change::Piece {
            member: false,
            key: key.clone(),
            total,
            piece: Bytes::from_static(bytes),
        };
        let joined = Pieces::default().join(0, vec![piece(4, b"ab"), piece(4, b"cd")]);
        assert_eq!(
            joined.unwrap(),
            [Change::Put(key.clone(), Bytes::from_static(b"abcd"))]
        );
        for bad in [
            vec![piece(4, b"ab"), Change::Delete(key.clone())],
            vec![piece(4, b"ab"), piece(5, b"cd")],
            vec![piece(4, b"abc"), piece(4, b"de")],
            vec![piece(u32::MAX, b"ab")],
        ] {
            assert!(Pieces::default().join(3, bad.clone()).is_err(), "{bad:?}");
        }
        let mut pending = Pieces::default();
        assert!(pending.join(0, vec![piece(4, b"ab")]).unwrap().is_empty());
        assert!(pending.is_pending());
    }

    /// The property replication rests on: a store that replays another's oplog from the
    /// start holds exactly what the other holds — every keyspace, the oplog included — after
    /// every kind of write, background expiry and sweeping, a FLUSHALL and a term marker
    /// (once its own sweep, which logs nothing, has removed the dead members too).
    #[test]
    fn a_replayed_oplog_rebuilds_the_same_store() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = harness(a_dir.path(), 256, 4096);
        let stop = Arc::new(AtomicBool::new(false));
        let sa = Arc::clone(&a.server().store);
        let writer = a.server().writer.clone();
        let sweepers = [
            crate::store::expiry::start(Arc::clone(&sa), writer.clone(), Arc::clone(&stop)),
            crate::store::garbage::start(Arc::clone(&sa), writer.clone(), Arc::clone(&stop)),
        ];
        for line in [
            "SET plain value",
            "INCR counter",
            "INCRBY counter 41",
            "SET soon x PX 1",
            "SET later y EX 1000",
            "HSET h a 1 b 2 c 3",
            "HDEL h b",
            "HINCRBY h a 10",
            "SADD s x y z w",
            "SPOP s",
            "ZADD z 1 one 2 two 3 three",
            "ZINCRBY z 5 one",
            "ZREMRANGEBYSCORE z 2 2",
            "SADD {t}doomed a b c",
            "DEL {t}doomed",
            "HSET {t}old f v",
            "RENAME {t}old {t}new",
            "COPY h hcopy",
            "SADD gone m",
            "PEXPIRE gone 1",
            "FLUSHALL",
            "SET after-flush 1",
            "HSET h2 f v",
            "ZADD z2 1 a 2 b",
            "SADD s2 a b c",
            "DEL s2",
            "SET soon2 x PX 1",
        ] {
            run(&a, line);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async { writer.begin_term(7).await.await.unwrap() });
        run(&a, "SET in-term-7 v");
        // A term started in the same group as writes (a promotion under load): the marker
        // stays an entry of its own, and the group's changes follow it in the new term.
        let write = |line: &str| match a.outcome(&args(line)) {
            crate::cmd::Outcome::Write(op) => op,
            _ => panic!("{line} is not a write"),
        };
        let group = vec![
            write("SET before-term-8 v"),
            crate::store::writer::begin_term(8),
            write("SET in-term-8 v"),
        ];
        let marker_id = sa.oplog().last_id() + 1;
        let replies = rt.block_on(async { writer.submit(group).await.await.unwrap() });
        assert!(replies.iter().all(|r| *r == Reply::ok()), "{replies:?}");
        let started = read_all(&sa, marker_id);
        assert_eq!(
            started
                .iter()
                .map(|op| (op.kind, op.term, op.changes().unwrap().len()))
                .collect::<Vec<_>>(),
            [(OpKind::Term, 8, 0), (OpKind::Changes, 8, 2)]
        );
        run(&a, "FJORD SETSLOTS 3 gone 127.0.0.1:7102 100-200");
        run(&a, "FJORD SETSLOTS 4 frozen - 150,300");
        // Let active expiry and the sweep do their part (they write through the oplog too).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while (sa.stats.dead_collections.get() > 0 || sa.total_keys() != 6)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(sa.stats.dead_collections.get(), 0);
        assert_eq!(sa.total_keys(), 6);
        assert_eq!(sa.oplog().term(), 8);
        stop.store(true, Ordering::Relaxed);
        for t in sweepers {
            t.join().unwrap();
        }

        let ops = read_all(&sa, 1);
        assert_eq!(ops.len() as u64, sa.oplog().last_id());
        assert!(ops.iter().any(|op| op.kind == OpKind::FlushAll));
        let b = harness(b_dir.path(), 256, 4096);
        let sb = &b.server().store;
        // In two parts, split inside the history, as a replica receives it.
        let (first, rest) = ops.split_at(ops.len() / 2);
        for part in [first, rest] {
            b.server()
                .writer
                .replay_blocking(part.to_vec())
                .unwrap()
                .unwrap();
        }
        assert!(
            sb.stats.dead_collections.get() > 0,
            "no dead collection to sweep"
        );
        let b_stop = Arc::new(AtomicBool::new(false));
        let b_sweep = crate::store::garbage::start(
            Arc::clone(sb),
            b.server().writer.clone(),
            Arc::clone(&b_stop),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sb.stats.dead_collections.get() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        b_stop.store(true, Ordering::Relaxed);
        b_sweep.join().unwrap();
        assert_eq!(sb.oplog().last_id(), sa.oplog().last_id());
        assert_eq!(contents(&sa), contents(sb));
        assert_eq!(sb.slot_table(), sa.slot_table());
        assert_eq!(sb.oplog().last_id(), sa.oplog().last_id());
        assert_eq!(sb.oplog().term(), 8);
        assert_eq!(sb.total_keys(), sa.total_keys());
        assert_eq!(
            run(&b, "GET in-term-7"),
            Reply::Bulk(Bytes::from_static(b"v"))
        );
        // An entry out of order is refused and changes nothing.
        let again = b
            .server()
            .writer
            .replay_blocking(ops[..1].to_vec())
            .unwrap();
        assert!(
            matches!(again, Err(OplogError::OutOfOrder { .. })),
            "{again:?}"
        );
        assert_eq!(contents(&sa), contents(sb));
    }

    /// Entries past retention go from the front, but not those a reader still needs; a reader
    /// that holds more than its maximum loses its place instead of filling the disk.
    #[test]
    fn retention_trims_the_front_up_to_the_oldest_pin_until_the_pin_holds_too_much() {
        let dir = tempfile::tempdir().unwrap();
        let h = harness(dir.path(), 0, 1);
        let s = store(&h);
        for i in 0..100 {
            run(&h, &format!("SET k{i} {i}"));
        }
        assert_eq!(s.oplog().last_id(), 100);
        let pin = s.oplog().pin(40).unwrap();
        while let Round::Busy = s.oplog().trim().unwrap() {}
        assert_eq!(s.oplog().first_id(), 40);
        // The reader moves on; trimming follows it.
        let read = s.oplog().read(&pin, 10 * 30).unwrap();
        assert_eq!(read.first().map(|op| op.id), Some(40));
        s.oplog().trim().unwrap();
        assert_eq!(s.oplog().first_id(), pin.next_id());
        assert!(s.oplog().pin(39).is_err());
        // More than 1 MiB behind the pin: it is lost, and trimming goes on to the newest.
        let big = "x".repeat(200_000);
        for i in 0..8 {
            run(&h, &format!("SET big{i} {big}"));
        }
        s.oplog().trim().unwrap();
        assert!(pin.is_lost());
        assert_eq!(s.oplog().stats.pins_lost.get(), 1);
        assert!(matches!(
            s.oplog().read(&pin, 1),
            Err(OplogError::PinLost(_))
        ));
        assert_eq!(s.oplog().first_id(), s.oplog().last_id());
        drop(pin);
        assert_eq!(s.oplog().stats.pins.get(), 0);
    }

    /// The oplog's place survives a restart: ids go on from the last, the front from where
    /// trimming left it, the history and term are the same.
    #[test]
    fn ids_history_and_trimmed_front_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (history, first, last) = {
            let h = harness(dir.path(), 0, 1);
            for i in 0..20 {
                run(&h, &format!("SET k{i} {i}"));
            }
            let o = store(&h).oplog();
            while let Round::Busy = o.trim().unwrap() {}
            (o.history().to_string(), o.first_id(), o.last_id())
        };
        assert_eq!((first, last), (20, 20));
        let h = harness(dir.path(), 0, 1);
        let o = store(&h).oplog();
        assert_eq!(
            (o.history().as_str(), o.first_id(), o.last_id()),
            (&*history, 20, 20)
        );
        run(&h, "SET next 1");
        assert_eq!(o.last_id(), 21);
        assert_eq!(read_all(store(&h), 20).len(), 2);
    }
}
