//! The row cache: decoded entries of recently read or written keys, in front of fjall.
//!
//! A point read in fjall searches the memtable's skiplist and then the tables (block cache,
//! index and data block parsing); on a hot key that costs several times what the rest of a
//! GET does. The row cache answers hot keys from one hash lookup, for the connection tasks
//! (reads) and for the writer (which loads every key it writes, to keep the per-slot counts
//! and the expiry index exact).
//!
//! # Why it never serves a stale value
//!
//! - Only committed state enters it. After a group's batch is committed (and synced in
//!   `fsync: always`), before any reply of the group leaves, the writer records each key's new
//!   state or drops the key from the cache, so an acknowledged write is what every later read
//!   sees.
//! - A reader that misses takes a placeholder for the key before it reads fjall, and inserts
//!   what it read through that placeholder. The writer's update replaces the placeholder, so
//!   a read that raced with a write (and may hold the older value) fails to insert; so does
//!   one that raced with [`RowCache::clear`].
//! - A state too large to cache is removed rather than inserted: removing also drops a
//!   placeholder, which inserting an oversized value would not.
//!
//! Absent keys are cached too (as `None`), so a repeated miss skips fjall as well.
//!
//! # Holding every key
//!
//! A store that opened empty (or was emptied by FLUSHALL, or whose every entry was loaded into
//! the cache at start: [`super::Store::open`]) and whose cache has since neither evicted nor
//! dropped a present key holds every key in the cache: then a key the cache does
//! not know is absent, and the writer, which loads every key it writes, need not search fjall
//! for it (the first write of each key used to cost a memtable search and a look at every
//! table's filter, as much as the rest of the SET), nor does a read of an absent key. The
//! writer loads under the commit lock, after every earlier commit recorded its keys. A reader
//! could race a commit that fjall already shows and the cache has not recorded yet (a SCAN
//! could then list a key a GET right after calls absent), so each commit holds a
//! [`CommitWindow`] open from before fjall shows it until its keys are recorded, and a reader
//! takes a miss for absent only if no window was open from before its lookup to after it
//! (a seqlock: an odd count means a window is open).
//!
//! # What gets in
//!
//! Reads that miss fill the cache (its S3-FIFO policy keeps what is read again). Writes update
//! keys that are cached; a write of a key that is not cached fills it only while the cache has
//! never had to evict. Once full, caching every key written would push out hot keys for cold
//! ones when writes spread over more keys than it holds (measured: 11% off SET throughput over
//! 3M keys), so such writes drop the key instead.

use super::encoding::{is_score_index_key, Entry};
use quick_cache::sync::{Cache, GuardResult};
use quick_cache::{Lifecycle, OptionsBuilder, Weighter};
use smallvec::SmallVec;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the cache knows of a key: its entry (maybe expired), or that it is absent.
pub type State = Option<Entry>;

/// A cached key: up to 24 bytes are kept inline, so that comparing it during a lookup does not
/// cost another cache miss.
pub type CacheKey = SmallVec<[u8; 24]>;

/// Bytes counted per cached key besides its key and payload (the entry and the cache's own
/// bookkeeping), so that many small keys cannot exceed the budget.
pub const ENTRY_OVERHEAD: u64 = 160;

/// Largest key + payload cached: bigger values are read from fjall each time, so one large
/// value cannot push out thousands of small hot ones.
const MAX_CACHED_BYTES: u64 = 64 * 1024;

/// Lock shards of the cache: enough that the connection threads and the writer rarely meet.
const CACHE_SHARDS: usize = 16;

#[derive(Clone)]
struct Weigh;

impl Weighter<CacheKey, State> for Weigh {
    fn weight(&self, key: &CacheKey, state: &State) -> u64 {
        weight(key, state)
    }
}

/// Notes that the cache has evicted something: it is full, and no longer holds every key.
#[derive(Clone, Default)]
struct Evictions {
    full: Arc<AtomicBool>,
    every_key: Arc<AtomicBool>,
}

impl<K, V> Lifecycle<K, V> for Evictions {
    type RequestState = ();

    fn begin_request(&self) {}

    // Not `on_evict`: quick_cache calls that for replaced values too. `before_evict` runs
    // only when room is made (and for oversized values, which are never offered).
    fn before_evict(&self, _: &mut (), _: &K, _: &mut V) {
        // Before the entry goes: whoever then misses the key (under the same shard lock)
        // sees the flags.
        self.every_key.store(false, Ordering::Release);
        self.full.store(true, Ordering::Release);
    }
}

/// A cache of `capacity_bytes` as weighed.
fn options(capacity_bytes: u64) -> OptionsBuilder {
    let mut options = OptionsBuilder::new();
    options
        // Sizes the tables up front: bounded, so a huge setting does not allocate at start.
        .estimated_items_capacity((capacity_bytes / 256).clamp(1024, 1 << 22) as usize)
        .weight_capacity(capacity_bytes);
    options
}

/// The largest entry a cache of `capacity_bytes` takes: below what one lock shard holds.
fn max_weight(capacity_bytes: u64) -> u64 {
    (MAX_CACHED_BYTES + ENTRY_OVERHEAD).min(capacity_bytes / 64)
}

/// Lookups a cache answered and lookups it passed on to fjall, for the metrics.
#[derive(Default)]
struct Lookups {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Lookups {
    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

fn weight(key: &[u8], state: &State) -> u64 {
    let payload = state.as_ref().map_or(0, |e| e.payload.len());
    key.len() as u64 + payload as u64 + ENTRY_OVERHEAD
}

type RowCacheMap = Cache<CacheKey, State, Weigh, quick_cache::DefaultHashBuilder, Evictions>;

/// Entries keyed by user key; disabled (every call a miss or a no-op) at capacity 0.
pub struct RowCache {
    cache: Option<RowCacheMap>,
    /// `full` is set once the cache has evicted: from then on writes only update cached keys.
    /// `every_key`: see "Holding every key" above.
    flags: Evictions,
    /// Largest weight admitted; below what one lock shard of the cache can hold.
    max_weight: u64,
    /// Commit windows opened plus closed: odd while one is open ([`CommitWindow`]).
    windows: AtomicU64,
    lookups: Lookups,
}

/// Open while a commit's batch may be visible in fjall but not yet recorded in the cache.
pub struct CommitWindow<'a>(&'a AtomicU64);

impl Drop for CommitWindow<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl RowCache {
    /// A cache holding up to `capacity_bytes` (0 disables it).
    pub fn new(capacity_bytes: u64) -> Self {
        if capacity_bytes == 0 {
            return Self {
                cache: None,
                flags: Evictions::default(),
                max_weight: 0,
                windows: AtomicU64::new(0),
                lookups: Lookups::default(),
            };
        }
        let max_weight = max_weight(capacity_bytes);
        let options = options(capacity_bytes).shards(CACHE_SHARDS).build();
        let options = options.expect("valid row cache options");
        let flags = Evictions::default();
        Self {
            cache: Some(Cache::with_options(
                options,
                Weigh,
                Default::default(),
                flags.clone(),
            )),
            flags,
            max_weight,
            windows: AtomicU64::new(0),
            lookups: Lookups::default(),
        }
    }

    /// What the cache holds for `key`, or what `load` reads (then cached if nothing raced it).
    pub fn get_or_load<E>(
        &self,
        key: &[u8],
        load: impl FnOnce() -> Result<State, E>,
    ) -> Result<State, E> {
        let Some(cache) = &self.cache else {
            return load();
        };
        if let Some(state) = self.known_without_loading(cache, key) {
            self.lookups.count(true);
            return Ok(state);
        }
        // Zero timeout: if another reader is loading the same key, read fjall as well rather
        // than block this thread until it is done.
        // As the cache's own key type: its placeholder keeps the key (inline when short).
        match cache.get_value_or_guard(&CacheKey::from_slice(key), Some(Duration::ZERO)) {
            GuardResult::Value(state) => {
                self.lookups.count(true);
                Ok(state)
            }
            GuardResult::Guard(guard) => {
                self.lookups.count(false);
                let state = load()?;
                if weight(key, &state) <= self.max_weight {
                    // Refused when a write or a clear came in between: the value may be old.
                    let _ = guard.insert(state.clone());
                }
                Ok(state)
            }
            GuardResult::Timeout => {
                self.lookups.count(false);
                load()
            }
        }
    }

    /// A read's answer when the cache holds every key and no commit raced the lookup
    /// (see "Holding every key" above): the cached state, or absent.
    fn known_without_loading(&self, cache: &RowCacheMap, key: &[u8]) -> Option<State> {
        if !self.holds_every_key() {
            return None;
        }
        let before = self.windows.load(SeqCst);
        if before % 2 == 1 {
            return None;
        }
        match cache.get(key) {
            Some(state) => Some(state),
            // After the lookup: an eviction that hid the key cleared it before it did.
            None if self.windows.load(SeqCst) == before && self.holds_every_key() => Some(None),
            None => None,
        }
    }

    /// Opens a [`CommitWindow`]; hold it from before a batch is committed until its keys are
    /// recorded.
    pub fn commit_window(&self) -> CommitWindow<'_> {
        self.windows.fetch_add(1, SeqCst);
        CommitWindow(&self.windows)
    }

    /// What the cache holds for `key`, without loading it.
    pub fn get(&self, key: &[u8]) -> Option<State> {
        let state = self.cache.as_ref()?.get(key);
        self.lookups.count(state.is_some());
        state
    }

    /// Records a key's committed state after a commit. `was_cached`: whether the cache held
    /// the key when the writer loaded it (see "What gets in" above).
    pub fn record(&self, key: impl Into<CacheKey>, state: State, was_cached: bool) {
        let key = key.into();
        match was_cached || !self.flags.full.load(Ordering::Acquire) {
            true => self.set(key, state),
            // Also drops what a read cached meanwhile: it may be the old value.
            false => self.forget(&key),
        }
    }

    /// Caches a key's committed state.
    fn set(&self, key: impl Into<CacheKey>, state: State) {
        let key = key.into();
        let Some(cache) = &self.cache else { return };
        if weight(&key, &state) <= self.max_weight {
            cache.insert(key, state);
        } else {
            if state.is_some() {
                self.flags.every_key.store(false, Ordering::Release);
            }
            cache.remove(&key);
        }
    }

    /// Forgets a key (its committed state is unknown, e.g. after a failed commit).
    pub fn forget(&self, key: &[u8]) {
        if let Some(cache) = &self.cache {
            self.flags.every_key.store(false, Ordering::Release);
            cache.remove(key);
        }
    }

    /// Forgets everything (FLUSHALL), placeholders of reads in flight included. The store
    /// must be empty by then: the cache then holds every key (none).
    pub fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
            self.flags.full.store(false, Ordering::Release);
            self.flags.every_key.store(true, Ordering::Release);
        }
    }

    /// Caches an entry of a store nobody uses yet (loaded at start); false once the cache
    /// cannot hold every entry (this one is too big to cache, or room had to be made).
    pub fn warm(&self, key: &[u8], state: State) -> bool {
        if self.cache.is_none() || weight(key, &state) > self.max_weight {
            return false;
        }
        self.set(key, state);
        !self.flags.full.load(Ordering::Acquire)
    }

    /// Declares that the cache holds every key of the store: the store is empty, or every
    /// entry was [`warm`](Self::warm)ed in. A no-op once the cache has evicted.
    pub fn holds_every_key_from_now(&self) {
        if self.cache.is_some() && !self.flags.full.load(Ordering::Acquire) {
            self.flags.every_key.store(true, Ordering::Release);
        }
    }

    /// Whether every present key is in the cache, so that a key it does not know is absent
    /// (see "Holding every key" above; readers also need no commit window open).
    pub fn holds_every_key(&self) -> bool {
        self.cache.is_some() && self.flags.every_key.load(Ordering::Acquire)
    }

    /// Bytes held (as weighed) and the capacity.
    pub fn usage(&self) -> (u64, u64) {
        self.cache
            .as_ref()
            .map_or((0, 0), |c| (c.weight(), c.capacity()))
    }

    /// Lookups answered by the cache and lookups that went to fjall.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.lookups.counts()
    }
}

/// What the writer knows of a member key: its value, or that it is absent.
pub type MemberState = Option<bytes::Bytes>;

#[derive(Clone)]
struct WeighMember;

impl Weighter<Vec<u8>, MemberState> for WeighMember {
    fn weight(&self, key: &Vec<u8>, state: &MemberState) -> u64 {
        member_weight(key, state)
    }
}

fn member_weight(key: &[u8], state: &MemberState) -> u64 {
    key.len() as u64 + state.as_ref().map_or(0, |v| v.len() as u64) + ENTRY_OVERHEAD
}

type MemberCacheMap =
    Cache<Vec<u8>, MemberState, WeighMember, quick_cache::DefaultHashBuilder, Evictions>;

/// The member cache: the writer's copy of recently read or written members, so that the
/// lookup most collection writes make first (is the member there, what is its score) skips
/// fjall. That lookup searched the members' memtable and then each table: a third of the
/// writer's time in ZADD, SADD and HSET, more than the write itself.
///
/// Only the writer thread uses it (every group, replay, import and snapshot chunk is
/// applied there), and it changes it only after a batch is committed, so it holds
/// committed state with none of the row cache's guards against readers racing a commit.
/// Read commands read members from their snapshot instead.
///
/// Members of a dead collection version stay until evicted: fjall's `drop_range` removes
/// them behind the cache's back ([`super::garbage`]), but versions are never handed out
/// twice (not even after a FLUSHALL or a full sync), so nothing looks them up again. For
/// the same reason clearing it at a FLUSHALL only gives its memory back.
///
/// What gets in follows the row cache: lookups that miss, and written members while the
/// cache has never evicted; once full, a write updates only members it holds.
pub struct MemberCache {
    cache: Option<MemberCacheMap>,
    flags: Evictions,
    max_weight: u64,
    lookups: Lookups,
}

impl MemberCache {
    /// A cache holding up to `capacity_bytes` (0 disables it).
    pub fn new(capacity_bytes: u64) -> Self {
        let flags = Evictions::default();
        let cache = (capacity_bytes > 0).then(|| {
            let options = options(capacity_bytes).build();
            let options = options.expect("valid member cache options");
            Cache::with_options(options, WeighMember, Default::default(), flags.clone())
        });
        Self {
            cache,
            flags,
            max_weight: max_weight(capacity_bytes),
            lookups: Lookups::default(),
        }
    }

    /// The member's committed state: from the cache, or from `load` (then cached, unless a
    /// score index entry: see [`Self::record`]).
    pub fn get_or_load<E>(
        &self,
        mkey: &[u8],
        load: impl FnOnce() -> Result<MemberState, E>,
    ) -> Result<MemberState, E> {
        self.get_or(mkey, || {
            let state = load()?;
            if let Some(cache) = &self.cache {
                if member_weight(mkey, &state) <= self.max_weight && !is_score_index_key(mkey) {
                    cache.insert(mkey.to_vec(), state.clone());
                }
            }
            Ok(state)
        })
    }

    /// The member's committed state: from the cache, or from `load` (not cached).
    pub fn get_or<E>(
        &self,
        mkey: &[u8],
        load: impl FnOnce() -> Result<MemberState, E>,
    ) -> Result<MemberState, E> {
        match self.cache.as_ref().and_then(|c| c.get(mkey)) {
            Some(state) => {
                self.lookups.count(true);
                Ok(state)
            }
            None => {
                self.lookups.count(false);
                load()
            }
        }
    }

    /// Records a member's state once the batch that wrote it is committed. A removal only
    /// updates a member the cache holds: most are pops, of members nothing reads again
    /// (a list's positions move on), and making room for them would cost every pop.
    /// Score index entries are left out: nothing reads one by its key, and each ZADD that
    /// changes a score writes a new one, which would push out members that are read
    /// (measured: 1M ZADDs over 100k members filled 32 MiB; leaving them out made ZADD -P 16
    /// on one shard 5-13% faster).
    pub fn record(&self, mkey: Vec<u8>, state: MemberState) {
        let Some(cache) = &self.cache else { return };
        if is_score_index_key(&mkey) {
            return;
        }
        if member_weight(&mkey, &state) > self.max_weight {
            cache.remove(&mkey);
        } else if state.is_some() && !self.flags.full.load(Ordering::Acquire) {
            cache.insert(mkey, state);
        } else {
            // One probe, where looking first and inserting then took two: a pop's writes
            // mostly miss a full cache. `Err` = not cached, nothing to update.
            let _ = cache.replace(mkey, state, false);
        }
    }

    /// Forgets a member (its committed state is unknown, e.g. after a failed commit).
    pub fn forget(&self, mkey: &[u8]) {
        if let Some(cache) = &self.cache {
            cache.remove(mkey);
        }
    }

    /// Forgets everything (FLUSHALL, a full sync).
    pub fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
            self.flags.full.store(false, Ordering::Release);
        }
    }

    /// Bytes held (as weighed) and the capacity.
    pub fn usage(&self) -> (u64, u64) {
        self.cache
            .as_ref()
            .map_or((0, 0), |c| (c.weight(), c.capacity()))
    }

    /// Lookups answered by the cache and lookups that went to fjall.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.lookups.counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encoding::ValueType;
    use bytes::Bytes;

    fn entry(v: &'static [u8]) -> State {
        Some(Entry {
            kind: ValueType::String,
            expire_at: None,
            payload: Bytes::from_static(v),
        })
    }

    #[test]
    fn a_loaded_state_is_served_from_the_cache() {
        let cache = RowCache::new(1 << 20);
        let loaded = cache.get_or_load::<()>(b"k", || Ok(entry(b"v"))).unwrap();
        assert_eq!(loaded, entry(b"v"));
        let again = cache
            .get_or_load::<()>(b"k", || panic!("must not read fjall again"))
            .unwrap();
        assert_eq!(again, entry(b"v"));
    }

    /// A read that loaded the old value while a write committed must not cache it.
    #[test]
    fn a_write_during_a_load_wins_over_the_loaded_value() {
        let cache = RowCache::new(1 << 20);
        let state = cache
            .get_or_load::<()>(b"k", || {
                cache.set(b"k".to_vec(), entry(b"new"));
                Ok(entry(b"old"))
            })
            .unwrap();
        assert_eq!(state, entry(b"old"), "the reader returns what it read");
        assert_eq!(cache.get(b"k"), Some(entry(b"new")));
    }

    #[test]
    fn a_clear_during_a_load_keeps_the_loaded_value_out() {
        let cache = RowCache::new(1 << 20);
        cache
            .get_or_load::<()>(b"k", || {
                cache.clear();
                Ok(entry(b"old"))
            })
            .unwrap();
        assert_eq!(cache.get(b"k"), None);
    }

    /// An oversized write must drop what was cached, and a racing reader's placeholder.
    #[test]
    fn an_oversized_write_removes_the_key() {
        let cache = RowCache::new(1 << 20);
        let big: &'static [u8] = Box::leak(vec![b'x'; 100 * 1024].into_boxed_slice());
        cache.set(b"k".to_vec(), entry(b"small"));
        cache.set(b"k".to_vec(), entry(big));
        assert_eq!(cache.get(b"k"), None);
        cache
            .get_or_load::<()>(b"j", || {
                cache.set(b"j".to_vec(), entry(big));
                Ok(entry(b"old"))
            })
            .unwrap();
        assert_eq!(cache.get(b"j"), None);
    }

    /// Rewriting cached keys is not eviction: the cache is not full yet.
    #[test]
    fn rewrites_of_cached_keys_do_not_mark_the_cache_full() {
        let cache = RowCache::new(1 << 20);
        for round in 0..3 {
            for i in 0..100 {
                let key = format!("k{i}");
                let was_cached = cache.get(key.as_bytes()).is_some();
                assert_eq!(was_cached, round > 0);
                cache.record(key.into_bytes(), entry(b"value"), was_cached);
            }
        }
        cache.record(b"new".to_vec(), entry(b"v"), false);
        assert_eq!(cache.get(b"new"), Some(entry(b"v")));
    }

    #[test]
    fn writes_fill_the_cache_only_until_it_first_evicts() {
        let cache = RowCache::new(64 * 1024);
        cache.record(b"first".to_vec(), entry(b"v"), false);
        assert_eq!(
            cache.get(b"first"),
            Some(entry(b"v")),
            "room to spare: cached"
        );
        for i in 0..5000 {
            cache.record(format!("k{i}").into_bytes(), entry(b"some value"), false);
        }
        cache.record(b"cold".to_vec(), entry(b"v"), false);
        assert_eq!(
            cache.get(b"cold"),
            None,
            "full: a write of an uncached key drops it"
        );
        cache.record(b"hot".to_vec(), entry(b"v2"), true);
        assert_eq!(
            cache.get(b"hot"),
            Some(entry(b"v2")),
            "a cached key is updated"
        );
        cache.clear();
        cache.record(b"again".to_vec(), entry(b"v"), false);
        assert_eq!(
            cache.get(b"again"),
            Some(entry(b"v")),
            "empty again after a clear"
        );
    }

    #[test]
    fn score_index_entries_are_never_cached() {
        use crate::store::encoding::{member_key, MemberKind};
        let cache = MemberCache::new(1 << 20);
        let item = member_key(1, 7, MemberKind::Item, b"m");
        let index = member_key(1, 7, MemberKind::Score, b"12345678m");
        let v = Some(Bytes::from_static(b"v"));
        cache.record(item.clone(), v.clone());
        cache.record(index.clone(), Some(Bytes::new()));
        let loaded = cache.get_or_load::<()>(&index, || Ok(Some(Bytes::new())));
        assert_eq!(loaded, Ok(Some(Bytes::new())));
        assert_eq!(
            cache.get_or::<()>(&item, || panic!("an item is cached")),
            Ok(v)
        );
        assert_eq!(
            cache.get_or::<()>(&index, || Ok(None)),
            Ok(None),
            "neither a write nor a read caches an index entry"
        );
    }

    #[test]
    fn it_holds_every_key_only_from_an_empty_store_until_a_present_key_is_lost() {
        type Loss = (&'static str, fn(&RowCache));
        let losses: [Loss; 3] = [
            ("an eviction", |c| {
                for i in 0..5000 {
                    c.record(format!("k{i}").into_bytes(), entry(b"some value"), false);
                }
            }),
            ("an oversized value", |c| {
                let big: &'static [u8] = Box::leak(vec![b'x'; 100 * 1024].into_boxed_slice());
                c.set(b"big".to_vec(), entry(big));
            }),
            ("a forgotten key", |c| c.forget(b"k")),
        ];
        for (loss, lose) in losses {
            let cache = RowCache::new(64 * 1024);
            assert!(!cache.holds_every_key(), "not known empty yet");
            cache.holds_every_key_from_now();
            cache.record(b"k".to_vec(), entry(b"v"), false);
            cache.set(b"gone".to_vec(), None);
            assert!(cache.holds_every_key());
            lose(&cache);
            assert!(!cache.holds_every_key(), "after {loss}");
            cache.clear();
            assert!(cache.holds_every_key(), "emptied by a clear after {loss}");
        }
        let off = RowCache::new(0);
        off.holds_every_key_from_now();
        assert!(!off.holds_every_key(), "a disabled cache holds nothing");
    }

    #[test]
    fn reads_take_unknown_keys_for_absent_only_while_no_commit_is_under_way() {
        let cache = RowCache::new(1 << 20);
        let no_fjall = || -> Result<State, ()> { panic!("must not read fjall") };
        cache.holds_every_key_from_now();
        cache.set(b"k".to_vec(), entry(b"v"));
        assert_eq!(cache.get_or_load(b"k", no_fjall).unwrap(), entry(b"v"));
        assert_eq!(cache.get_or_load(b"absent", no_fjall).unwrap(), None);
        // A batch fjall may show already, not yet recorded: read it from fjall.
        let window = cache.commit_window();
        let loaded = cache.get_or_load::<()>(b"new", || Ok(entry(b"committed")));
        assert_eq!(loaded.unwrap(), entry(b"committed"));
        cache.record(b"new".to_vec(), entry(b"committed"), false);
        drop(window);
        assert_eq!(cache.get_or_load(b"other", no_fjall).unwrap(), None);
        cache.forget(b"k");
        let loaded = cache.get_or_load::<()>(b"k", || Ok(entry(b"v")));
        assert_eq!(
            loaded.unwrap(),
            entry(b"v"),
            "not every key held: read fjall"
        );
    }

    #[test]
    fn absent_keys_are_cached_and_capacity_zero_disables() {
        let cache = RowCache::new(1 << 20);
        cache.get_or_load::<()>(b"missing", || Ok(None)).unwrap();
        assert_eq!(cache.get(b"missing"), Some(None));
        let off = RowCache::new(0);
        off.set(b"k".to_vec(), entry(b"v"));
        assert_eq!(off.get(b"k"), None);
        assert_eq!(off.usage(), (0, 0));
    }
}
