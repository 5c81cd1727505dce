//! The proxy process's shared state, and the commands it answers from it (INFO, CONFIG).

use crate::topology::TopologyHandle;
use fjord_common::budget::Budget;
use fjord_common::client::{ClientRegistry, Host};
use fjord_common::command::{CommandSpec, Route};
use fjord_common::topology::ProxySettings;
use fjord_common::{info, process};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Which listener a client came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The i-th advertised cluster listener: node-scoped commands cover its slots.
    Cluster(usize),
    /// The whole-cluster endpoint for clients that are not cluster-aware.
    Standalone,
}

/// Counters INFO reports.
#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
}

/// Everything the proxy's connections share.
pub struct Proxy {
    pub topology: Arc<TopologyHandle>,
    pub settings: ProxySettings,
    pub clients: ClientRegistry,
    pub stats: Stats,
    pub budget: Budget,
    pub started: Instant,
    pub run_id: String,
}

impl Proxy {
    pub fn new(topology: Arc<TopologyHandle>, settings: ProxySettings) -> Self {
        Self {
            topology,
            budget: Budget::new(
                settings.client_query_buffer_limit,
                settings.client_memory_budget,
            ),
            settings,
            clients: ClientRegistry::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id: process::new_run_id(),
        }
    }

    /// The INFO text for the requested sections. `keys` is the key count of the listener's
    /// slots, fetched from the shards when the keyspace section is wanted.
    pub fn info_text(&self, wanted: &[String], listener: Listener, keys: Option<u64>) -> String {
        let want = |s: &str| info::wants(wanted, s);
        let routing = self.topology.load();
        let t = &routing.topology;
        let mut out = String::new();
        let (mode, port) = match listener {
            Listener::Cluster(i) => ("cluster", t.nodes.get(i).map_or(0, |n| n.port)),
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
            let rss = process::resident_bytes();
            out.push_str(&format!(
                "# Memory\r\nused_memory:{rss}\r\nused_memory_rss:{rss}\r\nused_memory_peak:{rss}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n"
            ));
        }
        if want("persistence") {
            // ioredis waits for loading:0 before it sends anything.
            out.push_str("# Persistence\r\nloading:0\r\naof_enabled:1\r\n\r\n");
        }
        if want("stats") {
            let st = &self.stats;
            let up = routing.backends.iter().filter(|b| b.is_up()).count();
            out.push_str(&format!(
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\n\
                 topology_version:{}\r\ntopology_reloads_ok:{}\r\ntopology_reloads_failed:{}\r\n\
                 shards:{}\r\nshards_up:{up}\r\n\r\n",
                st.connections_received.load(Ordering::Relaxed),
                st.commands_processed.load(Ordering::Relaxed),
                st.net_input_bytes.load(Ordering::Relaxed),
                st.net_output_bytes.load(Ordering::Relaxed),
                st.rejected_connections.load(Ordering::Relaxed),
                t.version,
                self.topology.reloads_ok.load(Ordering::Relaxed),
                self.topology.reloads_failed.load(Ordering::Relaxed),
                t.shards.len(),
            ));
        }
        if want("replication") {
            out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
        }
        if want("cluster") {
            out.push_str("# Cluster\r\ncluster_enabled:1\r\n\r\n");
        }
        if want("keyspace") {
            out.push_str("# Keyspace\r\n");
            if let Some(keys) = keys.filter(|&k| k > 0) {
                out.push_str(&format!("db0:keys={keys},expires=0,avg_ttl=0\r\n"));
            }
            out.push_str("\r\n");
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
        let st = &self.stats;
        for c in [
            &st.connections_received,
            &st.rejected_connections,
            &st.commands_processed,
            &st.net_input_bytes,
            &st.net_output_bytes,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn lists_command(&self, spec: &CommandSpec) -> bool {
        spec.route != Route::Internal
    }
}
