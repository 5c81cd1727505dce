//! The shard's storage: fjall underneath, Redis semantics on top.
//!
//! # Encoding (format version 3)
//!
//! One fjall `Database` per data directory, with five keyspaces:
//!
//! | keyspace | key | value |
//! | --- | --- | --- |
//! | `data` | `slot (u16 BE) ++ user key` | header ++ payload |
//! | `members` | `slot (u16 BE) ++ version (u64 BE) ++ kind (u8) ++ name` | the member's value |
//! | `expiry` | `expire_at ms (u64 BE) ++ data key` | empty |
//! | `oplog` | `op id (u64 BE)` | an entry of the operation log ([`oplog`] has its layout) |
//! | `meta` | `slotcount ++ slot (u16 BE)` | number of keys in the slot (u64 BE); absent when 0 |
//! | | `flushing` | present while a FLUSHALL is under way |
//! | | `nextversion` | the next collection version to hand out (u64 BE) |
//! | | `garbage ++ slot (u16 BE) ++ version (u64 BE)` | a dead version whose members remain |
//! | | `history` | the id of the oplog's history (40 hex digits) |
//! | | `term` | the term of the last term marker (u64 BE); absent = 0 |
//! | | `oplogfirst` | the first op id retention kept (u64 BE) |
//! | | `replicaof` | `host:port` of the primary a replica follows; absent on a primary |
//! | | `controllerterm` | the highest controller term given to this shard (u64 BE); absent = 0, never managed |
//! | | `controllerleader` | the highest leadership term of an elected controller seen (`FJORD LEADER`, u64 BE); absent = 0 |
//! | | `syncing` | present while a full sync replaces the contents (the store is then not promotable) |
//! | | `slotstates` | which slots the store serves, with epochs ([`slots`] has the layout); absent = every slot owned |
//! | | `memtablesize` | the memtable size `data` and `members` were created with (u64 BE; fjall keeps it for good); absent in a store written before it was recorded, which records the size it is next opened with |
//!
//! The value header is 10 bytes: a version byte (1: the header's layout, unchanged since
//! format 1), type code (0 string; 1 hash, 2 list, 3 set, 4 zset), absolute expiry in Unix
//! ms (u64 BE, 0 = none). A string's payload is its value. A collection's payload is its
//! [`encoding::CollectionMeta`]: the version its members are stored under, its size, for
//! lists the positions of both ends, and for sorted sets the bounds of the live part of
//! their score index (added within format 3: a sorted set without them reads as before;
//! one written since has them from its first member, an older one from its next pop).
//!
//! Collections follow Kvrocks: one entry per hash field, set member, list element or
//! sorted-set member in `members`, under the collection's slot and version, so that a slot
//! is still one key range in each keyspace. Kinds: 0 items (hash field → value; set member →
//! its position (u64 BE), or empty in a set written before positions; list position (u64 BE)
//! → element; zset member → score as f64 bits, BE); 1 a sorted set's score index (`score
//! (order-preserving u64 BE) ++ member` → empty); 2 a set's positions (`position (u64 BE)` →
//! member, dense from 0, for uniform random picks; added within format 3, flagged in the
//! set's entry).
//!
//! Versions come from a counter persisted in `meta` in the batch that uses one, so a version
//! is never handed out twice. Deleting, overwriting or expiring a collection removes only its
//! entry (O(1)) and records its version as garbage in the same batch; the members of a version
//! no entry points to are never read, and a background sweep ([`garbage`]) removes them,
//! then the marker, in each store on its own (dropping whole tables where it can). RENAME
//! within a slot keeps the version, so it moves no member.
//!
//! Every commit writes one oplog entry in its batch: the data and members it put or removed,
//! the new garbage markers and the version counter, so that a replica replaying the entries
//! holds the same keyspaces (per-slot counts and the expiry index it derives itself).
//!
//! Older formats open as they are. Format 2 (no `oplog` keyspace, no history, term or
//! first op id; a slot emptied by deletes kept a count of 0) is format 3 with an empty
//! oplog: it gets a history id when opened, and ids start at 1. Format 1 (strings only, no
//! `members` keyspace, no counter) is format 2 with no collection. A change of this format
//! must still open `tests/fixtures/format-1.tar.gz` and `format-2.tar.gz`, data directories
//! those versions wrote (`tests/tests/suite/format.rs`).
//!
//! Because the slot leads the data key, a slot is a key prefix: counting, listing, moving or
//! deleting a slot is a range scan. Keys are limited to [`encoding::MAX_KEY_LEN`] bytes so
//! that the expiry index key stays within fjall's 65 535-byte limit, and member names to
//! [`encoding::MAX_MEMBER_LEN`].
//!
//! # Invariants
//!
//! - Every write goes through one commit path ([`writer`]): under one commit lock, commands
//!   are applied in arrival order against the committed state plus the group's own
//!   uncommitted changes, then the group is committed as one atomic fjall batch with its
//!   oplog entry (a FLUSHALL of everything writes its entry with the `flushing` marker). The writer
//!   thread commits most groups; a connection with nothing queued may commit its own.
//!   Per-slot counts are written in the same batch, so `DBSIZE` is exact after any crash.
//! - A key with an expiry has an index entry at its deadline. Entries can be stale (the key
//!   was re-set); active expiry re-checks the key's current deadline before deleting, and
//!   deletes through the writer so that a replica replays the delete.
//! - Reads never return an expired value (checked on read), and never see a write before the
//!   fsync that covers it in `fsync: always` (the batch is applied to the memtable only after
//!   its journal write was synced).
//! - A collection's size in its entry is exact: every member added or removed changes it in
//!   the same batch, and a collection whose last member goes is deleted, as in Redis.

pub mod cache;
pub mod encoding;
pub mod expiry;
pub mod filter;
pub mod garbage;
pub mod members;
pub mod oplog;
pub mod slots;
pub mod visibility;
pub mod writer;

use crate::config::FsyncMode;
use bytes::Bytes;
use cache::{MemberCache, RowCache};
use encoding::{data_key, slot_count_key, Entry};
use filter::KeyFilter;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use fjord_common::metrics;
use fjord_common::slotset::SlotSet;
use fjord_common::SLOT_COUNT;
use oplog::{Op, OpKind, Oplog, OplogOptions};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A storage failure, reported to the client as an error and logged.
#[derive(Debug, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(#[from] pub fjall::Error);

/// Settings the store is opened with.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub fsync: FsyncMode,
    pub cache_bytes: u64,
    /// The row cache's capacity ([`cache`]); 0 disables it.
    pub row_cache_bytes: u64,
    /// The member cache's capacity ([`cache::MemberCache`]); 0 disables it.
    pub member_cache_bytes: u64,
    /// Size at which the data and members keyspaces' memtables are sealed and flushed to a
    /// table.
    pub memtable_bytes: u64,
    /// Journal bytes past which fjall flushes the memtables that hold the oldest journal
    /// file back (at least 64 MiB): about what a restart after a crash replays.
    pub journal_bytes: u64,
    pub worker_threads: usize,
    /// Most bytes the key filter may take ([`filter`]); 0 disables it.
    pub key_filter_bytes: u64,
    /// What the oplog keeps ([`oplog`]).
    pub oplog: OplogOptions,
}

/// Figures INFO shows, kept as Prometheus series ([`StoreStats::register`] exports them).
pub struct StoreStats {
    pub expired_keys: IntCounter,
    pub keyspace_hits: IntCounter,
    pub keyspace_misses: IntCounter,
    pub fsyncs: IntCounter,
    pub fsync_seconds: Histogram,
    /// Writes per group commit: its count is the number of groups, its sum the writes.
    pub group_writes: Histogram,
    pub writes: IntCounter,
    /// Keys written or deleted by committed writes (INFO's `rdb_changes_since_last_save`:
    /// fjord never saves a snapshot, so this counts since the shard started).
    pub key_changes: IntCounter,
    /// Groups a connection committed on its own thread (the rest are the writer thread's).
    pub inline_groups: IntCounter,
    /// Lookups the key filter answered "absent" without fjall.
    pub key_filter_skips: IntCounter,
    /// Entries a commit wrote or removed, in every keyspace: what one command costs the store.
    pub entries_written: IntCounter,
    /// Members of deleted collections removed by the background sweep.
    pub members_swept: IntCounter,
    /// Member entries read by commands (point reads and each entry a range read visits).
    pub members_read: IntCounter,
    /// Deleted collections whose members are still to be swept (garbage markers).
    pub dead_collections: IntGauge,
    pub last_fsync_unix: AtomicU64,
    /// Bytes fjall's recovery put back into the memtables from the journal at open: what a
    /// crash left unflushed. A clean stop flushes every memtable first; fjall may still
    /// replay a few KiB then (up to 3.3 KiB seen, one start in tens), a journal it had not
    /// yet deleted.
    pub journal_replayed_bytes: AtomicU64,
}

impl Default for StoreStats {
    fn default() -> Self {
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            Histogram::with_opts(opts).expect("valid metric")
        };
        Self {
            expired_keys: counter(
                "fjord_shard_expired_keys_total",
                "Keys deleted because their TTL passed",
            ),
            keyspace_hits: counter("fjord_shard_keyspace_hits_total", "Reads that found a key"),
            keyspace_misses: counter(
                "fjord_shard_keyspace_misses_total",
                "Reads that found no key",
            ),
            fsyncs: counter("fjord_shard_fsync_total", "fsyncs of the journal"),
            fsync_seconds: histogram(
                "fjord_shard_fsync_duration_seconds",
                "Time one fsync of the journal took",
                metrics::LATENCY_BUCKETS,
            ),
            group_writes: histogram(
                "fjord_shard_group_commit_writes",
                "Writes committed together in one group (one journal write, one fsync in always)",
                metrics::COUNT_BUCKETS,
            ),
            writes: counter("fjord_shard_writes_total", "Write commands committed"),
            key_changes: counter(
                "fjord_shard_key_changes_total",
                "Keys written or deleted by committed writes",
            ),
            inline_groups: counter(
                "fjord_shard_inline_commits_total",
                "Write groups a connection committed on its own thread while the writer was idle",
            ),
            key_filter_skips: counter(
                "fjord_shard_key_filter_skips_total",
                "Lookups of absent keys the key filter answered without searching fjall",
            ),
            entries_written: counter(
                "fjord_shard_entries_written_total",
                "Entries committed writes put or removed, in every keyspace",
            ),
            members_swept: counter(
                "fjord_shard_members_swept_total",
                "Members of deleted, overwritten or expired collections removed in the background",
            ),
            members_read: counter(
                "fjord_shard_members_read_total",
                "Collection members commands read from the store",
            ),
            dead_collections: IntGauge::new(
                "fjord_shard_dead_collections",
                "Deleted, overwritten or expired collections whose members the background sweep has yet to remove",
            )
            .expect("valid metric"),
            last_fsync_unix: AtomicU64::new(0),
            journal_replayed_bytes: AtomicU64::new(0),
        }
    }
}

impl StoreStats {
    pub fn register(&self, registry: &Registry) {
        for c in [
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.fsyncs,
            &self.writes,
            &self.key_changes,
            &self.inline_groups,
            &self.key_filter_skips,
            &self.entries_written,
            &self.members_swept,
            &self.members_read,
        ] {
            metrics::register(registry, c.clone());
        }
        metrics::register(registry, self.dead_collections.clone());
        metrics::register(registry, self.fsync_seconds.clone());
        metrics::register(registry, self.group_writes.clone());
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(f) = &self.filter {
            f.stop_flag().store(true, Ordering::Relaxed);
        }
    }
}

/// Target size of a members table (see [`Store::open`]). One shard, a million-member sorted
/// set beside a small hash in a lower slot: DEL gave back 75% of its tables at once with
/// 8 MiB, 15% with fjall's 64 MiB (one table held the hash and most of the set); writes into
/// one big key ran about 10% slower (more, smaller compactions).
const MEMBER_TABLE_BYTES: u64 = 8 << 20;

/// fjall's memtable size, which the expiry, meta and oplog keyspaces keep.
const FJALL_MEMTABLE_BYTES: u64 = 64 << 20;

/// The open store. Shared by connection tasks (reads) and the writer thread (writes).
pub struct Store {
    db: Database,
    data: Keyspace,
    /// Members of collections ([`members`]).
    members: Keyspace,
    expiry: Keyspace,
    meta: Keyspace,
    /// Every committed change, for replicas ([`oplog`]).
    oplog: Oplog,
    /// The next collection version; handed out under the commit lock, persisted by the
    /// commit that uses one.
    next_version: AtomicU64,
    /// Decoded entries of hot keys; holds committed state only (see [`cache`]).
    rows: RowCache,
    /// The writer's copy of recently used members ([`cache::MemberCache`]).
    member_cache: MemberCache,
    /// The data keys present, for lookups of absent keys (see [`filter`]); `None` when off.
    filter: Option<Arc<KeyFilter>>,
    /// Keys per slot, updated by the writer after each committed group.
    slot_counts: Vec<AtomicU64>,
    /// Cleared for good after a failed write or fsync: the shard then refuses writes.
    writable: AtomicBool,
    /// A replica's store changes only by its primary's oplog: commands' writes are refused,
    /// and active expiry leaves the work to the primary.
    replica: AtomicBool,
    /// What reads may see: only acknowledged writes ([`visibility`]).
    pub visible: visibility::Visibility,
    /// Which slots this store serves ([`slots`]); replaced whole by the writer.
    slot_table: arc_swap::ArcSwap<slots::SlotTable>,
    pub options: StoreOptions,
    pub stats: StoreStats,
}

impl Store {
    /// Opens (or creates) the store in `dir`, finishing a FLUSHALL a crash interrupted.
    pub fn open(dir: &Path, mut options: StoreOptions) -> Result<Self, StoreError> {
        let db = Database::builder(dir)
            .cache_size(options.cache_bytes)
            .worker_threads(options.worker_threads.max(1))
            // Past this, each new journal file makes fjall flush the memtables that keep the
            // oldest one (meta's and expiry's fill slowly). Flushing them at every seal
            // instead piled up small tables and stalled RPUSH -P 16 for minutes.
            .max_journaling_size(options.journal_bytes.max(64 << 20))
            .open()?;
        // A memtable that fits the CPU caches: every write searches it (fjall's default of
        // 64 MiB cost about 15% of SET throughput, and a quarter of HSET's), and hot reads
        // are the row cache's.
        let data = db.keyspace("data", || {
            KeyspaceCreateOptions::default().max_memtable_size(options.memtable_bytes)
        })?;
        // Tables smaller than fjall's 64 MiB: the sweep drops whole the tables that hold only
        // a dead collection's members, and gives the ones it shares with other keys back
        // only a delete at a time ([`garbage`]), so a table is the unit of space a DEL returns.
        let members = db.keyspace("members", || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(options.memtable_bytes)
                .compaction_strategy(Arc::new(
                    fjall::compaction::Leveled::default()
                        .with_table_target_size(MEMBER_TABLE_BYTES),
                ))
        })?;
        let expiry = db.keyspace("expiry", KeyspaceCreateOptions::default)?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let oplog_keyspace = db.keyspace("oplog", KeyspaceCreateOptions::default)?;
        // Taken before anything writes: the trim, expiry and sweep threads soon fill the
        // memtables again, so a later reading would not tell what the journal held.
        let replayed = db.write_buffer_size();
        if replayed > 0 {
            tracing::info!(
                bytes = replayed,
                "the journal was replayed into the memtables"
            );
        }
        options.memtable_bytes = memtable_size_created_with(&meta, options.memtable_bytes)?;
        let oplog = Oplog::open(db.clone(), oplog_keyspace, meta.clone(), options.oplog)?;
        let next_version = match meta.get(encoding::NEXT_VERSION_KEY)? {
            Some(v) => u64::from_be_bytes(v[..].try_into().unwrap_or([0; 8])).max(1),
            None => 1,
        };
        // Sized for twice the keys there are, so that the store can grow.
        let keys = data.approximate_len() as u64;
        let filter = KeyFilter::new(keys.saturating_mul(2), options.key_filter_bytes);
        let replica = meta.contains_key(REPLICA_OF_KEY)?;
        let slot_table = match meta.get(slots::SLOT_STATES_KEY)? {
            Some(raw) => slots::SlotTable::decode(&raw)
                .ok_or_else(|| corrupt("the slot states in meta are malformed"))?,
            None => slots::SlotTable::default(),
        };
        let store = Self {
            db,
            data,
            members,
            expiry,
            meta,
            oplog,
            next_version: AtomicU64::new(next_version),
            rows: RowCache::new(options.row_cache_bytes),
            member_cache: MemberCache::new(options.member_cache_bytes),
            filter: filter.map(Arc::new),
            slot_counts: (0..SLOT_COUNT).map(|_| AtomicU64::new(0)).collect(),
            writable: AtomicBool::new(true),
            replica: AtomicBool::new(replica),
            visible: visibility::Visibility::default(),
            slot_table: arc_swap::ArcSwap::from_pointee(slot_table),
            options,
            stats: StoreStats::default(),
        };
        store
            .stats
            .journal_replayed_bytes
            .store(replayed, Ordering::Relaxed);
        if store.meta.contains_key(FLUSHING_MARKER)? {
            tracing::warn!("finishing a FLUSHALL interrupted by a crash");
            store.clear_all(FlushLog::Logged)?;
        }
        // Whether every entry has been seen (and added to the key filter) before serving.
        let saw_every_entry = if store.data.is_empty()? {
            store.rows.holds_every_key_from_now();
            true
        } else {
            store.warm_row_cache()?
        };
        match (&store.filter, saw_every_entry) {
            (Some(f), true) => f.mark_complete(),
            (Some(_), false) => store.start_filling_the_key_filter(),
            (None, _) => {}
        }
        let dead = store.meta.prefix(encoding::GARBAGE_PREFIX).count();
        store.stats.dead_collections.set(dead as i64);
        for slot in 0..SLOT_COUNT {
            if let Some(v) = store.meta.get(slot_count_key(slot))? {
                let n = u64::from_be_bytes(v[..].try_into().unwrap_or([0; 8]));
                store.slot_counts[usize::from(slot)].store(n, Ordering::Relaxed);
            }
        }
        Ok(store)
    }

    /// Whether writes are accepted (false after a failed write or fsync).
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    /// Whether this store follows a primary (see the field's doc).
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Acquire)
    }

    /// The primary this store follows, as persisted (`None`: it is a primary).
    pub fn replica_of(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(REPLICA_OF_KEY)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records whom this store follows, durably: a replica restarts as one. Not a change of
    /// the data, so not in the oplog (a replica's replicas must not copy it).
    pub fn set_replica_of(&self, primary: Option<&str>) -> Result<(), StoreError> {
        match primary {
            Some(p) => self.meta.insert(REPLICA_OF_KEY, p.as_bytes())?,
            None => self.meta.remove(REPLICA_OF_KEY)?,
        }
        self.db.persist(fjall::PersistMode::SyncAll)?;
        self.replica.store(primary.is_some(), Ordering::Release);
        Ok(())
    }

    /// The highest controller term this store has been given (0: no controller ever managed
    /// it). Like the role, not a change of the data, so not in the oplog.
    pub fn controller_term(&self) -> Result<u64, StoreError> {
        self.meta_word(CONTROLLER_TERM_KEY)
    }

    /// Records a controller term, durably, before the shard acts on it.
    pub fn set_controller_term(&self, term: u64) -> Result<(), StoreError> {
        self.set_meta_word(CONTROLLER_TERM_KEY, term)
    }

    /// The highest leadership term of an elected controller this store has been told of
    /// (`FJORD LEADER`; 0: none).
    pub fn controller_leader(&self) -> Result<u64, StoreError> {
        self.meta_word(CONTROLLER_LEADER_KEY)
    }

    /// Records a leadership term, durably, before the shard answers to it.
    pub fn set_controller_leader(&self, term: u64) -> Result<(), StoreError> {
        self.set_meta_word(CONTROLLER_LEADER_KEY, term)
    }

    fn meta_word(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(key)?
            .and_then(|v| v[..].try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn set_meta_word(&self, key: &[u8], value: u64) -> Result<(), StoreError> {
        self.meta.insert(key, value.to_be_bytes())?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    /// Visits everything a replica needs to rebuild this store from `snapshot`, in key order,
    /// as the bodies of oplog entries of about `chunk_bytes`: data entries, members, garbage
    /// markers, the version counter and the slot states (counts and the expiry index it
    /// derives). With `only`, just the data entries and members of those slots (what a
    /// shard importing them needs; collection versions are the importer's to map). A value
    /// bigger than a chunk goes in pieces of a chunk each ([`oplog::Pieces`] joins them).
    /// `emit` returns false to stop.
    pub fn snapshot_chunks(
        &self,
        snapshot: &fjall::Snapshot,
        only: Option<&SlotSet>,
        chunk_bytes: usize,
        mut emit: impl FnMut(Bytes) -> bool,
    ) -> Result<bool, StoreError> {
        use fjall::Readable;
        let mut chunk = oplog::OpBuilder::new(OpKind::Changes, 0, 0);
        let mut flush = |chunk: &mut oplog::OpBuilder, force: bool| {
            if chunk.is_empty() || (!force && chunk.len() < chunk_bytes) {
                return true;
            }
            let full = std::mem::replace(chunk, oplog::OpBuilder::new(OpKind::Changes, 0, 0));
            emit(Bytes::from(full.finish()))
        };
        let whole = SlotSet::all();
        // Both keyspaces' keys lead with the slot, so a run of slots is one key range.
        let ranges = || {
            only.unwrap_or(&whole).ranges().iter().map(|r| {
                let end = (u32::from(r.end) + 1) as u16;
                (encoding::slot_prefix(r.start), encoding::slot_prefix(end))
            })
        };
        for (member, keyspace) in [(false, &self.data), (true, &self.members)] {
            for (start, end) in ranges() {
                for guard in snapshot.range(keyspace, start..end) {
                    let (k, v) = guard.into_inner()?;
                    if v.len() > chunk_bytes {
                        for piece in v.chunks(chunk_bytes) {
                            chunk.piece(member, &k, v.len(), piece);
                            if !flush(&mut chunk, false) {
                                return Ok(false);
                            }
                        }
                        continue;
                    }
                    match member {
                        false => chunk.put(&k, &v),
                        true => chunk.put_member(&k, &v),
                    }
                    if !flush(&mut chunk, false) {
                        return Ok(false);
                    }
                }
            }
        }
        if only.is_none() {
            for guard in snapshot.prefix(&self.meta, encoding::GARBAGE_PREFIX) {
                let k = guard.key()?;
                if let Some((slot, version)) = encoding::split_garbage_key(&k) {
                    chunk.garbage(slot, version, true);
                }
            }
            if let Some(v) = snapshot.get(&self.meta, encoding::NEXT_VERSION_KEY)? {
                chunk.next_version(u64::from_be_bytes(v[..].try_into().unwrap_or([0; 8])));
            }
            // Always, so that a replica's table from before the sync is replaced too.
            match snapshot.get(&self.meta, slots::SLOT_STATES_KEY)? {
                Some(table) => chunk.slot_states(&table),
                None => chunk.slot_states(&slots::SlotTable::default().encode()),
            }
        }
        Ok(flush(&mut chunk, true))
    }

    fn mark_unwritable(&self, why: &dyn std::fmt::Display) {
        if self.writable.swap(false, Ordering::AcqRel) {
            tracing::error!(error = %why, "store write failed; refusing writes from now on");
        }
    }

    /// The live value of `key`, or `None` if it is missing or expired.
    pub fn get(&self, key: &[u8], now: u64) -> Result<Option<Entry>, StoreError> {
        if key.len() > encoding::MAX_KEY_LEN {
            return Ok(None);
        }
        let state = self
            .rows
            .get_or_load(key, || self.read_data(&data_key(key)))?;
        let entry = state.filter(|e| !e.is_expired(now));
        let counter = if entry.is_some() {
            &self.stats.keyspace_hits
        } else {
            &self.stats.keyspace_misses
        };
        counter.inc();
        Ok(entry)
    }

    /// The committed entry under a data key, from fjall (maybe expired).
    fn read_data(&self, dkey: &[u8]) -> Result<Option<Entry>, StoreError> {
        if self.filter.as_ref().is_some_and(|f| f.excludes(dkey)) {
            self.stats.key_filter_skips.inc();
            return Ok(None);
        }
        // Copied out: fjall hands out a slice of a whole block, which a cached entry would
        // keep alive.
        Ok(self
            .data
            .get(dkey)?
            .and_then(|raw| Entry::decode(Bytes::copy_from_slice(&raw))))
    }

    /// Loads every entry into the row cache if they all fit, before the store is used: then
    /// it holds every key, as after a start from empty ([`cache`]), and keys are hot from the
    /// first request. Skipped when the entries clearly do not fit (each weighs at least its
    /// overhead), so a large store opens as fast as before; given up after
    /// [`WARM_UP_BUDGET`] (a 64 MiB cache fills in about half a second).
    /// Returns whether every entry was loaded (each is also added to the key filter).
    fn warm_row_cache(&self) -> Result<bool, StoreError> {
        let (_, capacity) = self.rows.usage();
        let entries = self.data.approximate_len() as u64;
        if entries.saturating_mul(cache::ENTRY_OVERHEAD) > capacity {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let mut loaded = 0u64;
        let complete = self.warm_with_every_entry(started, &mut loaded)?;
        if complete {
            self.rows.holds_every_key_from_now();
        }
        tracing::info!(
            entries = loaded,
            complete,
            seconds = started.elapsed().as_secs_f64(),
            "row cache loaded at start"
        );
        Ok(complete)
    }

    /// Caches entries until one does not fit or the budget is spent; whether all were cached.
    fn warm_with_every_entry(
        &self,
        started: std::time::Instant,
        loaded: &mut u64,
    ) -> Result<bool, StoreError> {
        for guard in self.data.iter() {
            if loaded.is_multiple_of(4096) && started.elapsed() > WARM_UP_BUDGET {
                return Ok(false);
            }
            let (dkey, raw) = guard.into_inner()?;
            self.note_present(&dkey);
            // An entry this version cannot read is present all the same, and cannot be cached.
            let Some(entry) = Entry::decode(Bytes::copy_from_slice(&raw)) else {
                return Ok(false);
            };
            if !self
                .rows
                .warm(encoding::split_data_key(&dkey).1, Some(entry))
            {
                return Ok(false);
            }
            *loaded += 1;
        }
        Ok(true)
    }

    /// Adds every data key to the key filter on a thread of its own, then marks it complete;
    /// until then lookups pass through to fjall. Commits add their keys meanwhile, and the
    /// scan's snapshot is taken after they started to, so no key is missed.
    fn start_filling_the_key_filter(&self) {
        let Some(filter) = self.filter.clone() else {
            return;
        };
        let data = self.data.clone();
        let stop = filter.stop_flag();
        let spawned = std::thread::Builder::new()
            .name("fjord-keyfilter".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let mut last_report = started;
                let mut added = 0u64;
                for guard in data.iter() {
                    if added.is_multiple_of(4096) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        if last_report.elapsed() > FILTER_PROGRESS_EVERY {
                            last_report = std::time::Instant::now();
                            tracing::info!(keys = added, "filling the key filter");
                        }
                    }
                    match guard.key() {
                        Ok(dkey) => filter.insert(&dkey),
                        Err(e) => {
                            tracing::error!(error = %e, "filling the key filter failed; it stays unused");
                            return;
                        }
                    }
                    added += 1;
                }
                filter.mark_complete();
                let (capacity, bytes) = filter.size();
                tracing::info!(
                    keys = added,
                    capacity,
                    bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "key filter filled"
                );
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start filling the key filter; it stays unused");
        }
    }

    /// Adds a data key that a commit is about to make present (before fjall shows it).
    pub(crate) fn note_present(&self, dkey: &[u8]) {
        if let Some(f) = &self.filter {
            f.insert(dkey);
        }
    }

    /// The key filter's bytes and state (`off`, `filling`, `complete`, `saturated`), for INFO.
    pub fn key_filter_status(&self) -> (u64, &'static str) {
        match &self.filter {
            None => (0, "off"),
            Some(f) => (f.size().1, f.state()),
        }
    }

    /// Which slots this store serves, as last committed.
    pub fn slot_table(&self) -> Arc<slots::SlotTable> {
        self.slot_table.load_full()
    }

    /// Whether every slot is served (checked before any key is hashed).
    pub fn serves_every_slot(&self) -> bool {
        self.slot_table.load().is_unrestricted()
    }

    /// The operation log, for replication and the figures INFO and metrics report.
    pub fn oplog(&self) -> &Oplog {
        &self.oplog
    }

    /// The row cache, for the figures INFO and metrics report.
    pub fn row_cache(&self) -> &RowCache {
        &self.rows
    }

    pub fn member_cache(&self) -> &MemberCache {
        &self.member_cache
    }

    /// Whether a commit now might be held up by fjall (memtables waiting to be flushed, or
    /// level 0 filling up), so it should run on the writer thread rather than a connection's.
    pub fn writes_may_stall(&self) -> bool {
        [&self.data, &self.members, &self.expiry]
            .iter()
            .any(|k| k.sealed_memtable_count() >= 2 || k.l0_table_count() >= 16)
    }

    /// Exact number of keys (expired ones not yet reclaimed included, as in Redis).
    pub fn count_in(&self, slots: &SlotSet) -> u64 {
        slots
            .ranges()
            .iter()
            .flat_map(|r| r.start..=r.end)
            .map(|s| self.slot_counts[usize::from(s)].load(Ordering::Relaxed))
            .sum()
    }

    /// Number of keys in one slot.
    pub fn count_in_slot(&self, slot: u16) -> u64 {
        self.slot_counts[usize::from(slot)].load(Ordering::Relaxed)
    }

    /// Total keys (exact, from the per-slot counts).
    pub fn total_keys(&self) -> u64 {
        self.slot_counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Approximate number of keys with an expiry (INFO keyspace's `expires`).
    pub fn approximate_expiring_keys(&self) -> usize {
        self.expiry.approximate_len()
    }

    /// Live entries with their keys in `slots`, in key order, starting after `after` (a data
    /// key) or at the first slot of the set. `visit` returns false to stop; scanning also
    /// stops after `max_examined` physical entries. Returns the last data key examined.
    pub fn scan_slots(
        &self,
        slots: &SlotSet,
        after: Option<&[u8]>,
        max_examined: usize,
        now: u64,
        mut visit: impl FnMut(&[u8], &Entry) -> bool,
    ) -> Result<ScanEnd, StoreError> {
        let mut examined = 0usize;
        let mut start: Vec<u8> = match after {
            Some(k) => {
                let mut v = k.to_vec();
                v.push(0); // the smallest key strictly after `k`
                v
            }
            None => match slots.next_at_or_after(0) {
                Some(s) => encoding::slot_prefix(s).to_vec(),
                None => return Ok(ScanEnd::Done),
            },
        };
        loop {
            let slot = u16::from_be_bytes([start[0], start[1]]);
            let Some(slot) = slots.next_at_or_after(slot) else {
                return Ok(ScanEnd::Done);
            };
            if slot != u16::from_be_bytes([start[0], start[1]]) {
                start = encoding::slot_prefix(slot).to_vec();
            }
            // Scan up to the end of the contiguous range this slot belongs to.
            let range_end = slots
                .ranges()
                .iter()
                .find(|r| r.start <= slot && slot <= r.end)
                .map(|r| r.end)
                .unwrap_or(slot);
            let end_bound = match range_end.checked_add(1) {
                Some(next) if next < SLOT_COUNT => {
                    std::ops::Bound::Excluded(encoding::slot_prefix(next).to_vec())
                }
                _ => std::ops::Bound::Unbounded,
            };
            for guard in self
                .data
                .range::<Vec<u8>, _>((std::ops::Bound::Included(start.clone()), end_bound))
            {
                let (k, v) = guard.into_inner()?;
                examined += 1;
                if let Some(entry) = Entry::decode(Bytes::from_owner(v)) {
                    if !entry.is_expired(now) && !visit(&k, &entry) {
                        return Ok(ScanEnd::At(k.to_vec()));
                    }
                }
                if examined >= max_examined {
                    return Ok(ScanEnd::At(k.to_vec()));
                }
            }
            // This contiguous range is exhausted; continue with the next one.
            match range_end.checked_add(1).filter(|&n| n < SLOT_COUNT) {
                Some(next) => start = encoding::slot_prefix(next).to_vec(),
                None => return Ok(ScanEnd::Done),
            }
        }
    }

    /// Bytes the store takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// Bytes of each keyspace's tables on disk (journals not included).
    pub fn table_bytes(&self) -> [(&'static str, u64); 5] {
        [
            ("data", self.data.disk_space()),
            ("members", self.members.disk_space()),
            ("expiry", self.expiry.disk_space()),
            ("meta", self.meta.disk_space()),
            ("oplog", self.oplog.disk_space()),
        ]
    }

    /// Drops the tables holding only members of a dead collection version (see [`garbage`]).
    /// fjall offers this, and the flush below, only as hidden methods: the one way to give
    /// back a range's space without a compaction of everything around it.
    fn drop_member_tables(&self, slot: u16, version: u64) -> Result<(), StoreError> {
        use fjall::AbstractTree;
        let (start, end) = encoding::version_range(slot, version);
        self.members
            .tree
            .drop_range(start..end)
            .map_err(fjall::Error::from)?;
        Ok(())
    }

    /// Writes every keyspace's memtable out to a table, and waits for them (up to a minute:
    /// a flush held up that long leaves the rest to the sweep's deletes, and a stop to the
    /// journal's replay). Then no journal holds anything the tables do not, so fjall can
    /// delete the journals too, and a restart after a clean stop replays nothing.
    pub fn flush_memtables(&self) -> Result<(), StoreError> {
        let keyspaces = self.memtable_limits();
        // A memtable sealed earlier may still be on its way out, and rotating leaves it be.
        for (k, _) in keyspaces {
            k.rotate_memtable()?;
        }
        let started = std::time::Instant::now();
        while keyspaces.iter().any(|(k, _)| k.sealed_memtable_count() > 0)
            && started.elapsed().as_secs() < 60
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(())
    }

    /// Seals every memtable that has reached its size, and queues its flush; called by each
    /// commit. fjall seals a memtable only when its worker gets to a request each write
    /// queues once the memtable is full, in a bounded queue the worker also sends itself
    /// flushes on: under `redis-benchmark -P 16` the queue filled while the worker was
    /// compacting, the worker blocked sending to it, and the memtable and journal grew
    /// without bound (2.5 GB and 700 MB; the restart replayed for 38 s) until the process
    /// hung (fjall issue #323). Sealed here, a full memtable goes out at once, and fjall's
    /// stall at four sealed memtables per keyspace bounds memory and the journal; fjall's
    /// request for the sealed one finds it sealed and does nothing.
    pub(crate) fn seal_full_memtables(&self) -> Result<(), StoreError> {
        use fjall::AbstractTree;
        for (keyspace, limit) in self.memtable_limits() {
            if keyspace.tree.active_memtable().size() >= limit {
                keyspace.rotate_memtable()?;
            }
        }
        Ok(())
    }

    /// Each keyspace with the size its memtable is sealed at.
    fn memtable_limits(&self) -> [(&Keyspace, u64); 5] {
        [
            (&self.data, self.options.memtable_bytes),
            (&self.members, self.options.memtable_bytes),
            (&self.expiry, FJALL_MEMTABLE_BYTES),
            (&self.meta, FJALL_MEMTABLE_BYTES),
            (self.oplog.keyspace(), FJALL_MEMTABLE_BYTES),
        ]
    }

    /// Tables (SST files) of all keyspaces.
    pub fn table_count(&self) -> usize {
        [&self.data, &self.members, &self.expiry, &self.meta]
            .iter()
            .map(|k| k.table_count())
            .sum()
    }

    /// The fjall database, for figures INFO and metrics report.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Empties the store for a full sync (not logged: the snapshot that follows replaces the
    /// history, [`oplog::Oplog::begin_full_sync`]).
    pub(crate) fn clear_for_full_sync(&self) -> Result<(), StoreError> {
        self.oplog.begin_full_sync()?;
        self.clear_all(FlushLog::Logged)
    }

    /// Deletes everything, crash-safely: a marker written (and synced) first, in the batch
    /// of the oplog's FLUSHALL entry, makes a restart finish a FLUSHALL that a crash
    /// interrupted. The oplog and the history it belongs to stay.
    fn clear_all(&self, log: FlushLog<'_>) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        batch.insert(&self.meta, FLUSHING_MARKER, b"1");
        let (id, end) = self.oplog.next();
        let logged = match log {
            FlushLog::New => {
                let op = self.oplog.begin(OpKind::FlushAll, self.oplog.term());
                let len = self.oplog.append(&mut batch, op, id, end);
                // Reads wait for its acknowledgement before they see an emptied keyspace.
                self.visible.mark_all(id);
                Some((id, len))
            }
            FlushLog::Replayed(op) => {
                self.oplog
                    .append_replayed(&mut batch, op, id)
                    .map_err(|e| corrupt(&e.to_string()))?;
                // On a replica too, until its primary confirms the FLUSHALL.
                self.visible.mark_all(op.id);
                Some((op.id, op.len()))
            }
            FlushLog::Logged => None,
        };
        batch.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        if let Some((id, len)) = logged {
            let end = match log {
                FlushLog::Replayed(op) => op.bytes_before + len,
                _ => end + len,
            };
            self.oplog.committed(id, end, len);
        }
        self.data.clear()?;
        // After the data: a read that loaded a value before the clear cannot cache it.
        self.rows.clear();
        if let Some(f) = &self.filter {
            f.clear();
        }
        self.expiry.clear()?;
        self.members.clear()?;
        self.member_cache.clear();
        let mut batch = self.db.batch();
        let mut removed = 0;
        for slot in 0..SLOT_COUNT {
            let count = self.slot_counts[usize::from(slot)].swap(0, Ordering::Relaxed);
            if count != 0 {
                removed += count;
                batch.remove(&self.meta, slot_count_key(slot));
            }
        }
        // As Redis counts a FLUSHALL: one change per key it removed.
        self.stats.key_changes.inc_by(removed);
        // Counts may be on disk for slots that are zero in memory after an interrupted flush.
        for prefix in [&b"slotcount"[..], encoding::GARBAGE_PREFIX] {
            for guard in self.meta.prefix(prefix) {
                let k = guard.key()?;
                batch.remove(&self.meta, k);
            }
        }
        batch.remove(&self.meta, FLUSHING_MARKER);
        batch.commit()?;
        self.stats.dead_collections.set(0);
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    /// Syncs the journal to disk (used by the `everysec` timer and at shutdown).
    pub fn sync(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let result = self.db.persist(fjall::PersistMode::SyncData);
        self.record_fsync(started);
        if let Err(e) = &result {
            self.mark_unwritable(e);
        }
        Ok(result?)
    }

    fn record_fsync(&self, started: std::time::Instant) {
        self.stats.fsyncs.inc();
        self.stats
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        self.stats
            .last_fsync_unix
            .store(now_ms() / 1000, Ordering::Relaxed);
    }
}

/// How a FLUSHALL of the whole store is logged.
pub(crate) enum FlushLog<'a> {
    /// A new FLUSHALL: the oplog gets its entry.
    New,
    /// A primary's FLUSHALL replayed: its entry is stored as it came.
    Replayed(&'a Op),
    /// Its entry was written before a crash interrupted it, or it is not part of any
    /// history (a full sync's).
    Logged,
}

/// A store error for data that cannot be what it claims to be.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError(fjall::Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        what.to_string(),
    )))
}

/// What one round of a background sweep found.
pub(crate) enum Round {
    /// There may be more to do at once.
    Busy,
    /// Nothing (more) to do for now: pause before the next round.
    Idle,
    /// The writer is gone: the process is shutting down.
    Stop,
}

/// Runs `round` on a thread of its own until `stop` is set, pausing `pause` after an idle
/// round (active expiry and the garbage sweep).
pub(crate) fn background(
    name: &str,
    stop: Arc<AtomicBool>,
    pause: std::time::Duration,
    mut round: impl FnMut() -> Round + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match round() {
                    Round::Busy => {}
                    Round::Idle => std::thread::sleep(pause),
                    Round::Stop => return,
                }
            }
        })
        .expect("spawning a background thread")
}

/// Where a bounded scan stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every slot of the set was scanned to its end.
    Done,
    /// Stopped at this data key; resume after it.
    At(Vec<u8>),
}

/// The size at which the commit path seals `data`'s and `members`' memtables: the one asked
/// for, or the one the store was created with if that is smaller. fjall records a keyspace's
/// memtable size at creation and keeps it, whatever a later open asks, and queues a rotation
/// at each write past it; sealing only later (`memtable_mb` raised on an old data directory)
/// would let those requests flood its worker's queue again (see
/// [`Store::seal_full_memtables`]).
fn memtable_size_created_with(meta: &Keyspace, asked: u64) -> Result<u64, StoreError> {
    let Some(raw) = meta.get(MEMTABLE_SIZE_KEY)? else {
        meta.insert(MEMTABLE_SIZE_KEY, asked.to_be_bytes())?;
        return Ok(asked);
    };
    let created = u64::from_be_bytes(
        raw[..]
            .try_into()
            .map_err(|_| corrupt("the memtable size in meta is malformed"))?,
    );
    if asked > created {
        tracing::warn!(
            memtable_mb = asked >> 20,
            created_with_mb = created >> 20,
            "this data directory was created with smaller memtables, and fjall keeps that size: \
             memtables are sealed at the smaller one"
        );
    }
    Ok(asked.min(created))
}

const FLUSHING_MARKER: &[u8] = b"flushing";

/// The meta key recording the memtable size the store was created with.
const MEMTABLE_SIZE_KEY: &[u8] = b"memtablesize";

/// The meta key naming the primary a replica follows.
const REPLICA_OF_KEY: &[u8] = b"replicaof";

/// The meta key holding the highest controller term seen.
const CONTROLLER_TERM_KEY: &[u8] = b"controllerterm";
const CONTROLLER_LEADER_KEY: &[u8] = b"controllerleader";

/// Longest a shard spends loading its row cache at start before it serves.
const WARM_UP_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// How often filling the key filter at start logs its progress.
const FILTER_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    /// fjall keeps the memtable size a keyspace was created with, so the size the commit path
    /// seals at never grows past it, whatever later opens ask.
    #[test]
    fn memtables_are_sealed_at_the_size_the_store_was_created_with_if_that_is_smaller() {
        let dir = tempfile::tempdir().unwrap();
        let open = |memtable_bytes: u64| {
            Store::open(
                dir.path(),
                StoreOptions {
                    fsync: FsyncMode::No,
                    cache_bytes: 1 << 20,
                    row_cache_bytes: 1 << 20,
                    member_cache_bytes: 1 << 20,
                    memtable_bytes,
                    journal_bytes: 64 << 20,
                    worker_threads: 1,
                    key_filter_bytes: 0,
                    oplog: crate::config::ShardConfig::default().oplog_options(),
                },
            )
            .unwrap()
        };
        let sealed_at = |store: &Store| store.memtable_limits().map(|(_, limit)| limit);
        let big = FJALL_MEMTABLE_BYTES;
        for (asked, expected) in [(1 << 20, 1 << 20), (32 << 20, 1 << 20), (1 << 19, 1 << 19)] {
            let store = open(asked);
            assert_eq!(sealed_at(&store), [expected, expected, big, big, big]);
        }
    }
}
