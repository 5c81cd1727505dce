//! Pieces of INFO that the shard and the proxy build the same way.

use crate::client::REDIS_VERSION;
use std::time::Instant;

/// Whether INFO with `wanted` sections (lower-case) includes `section`; none means the
/// default sections, which here are all of them.
pub fn wants(wanted: &[String], section: &str) -> bool {
    wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default" || w == section)
}

/// The Server section. `role` is `shard` or `proxy`; `mode` is Redis's `redis_mode`.
pub fn server_section(role: &str, mode: &str, port: u16, run_id: &str, started: Instant) -> String {
    let uptime = started.elapsed().as_secs();
    format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nfjord_version:{}\r\nfjord_role:{role}\r\n\
         redis_mode:{mode}\r\nos:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{run_id}\r\n\
         tcp_port:{port}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
         executable:{}\r\nconfig_file:\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        std::process::id(),
        uptime / 86400,
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    )
}

/// The Clients section: open connections, the limit, bytes held in half-received requests.
pub fn clients_section(connected: usize, max_clients: usize, buffered: usize) -> String {
    format!(
        "# Clients\r\nconnected_clients:{connected}\r\nmaxclients:{max_clients}\r\n\
         client_recent_max_input_buffer:{buffered}\r\nblocked_clients:0\r\n\r\n"
    )
}

/// The Replication section: every fjord process is a master without replicas.
pub fn replication_section() -> String {
    "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n".into()
}

/// The Cluster section: `cluster_enabled` is 1 where clients see a cluster (the proxy).
pub fn cluster_section(enabled: bool) -> String {
    format!("# Cluster\r\ncluster_enabled:{}\r\n\r\n", u8::from(enabled))
}

/// The Keyspace section: one `db0` line, left out when there are no keys (as in Redis).
pub fn keyspace_section(keys: u64, expires: usize) -> String {
    match keys {
        0 => "# Keyspace\r\n\r\n".into(),
        _ => format!("# Keyspace\r\ndb0:keys={keys},expires={expires},avg_ttl=0\r\n\r\n"),
    }
}

/// Drops the blank line after the last section.
pub fn finish(mut text: String) -> String {
    while text.ends_with("\r\n\r\n") {
        text.truncate(text.len() - 2);
    }
    text
}
