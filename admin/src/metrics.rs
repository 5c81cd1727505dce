//! The controller's series (`fjord_admin_*`), served on its `--admin` address with
//! `/healthz`, `/readyz` and `/metrics`.

use fjord_common::admin::Observed;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

pub struct AdminMetrics {
    registry: Registry,
    /// Probes by how they ended: ok, silent, gone, refused (an error answer).
    pub probes: IntCounterVec,
    /// Failovers by shard and outcome: done, failed.
    pub failovers: IntCounterVec,
    /// From the decision to fail over to the publication of the new primary.
    pub failover_seconds: Histogram,
    /// The shard's term in the file.
    pub term: IntGaugeVec,
    /// 1 while the shard's primary answers and serves.
    pub primary_up: IntGaugeVec,
    /// Replicas the file records in sync, by shard.
    pub recorded_in_sync: IntGaugeVec,
    /// 1 while the shard has fewer replicas recorded in sync than the file lists.
    pub degraded: IntGaugeVec,
    /// Writes of the cluster file by what they did (term, failover, in_sync) and conflicts.
    pub topology_writes: IntCounterVec,
    /// 1 while controllers are paused.
    pub paused: prometheus::IntGauge,
    /// 1 while this controller acts: always with the file store, while elected with etcd.
    pub leader: prometheus::IntGauge,
}

impl AdminMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            fjord_common::metrics::register(&registry, c.clone());
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["shard"]).expect("valid metric");
            fjord_common::metrics::register(&registry, g.clone());
            g
        };
        let failover_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "fjord_admin_failover_duration_seconds",
                "From the decision to fail a shard over to the publication of its new primary (lease wait included)",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]),
        )
        .expect("valid metric");
        fjord_common::metrics::register(&registry, failover_seconds.clone());
        Self {
            probes: counter(
                "fjord_admin_probes_total",
                "Probes of shard processes by result: ok, silent (no answer in time), gone (refused or reset), refused (an error answer)",
                &["result"],
            ),
            failovers: counter(
                "fjord_admin_failovers_total",
                "Failovers this controller made, by shard and outcome (done, failed)",
                &["shard", "outcome"],
            ),
            failover_seconds,
            term: gauge("fjord_admin_shard_term", "The shard's controller term in the cluster file"),
            primary_up: gauge(
                "fjord_admin_primary_up",
                "1 while the shard's primary answers the controller's probes and serves",
            ),
            recorded_in_sync: gauge(
                "fjord_admin_recorded_in_sync_replicas",
                "Replicas the cluster file records in sync (the ones a failover may promote)",
            ),
            degraded: gauge(
                "fjord_admin_shard_degraded",
                "1 while the shard has fewer replicas recorded in sync than the cluster file lists (fewer copies of each acknowledged write; with none, a failover has nothing to promote)",
            ),
            topology_writes: counter(
                "fjord_admin_topology_writes_total",
                "Writes of the cluster file by kind: term, failover, in_sync",
                &["kind"],
            ),
            paused: fjord_common::metrics::register(
                &registry,
                prometheus::IntGauge::new(
                    "fjord_admin_paused",
                    "1 while controllers are paused (fjord-admin controller pause): no failover",
                )
                .expect("valid metric"),
            ),
            leader: fjord_common::metrics::register(
                &registry,
                prometheus::IntGauge::new(
                    "fjord_admin_leader",
                    "1 while this controller acts: always on a cluster file; with etcd, while it is the elected leader",
                )
                .expect("valid metric"),
            ),
            registry,
        }
    }
}

impl Observed for AdminMetrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn sample(&self) {}

    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}
