//! The shard's Prometheus series (all `fjord_shard_*`): commands and connections, the store's
//! counters ([`crate::store::StoreStats`]), and gauges read off the store at scrape time.

use crate::store::Store;
use fjord_common::metrics::{self, CommandMetrics, TrafficStats};
use prometheus::{IntCounter, IntGauge, IntGaugeVec, Registry};

pub struct ShardMetrics {
    pub registry: Registry,
    pub commands: CommandMetrics,
    pub traffic: TrafficStats,
    keys: IntGauge,
    disk_bytes: IntGauge,
    table_bytes: IntGaugeVec,
    writable: IntGauge,
    journal_count: IntGauge,
    journal_bytes: IntGauge,
    tables: IntGauge,
    cache_bytes: IntGauge,
    cache_capacity_bytes: IntGauge,
    row_cache: CacheSeries,
    member_cache: CacheSeries,
    write_buffer_bytes: IntGauge,
    compactions_completed: IntGauge,
    compactions_active: IntGauge,
    flushes_pending: IntGauge,
}

impl ShardMetrics {
    /// The shard's series, with `store`'s counters registered too.
    pub fn new(store: &Store, recording: bool) -> Self {
        let registry = metrics::new_registry();
        store.stats.register(&registry);
        store.oplog().stats.register(&registry);
        let r = &registry;
        let g = |name: &str, help: &str| metrics::gauge(r, name, help);
        Self {
            commands: CommandMetrics::new(r, "fjord_shard", recording),
            traffic: TrafficStats::new(r, "fjord_shard"),
            keys: g(
                "fjord_shard_keys",
                "Keys stored (exact, from the per-slot counts; expired keys not yet reclaimed included, as in Redis)",
            ),
            disk_bytes: g(
                "fjord_shard_disk_bytes",
                "Bytes the store takes on disk (tables and journals)",
            ),
            table_bytes: metrics::register(
                r,
                IntGaugeVec::new(
                    prometheus::Opts::new(
                        "fjord_shard_table_bytes",
                        "Bytes of each keyspace's tables on disk (journals not included)",
                    ),
                    &["keyspace"],
                )
                .expect("valid metric"),
            ),
            writable: g(
                "fjord_shard_writable",
                "1 while the store accepts writes; 0 after a failed write or fsync (restart needed)",
            ),
            journal_count: g("fjord_shard_journal_count", "fjall journal files"),
            journal_bytes: g("fjord_shard_journal_bytes", "Bytes of fjall's journal files on disk"),
            tables: g("fjord_shard_tables", "fjall tables (SST files) of all keyspaces"),
            cache_bytes: g("fjord_shard_cache_bytes", "Bytes in fjall's block cache"),
            cache_capacity_bytes: g(
                "fjord_shard_cache_capacity_bytes",
                "Capacity of fjall's block cache (cache_mb)",
            ),
            row_cache: CacheSeries::new(r, "row_cache", "row cache (decoded hot keys)", "Key"),
            member_cache: CacheSeries::new(
                r,
                "member_cache",
                "member cache (the writer's recent collection members)",
                "Member",
            ),
            write_buffer_bytes: g(
                "fjord_shard_write_buffer_bytes",
                "Bytes in fjall's memtables",
            ),
            compactions_completed: g(
                "fjord_shard_compactions_completed",
                "Compactions fjall finished since the shard started",
            ),
            compactions_active: g("fjord_shard_compactions_active", "Compactions running"),
            flushes_pending: g(
                "fjord_shard_flushes_pending",
                "Memtables waiting to be flushed to tables",
            ),
            registry,
        }
    }

    /// Reads the gauges off the store.
    pub fn sample(&self, store: &Store) {
        let db = store.database();
        self.keys.set(store.total_keys() as i64);
        self.disk_bytes.set(store.disk_bytes() as i64);
        for (keyspace, bytes) in store.table_bytes() {
            self.table_bytes
                .with_label_values(&[keyspace])
                .set(bytes as i64);
        }
        self.writable.set(i64::from(store.is_writable()));
        self.journal_count.set(db.journal_count() as i64);
        self.journal_bytes
            .set(db.journal_disk_space().unwrap_or(0) as i64);
        self.tables.set(store.table_count() as i64);
        self.cache_bytes.set(db.cache_size() as i64);
        self.cache_capacity_bytes.set(db.cache_capacity() as i64);
        self.write_buffer_bytes.set(db.write_buffer_size() as i64);
        let rows = store.row_cache();
        self.row_cache.sample(rows.usage(), rows.hits_and_misses());
        let members = store.member_cache();
        self.member_cache
            .sample(members.usage(), members.hits_and_misses());
        self.compactions_completed
            .set(db.compactions_completed() as i64);
        self.compactions_active.set(db.active_compactions() as i64);
        self.flushes_pending.set(db.outstanding_flushes() as i64);
    }
}

/// The series of one of the shard's caches: `fjord_shard_NAME_bytes`, `_capacity_bytes`,
/// `_hits_total` and `_misses_total`.
struct CacheSeries {
    bytes: IntGauge,
    capacity_bytes: IntGauge,
    hits: IntCounter,
    misses: IntCounter,
}

impl CacheSeries {
    /// `name` as in the metric names (its setting is `NAME_mb`), `what` for the help
    /// texts, `looked_up` what one lookup is for.
    fn new(r: &Registry, name: &str, what: &str, looked_up: &str) -> Self {
        let series = |suffix: &str| format!("fjord_shard_{name}_{suffix}");
        Self {
            bytes: metrics::gauge(
                r,
                &series("bytes"),
                &format!("Bytes in the {what}, as weighed against its capacity"),
            ),
            capacity_bytes: metrics::gauge(
                r,
                &series("capacity_bytes"),
                &format!("Capacity of the {what} ({name}_mb)"),
            ),
            hits: metrics::counter(
                r,
                &series("hits_total"),
                &format!("{looked_up} lookups the {what} answered"),
            ),
            misses: metrics::counter(
                r,
                &series("misses_total"),
                &format!("{looked_up} lookups the {what} passed on to fjall"),
            ),
        }
    }

    fn sample(&self, (held, capacity): (u64, u64), (hits, misses): (u64, u64)) {
        self.bytes.set(held as i64);
        self.capacity_bytes.set(capacity as i64);
        // The cache keeps its own monotonic counts; the counters follow them at scrape time.
        self.hits.inc_by(hits.saturating_sub(self.hits.get()));
        self.misses.inc_by(misses.saturating_sub(self.misses.get()));
    }
}
