//! The proxy's Prometheus series (all `fjord_proxy_*`).
//!
//! Shard-labelled handles are resolved when a backend starts and shared by every backend of
//! that shard id (a shard moved to another address keeps its series); a shard that leaves the
//! topology has its series removed.

use fjord_common::metrics::{
    self, CommandLabel, CommandMetrics, PerCommand, TrafficStats, COUNT_BUCKETS, LATENCY_BUCKETS,
};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};
use prometheus::{Opts, Registry};

pub struct ProxyMetrics {
    pub registry: Registry,
    pub commands: CommandMetrics,
    pub traffic: TrafficStats,
    pub clusterdown_replies: IntCounter,
    pub topology_version: IntGauge,
    pub reloads_ok: IntCounter,
    pub reloads_failed: IntCounter,
    /// How long a topology reload took, from reading the document to the swap.
    pub reload_seconds: Histogram,
    /// 1 while the topology store (etcd) is followed; 0 while it cannot be read and the last
    /// topology stays in force. Stays 1 with the file store.
    pub store_up: IntGauge,
    /// READONLY reads on replica listeners: served by a replica, or sent to the primary
    /// after the replica refused (too stale) or failed them.
    pub replica_reads_served: IntCounter,
    pub replica_reads_fell_back: IntCounter,
    /// Commands a shard refused for a slot it does not serve, sent on to the slot's owner.
    pub redirects_followed: IntCounter,
    /// TRYAGAIN errors sent to clients: a slot stayed in motion too long.
    pub tryagain_replies: IntCounter,
    multikey_keys: HistogramVec,
    fanout_shards: HistogramVec,
    split_cells: PerCommand<(Histogram, Histogram)>,
    backend_requests: IntCounterVec,
    backend_duration: HistogramVec,
    backend_inflight: IntGaugeVec,
    backend_up: IntGaugeVec,
}

impl ProxyMetrics {
    pub fn new(recording: bool) -> Self {
        let registry = metrics::new_registry();
        let r = &registry;
        let reloads = metrics::counter_vec(
            r,
            "fjord_proxy_topology_reloads_total",
            "Topology reloads: ok (swapped in or unchanged) or failed (file refused)",
            &["result"],
        );
        let gauge_vec = |name: &str, help: &str| {
            let vec = IntGaugeVec::new(Opts::new(name, help), &["shard"]).expect("valid metric");
            metrics::register(r, vec)
        };
        let replica_reads = metrics::counter_vec(
            r,
            "fjord_proxy_replica_reads_total",
            "READONLY reads sent to shard replicas, by outcome: served, or fell_back (the \
             replica was too stale or failed; the primary answered instead)",
            &["outcome"],
        );
        Self {
            replica_reads_served: replica_reads.with_label_values(&["served"]),
            replica_reads_fell_back: replica_reads.with_label_values(&["fell_back"]),
            commands: CommandMetrics::new(r, "fjord_proxy", recording),
            traffic: TrafficStats::new(r, "fjord_proxy"),
            redirects_followed: metrics::counter(
                r,
                "fjord_proxy_redirects_followed_total",
                "Commands a shard refused for a slot it does not serve (NOTOWNER: certainly \
                 not applied), sent again to the slot's owner; one per hop",
            ),
            tryagain_replies: metrics::counter(
                r,
                "fjord_proxy_tryagain_replies_total",
                "TRYAGAIN errors sent to clients: a slot stayed frozen or importing, or its \
                 owner unknown, for longer than the proxy follows it (2 s)",
            ),
            clusterdown_replies: metrics::counter(
                r,
                "fjord_proxy_clusterdown_replies_total",
                "CLUSTERDOWN errors sent to clients (a shard was unreachable or too slow)",
            ),
            topology_version: metrics::gauge(
                r,
                "fjord_proxy_topology_version",
                "Version of the topology in force",
            ),
            store_up: {
                let g = metrics::gauge(
                    r,
                    "fjord_proxy_topology_store_up",
                    "1 while the topology store (etcd) is followed; 0 while it cannot be read \
                     (the last topology stays in force)",
                );
                g.set(1);
                g
            },
            reload_seconds: metrics::histogram(
                r,
                "fjord_proxy_topology_reload_seconds",
                "Time a topology reload took to put the new topology in force: from reading \
                 the document (or etcd's value arriving), parsing and validating it, to the \
                 swap; new shards' connections start right after it",
                &[
                    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5,
                ],
            ),
            reloads_ok: reloads.with_label_values(&["ok"]),
            reloads_failed: reloads.with_label_values(&["failed"]),
            multikey_keys: metrics::histogram_vec(
                r,
                "fjord_proxy_multikey_keys",
                "Keys per split multi-key command (MGET, MSET, DEL, ...)",
                &["command"],
                COUNT_BUCKETS,
            ),
            fanout_shards: metrics::histogram_vec(
                r,
                "fjord_proxy_fanout_shards",
                "Shards one split multi-key command went to",
                &["command"],
                &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0],
            ),
            split_cells: PerCommand::default(),
            backend_requests: metrics::counter_vec(
                r,
                "fjord_proxy_backend_requests_total",
                "Requests sent to shards, by result: ok, error (the shard replied an error), \
                 timeout, unavailable (not sent, or the connection broke)",
                &["shard", "result"],
            ),
            backend_duration: metrics::histogram_vec(
                r,
                "fjord_proxy_backend_duration_seconds",
                "Time from writing a request to a shard to its reply",
                &["shard"],
                LATENCY_BUCKETS,
            ),
            backend_inflight: gauge_vec(
                "fjord_proxy_backend_inflight",
                "Requests written to the shard and not yet answered",
            ),
            backend_up: gauge_vec(
                "fjord_proxy_backend_up",
                "1 while the proxy holds a working connection to the shard",
            ),
            registry,
        }
    }

    /// Records the size of a split command: `keys` keys sent to `shards` shards.
    pub fn record_split(&self, label: CommandLabel, keys: usize, shards: usize) {
        if !self.commands.recording() {
            return;
        }
        let (k, s) = self.split_cells.get(label, |name| {
            (
                self.multikey_keys.with_label_values(&[name]),
                self.fanout_shards.with_label_values(&[name]),
            )
        });
        k.observe(keys as f64);
        s.observe(shards as f64);
    }

    /// The handles of shard `id`.
    pub fn backend(&self, id: &str) -> BackendMetrics {
        let result = |r: &str| self.backend_requests.with_label_values(&[id, r]);
        BackendMetrics {
            recording: self.commands.recording(),
            ok: result("ok"),
            error: result("error"),
            timeout: result("timeout"),
            unavailable: result("unavailable"),
            duration: self.backend_duration.with_label_values(&[id]),
            inflight: self.backend_inflight.with_label_values(&[id]),
            up: self.backend_up.with_label_values(&[id]),
        }
    }

    /// Removes the series of a shard that left the topology.
    pub fn forget_shard(&self, id: &str) {
        for r in ["ok", "error", "timeout", "unavailable"] {
            let _ = self.backend_requests.remove_label_values(&[id, r]);
        }
        let _ = self.backend_duration.remove_label_values(&[id]);
        let _ = self.backend_inflight.remove_label_values(&[id]);
        let _ = self.backend_up.remove_label_values(&[id]);
    }
}

/// One shard's series, held by its backend's connections.
#[derive(Clone)]
pub struct BackendMetrics {
    /// Per-request series (counts, latency, in flight) are kept only when recording; `up`
    /// always.
    pub recording: bool,
    pub ok: IntCounter,
    pub error: IntCounter,
    pub timeout: IntCounter,
    pub unavailable: IntCounter,
    pub duration: Histogram,
    pub inflight: IntGauge,
    pub up: IntGauge,
}
