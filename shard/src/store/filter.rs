//! The key filter: a Bloom filter of the data keys present, so that a lookup of a key the
//! store does not have can skip fjall.
//!
//! The row cache answers such lookups only while it holds every key (`cache.rs`), that is
//! while the store fits in it. In a larger store, every first write of a new key (the writer
//! loads every key it writes) and every read of an absent key searched fjall: its memtables,
//! then a filter of each table. This filter answers "absent" for most of them from one cache
//! line.
//!
//! # Why it never hides a present key
//!
//! - Every commit adds the keys it creates (present after it, absent when it loaded them)
//!   before fjall shows the batch (the writer, under the commit lock). A reader that finds a
//!   key missing here looked before that commit was visible, so "absent" is what it would have
//!   read from fjall anyway. A key present when a commit loaded it is in already: its creating
//!   commit added it, or the fill at start did (FLUSHALL empties both store and filter).
//! - At open the filter is empty and not yet *complete*: lookups pass through to fjall while a
//!   background thread adds every key of a snapshot taken after the writer started adding.
//!   Keys committed later are the writer's, so when the scan ends every present key is in.
//!   When the row cache's load at start went through every entry (a store that fits in it),
//!   that load added them, before anything was served, and no scan is needed.
//! - A store found empty at open, or emptied by FLUSHALL, is complete at once.
//!
//! Deleted keys stay in (a Bloom filter cannot remove), which only costs false positives. Once
//! many more distinct keys were added than the filter was sized for (at open, for twice the
//! keys the store had), it is *saturated* and no longer consulted; the next start sizes it
//! anew.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Bits of filter per key it is sized for: about 1% false positives.
const BITS_PER_KEY: u64 = 10;

/// Bits set per key, all in one 512-bit block (one cache line).
const PROBES: u32 = 6;

const BLOCK_WORDS: usize = 8;

/// Smallest number of keys a filter is sized for, so a small store has room to grow.
const MIN_KEYS: u64 = 1 << 20;

/// Past this many distinct keys per key sized for, false positives pass most lookups through
/// anyway (about 30%).
const SATURATION: u64 = 3;

pub struct KeyFilter {
    words: Vec<AtomicU64>,
    blocks: u64,
    /// Keys it was sized for.
    capacity: u64,
    /// Keys added that set at least one new bit: about the distinct keys added.
    distinct: AtomicU64,
    /// Every present key has been added (see the module doc).
    complete: AtomicBool,
    saturated: AtomicBool,
    /// Tells the start-up scan to stop (the store is closing).
    stop: Arc<AtomicBool>,
    hasher: foldhash::fast::FixedState,
}

impl KeyFilter {
    /// A filter for `keys` keys (at least [`MIN_KEYS`]), at most `max_bytes` large; `None` if
    /// `max_bytes` is 0 (off).
    pub fn new(keys: u64, max_bytes: u64) -> Option<Self> {
        let block_bytes = (BLOCK_WORDS * 8) as u64;
        let wanted = keys.max(MIN_KEYS).saturating_mul(BITS_PER_KEY) / 8;
        let blocks = wanted.min(max_bytes) / block_bytes;
        if blocks == 0 {
            return None;
        }
        let words = (0..blocks as usize * BLOCK_WORDS)
            .map(|_| AtomicU64::new(0))
            .collect();
        Some(Self {
            words,
            blocks,
            capacity: blocks * block_bytes * 8 / BITS_PER_KEY,
            distinct: AtomicU64::new(0),
            complete: AtomicBool::new(false),
            saturated: AtomicBool::new(false),
            stop: Arc::new(AtomicBool::new(false)),
            hasher: foldhash::fast::FixedState::with_seed(0x6a09_e667_f3bc_c908),
        })
    }

    /// The block's first word and the bits of each probe.
    fn probes(&self, key: &[u8]) -> (usize, impl Iterator<Item = (usize, u64)>) {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(key);
        let block = (((h >> 32) * self.blocks) >> 32) as usize;
        let (mut bit, step) = (h as u32, ((h >> 21) as u32) | 1);
        let probes = (0..PROBES).map(move |_| {
            bit = bit.wrapping_add(step);
            let i = (bit >> 23) as usize; // 0..512
            (i / 64, 1u64 << (i % 64))
        });
        (block * BLOCK_WORDS, probes)
    }

    /// Adds a data key.
    pub fn insert(&self, key: &[u8]) {
        let (base, probes) = self.probes(key);
        let mut new = false;
        for (word, mask) in probes {
            if self.words[base + word].load(Ordering::Relaxed) & mask == 0 {
                self.words[base + word].fetch_or(mask, Ordering::Release);
                new = true;
            }
        }
        if new {
            self.distinct.fetch_add(1, Ordering::Relaxed);
            if self.is_complete() {
                self.check_saturation();
            }
        }
    }

    fn check_saturation(&self) {
        let distinct = self.distinct.load(Ordering::Relaxed);
        if distinct > self.capacity.saturating_mul(SATURATION)
            && !self.saturated.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                capacity = self.capacity,
                distinct,
                "key filter saturated: no longer consulted until the shard restarts"
            );
        }
    }

    /// Whether the store certainly does not hold `key`. False while the filter is not
    /// complete or is saturated.
    pub fn excludes(&self, key: &[u8]) -> bool {
        if !self.is_complete() || self.saturated.load(Ordering::Relaxed) {
            return false;
        }
        let (base, mut probes) = self.probes(key);
        probes.any(|(word, mask)| self.words[base + word].load(Ordering::Acquire) & mask == 0)
    }

    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Every present key has been added.
    pub fn mark_complete(&self) {
        self.complete.store(true, Ordering::Release);
        self.check_saturation();
    }

    /// The store is empty (FLUSHALL): forgets every key, complete from now on.
    pub fn clear(&self) {
        for w in &self.words {
            w.store(0, Ordering::Relaxed);
        }
        self.distinct.store(0, Ordering::Relaxed);
        self.saturated.store(false, Ordering::Relaxed);
        self.mark_complete();
    }

    /// `filling`, `complete` or `saturated`.
    pub fn state(&self) -> &'static str {
        if self.saturated.load(Ordering::Relaxed) {
            "saturated"
        } else if self.is_complete() {
            "complete"
        } else {
            "filling"
        }
    }

    /// Set when the store closes; the start-up scan checks it.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Keys it was sized for, and bytes it takes.
    pub fn size(&self) -> (u64, u64) {
        (self.capacity, self.words.len() as u64 * 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_added_key_is_kept_and_few_others_are_excluded_wrongly() {
        let f = KeyFilter::new(100_000, 1 << 30).unwrap();
        assert!(
            !f.excludes(b"anything"),
            "not complete yet: nothing is excluded"
        );
        f.mark_complete();
        for i in 0..100_000u32 {
            f.insert(format!("key:{i}").as_bytes());
        }
        for i in 0..100_000u32 {
            assert!(!f.excludes(format!("key:{i}").as_bytes()), "key:{i}");
        }
        let passed = (0..100_000u32)
            .filter(|i| !f.excludes(format!("other:{i}").as_bytes()))
            .count();
        // Sized for 1M keys (the minimum) and holding 100k: well under 1%.
        assert!(passed < 1_000, "{passed} absent keys passed");
    }

    #[test]
    fn clear_forgets_keys_and_a_saturated_filter_excludes_nothing() {
        let f = KeyFilter::new(0, 64 * 1024).unwrap();
        f.mark_complete();
        f.insert(b"k");
        f.clear();
        assert!(f.excludes(b"k"));
        let (capacity, bytes) = f.size();
        assert_eq!(bytes, 64 * 1024);
        for i in 0..capacity * (SATURATION + 1) {
            f.insert(&i.to_le_bytes());
        }
        assert!(!f.excludes(b"never added"));
        assert!(KeyFilter::new(1000, 0).is_none());
    }
}
