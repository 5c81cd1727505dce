//! The proxy process's shared state, and the commands it answers from it (INFO, CONFIG).

use crate::metrics::ProxyMetrics;
use crate::topology::TopologyHandle;
use fjord_common::admin::Observed;
use fjord_common::budget::Budget;
use fjord_common::client::{ClientRegistry, Host};
use fjord_common::command::{CommandSpec, Route};
use fjord_common::info::{self, Sections};
use fjord_common::process;
use fjord_common::topology::ProxySettings;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Which listener a client came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The i-th advertised cluster listener: node-scoped commands cover its slots.
    Cluster(usize),
    /// The replica listener of the i-th: READONLY reads may go to the shards' replicas;
    /// node-scoped commands cover its master's slots.
    Replica(usize),
    /// The whole-cluster endpoint for clients that are not cluster-aware.
    Standalone,
}

/// Everything the proxy's connections share.
pub struct Proxy {
    pub topology: Arc<TopologyHandle>,
    pub settings: ProxySettings,
    pub clients: ClientRegistry,
    pub metrics: Arc<ProxyMetrics>,
    pub budget: Budget,
    pub started: Instant,
    pub run_id: String,
    /// Set once every listener serves, cleared when shutdown begins (`/readyz`).
    pub serving: AtomicBool,
}

impl Proxy {
    pub fn new(
        topology: Arc<TopologyHandle>,
        settings: ProxySettings,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        Self {
            topology,
            budget: Budget::new(
                settings.client_query_buffer_limit,
                settings.client_memory_budget,
            ),
            settings,
            clients: ClientRegistry::default(),
            metrics,
            started: Instant::now(),
            run_id: process::new_run_id(),
            serving: AtomicBool::new(false),
        }
    }

    /// The INFO text for the requested sections. `keys` is the key count of the listener's
    /// slots, fetched from the shards when the keyspace section is wanted; `totals` are the
    /// shards' figures summed ([`crate::router::SUMMED_INFO_FIELDS`]).
    pub fn info_text(
        &self,
        wanted: &Sections,
        listener: Listener,
        keys: Option<u64>,
        totals: &[(&str, u64)],
    ) -> String {
        let total = |name: &str| {
            totals
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, v)| *v)
        };
        let want = |s: &str| wanted.wants(s);
        let routing = self.topology.load();
        let t = &routing.topology;
        let mut out = String::new();
        let (mode, port) = match listener {
            Listener::Cluster(i) => ("cluster", t.nodes.get(i).map_or(0, |n| n.endpoint.port)),
            Listener::Replica(i) => (
                "cluster",
                t.nodes
                    .get(i)
                    .and_then(|n| n.replica.as_ref())
                    .map_or(0, |r| r.port),
            ),
            Listener::Standalone => ("standalone", t.standalone.map_or(0, |a| a.port())),
        };
        if want("server") {
            out.push_str(&info::server_section(
                "proxy",
                mode,
                port,
                &self.run_id,
                self.started,
            ));
        }
        if want("clients") {
            out.push_str(&info::clients_section(
                self.clients.len(),
                self.settings.max_clients,
                self.budget.held(),
            ));
        }
        if want("memory") {
            out.push_str(&info::memory_section(""));
        }
        if want("persistence") {
            // ioredis waits for loading:0 before it sends anything.
            out.push_str(&format!(
                "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{}\r\n\
                 aof_enabled:1\r\n\r\n",
                total("rdb_changes_since_last_save")
            ));
        }
        if want("stats") {
            let m = &self.metrics;
            let up = routing.backends.iter().filter(|b| b.is_up()).count();
            out.push_str(&format!(
                "# Stats\r\n{}expired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\n\
                 keyspace_misses:{}\r\ntopology_version:{}\r\ntopology_reloads_ok:{}\r\n\
                 topology_reloads_failed:{}\r\nshards:{}\r\nshards_up:{up}\r\n\r\n",
                m.traffic.info_lines(),
                total("expired_keys"),
                total("evicted_keys"),
                total("keyspace_hits"),
                total("keyspace_misses"),
                t.version,
                m.reloads_ok.get(),
                m.reloads_failed.get(),
                t.shards.len(),
            ));
        }
        info::shared_sections(
            wanted,
            &info::Replication::default(),
            &self.metrics.commands,
            &mut out,
        );
        if want("cluster") {
            out.push_str(&info::cluster_section(true));
        }
        if want("keyspace") {
            out.push_str(&info::keyspace_section(keys.unwrap_or(0), 0));
        }
        info::finish(out)
    }
}

impl Host for Proxy {
    fn requirepass(&self) -> Option<&str> {
        self.settings.requirepass.as_deref()
    }

    fn clients(&self) -> &ClientRegistry {
        &self.clients
    }

    fn cluster_support(&self) -> bool {
        true
    }

    fn config_params(&self) -> Vec<(&'static str, String)> {
        let s = &self.settings;
        vec![
            ("save", String::new()),
            ("appendonly", "yes".into()),
            ("databases", "1".into()),
            ("maxmemory", "0".into()),
            ("maxmemory-policy", "noeviction".into()),
            ("maxclients", s.max_clients.to_string()),
            ("timeout", "0".into()),
            ("proto-max-bulk-len", s.max_bulk_len.to_string()),
            (
                "client-query-buffer-limit",
                s.client_query_buffer_limit.to_string(),
            ),
            ("cluster-enabled", "yes".into()),
            ("cluster-require-full-coverage", "yes".into()),
            ("cluster-allow-reads-when-down", "no".into()),
            ("cluster-node-timeout", s.command_timeout_ms.to_string()),
            ("requirepass", s.requirepass.clone().unwrap_or_default()),
        ]
    }

    fn reset_stats(&self) {
        self.metrics.traffic.reset();
    }

    fn lists_command(&self, spec: &CommandSpec) -> bool {
        spec.route != Route::Internal
    }
}

impl Observed for Proxy {
    fn registry(&self) -> &prometheus::Registry {
        &self.metrics.registry
    }

    fn sample(&self) {
        self.metrics.traffic.clients.set(self.clients.len() as i64);
    }

    /// Ready while the listeners serve. A shard being down does not make the proxy unready
    /// (a load balancer would drop every proxy at once); `fjord_proxy_backend_up` shows it.
    fn ready(&self) -> Result<(), String> {
        match self.serving.load(Ordering::Relaxed) {
            true => Ok(()),
            false => Err("the listeners are not serving (starting or shutting down)".into()),
        }
    }
}
