//! Pieces of INFO that the shard and the proxy build the same way.

use crate::client::REDIS_VERSION;
use crate::metrics::CommandMetrics;
use std::time::Instant;

/// Sections INFO prints without arguments or with `default`, in Redis's order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections an INFO request asks for, read as Redis reads them: no argument or
/// `default` means the default sections, `all` adds `commandstats` and `latencystats`,
/// `everything` adds module sections too (fjord has none), and names are case-insensitive.
#[derive(Clone, Debug, Default)]
pub struct Sections {
    default: bool,
    all: bool,
    named: Vec<String>,
}

impl Sections {
    /// From INFO's arguments (`args[0]` is the first section, not the command name).
    pub fn parse(args: &[impl AsRef<[u8]>]) -> Self {
        let mut s = Sections {
            default: args.is_empty(),
            ..Sections::default()
        };
        for arg in args {
            let name = String::from_utf8_lossy(arg.as_ref()).to_ascii_lowercase();
            match name.as_str() {
                "default" => s.default = true,
                "all" | "everything" => s.all = true,
                _ => s.named.push(name),
            }
        }
        s
    }

    /// Whether `section` (lower-case) is to be printed.
    pub fn wants(&self, section: &str) -> bool {
        self.all
            || (self.default && DEFAULT_SECTIONS.contains(&section))
            || self.named.iter().any(|n| n == section)
    }
}

/// The Server section. `role` is `shard` or `proxy`; `mode` is Redis's `redis_mode`.
pub fn server_section(role: &str, mode: &str, port: u16, run_id: &str, started: Instant) -> String {
    let uptime = started.elapsed().as_secs();
    format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nfjord_version:{}\r\nfjord_role:{role}\r\n\
         redis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\n\
         redis_mode:{mode}\r\nos:{} {}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\n\
         atomicvar_api:c11-builtin\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{run_id}\r\n\
         tcp_port:{port}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:10\r\n\
         configured_hz:10\r\nexecutable:{}\r\nconfig_file:\r\n\r\n",
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

/// The Memory section: both binaries allocate with mimalloc; `extra` holds lines of the
/// process's own (each ending in `\r\n`).
pub fn memory_section(extra: &str) -> String {
    let rss = crate::process::resident_bytes();
    format!(
        "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
         used_memory_peak:{rss}\r\n{extra}maxmemory:0\r\nmaxmemory_human:0B\r\n\
         maxmemory_policy:noeviction\r\nmem_allocator:mimalloc\r\n\r\n",
        human_bytes(rss)
    )
}

/// `1.50M`, as Redis's `bytesToHuman` writes sizes.
fn human_bytes(n: u64) -> String {
    let n = n as f64;
    let units = [
        (1u64 << 40, 'T'),
        (1 << 30, 'G'),
        (1 << 20, 'M'),
        (1 << 10, 'K'),
    ];
    for (size, unit) in units {
        if n >= size as f64 {
            return format!("{:.2}{unit}", n / size as f64);
        }
    }
    format!("{n}B")
}

/// The CPU section: this process's system and user time (`getrusage`), its children's, and
/// the calling thread's as the "main thread".
fn cpu_section() -> String {
    let seconds = |who| {
        // SAFETY: getrusage only writes the struct we pass.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut u) } != 0 {
            return (0.0, 0.0);
        }
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        (t(u.ru_stime), t(u.ru_utime))
    };
    let (sys, user) = seconds(libc::RUSAGE_SELF);
    let (sys_children, user_children) = seconds(libc::RUSAGE_CHILDREN);
    let (sys_main, user_main) = seconds(libc::RUSAGE_THREAD);
    format!(
        "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n\
         used_cpu_sys_children:{sys_children:.6}\r\nused_cpu_user_children:{user_children:.6}\r\n\
         used_cpu_sys_main_thread:{sys_main:.6}\r\nused_cpu_user_main_thread:{user_main:.6}\r\n\r\n"
    )
}

/// The Modules section: fjord loads none.
fn modules_section() -> String {
    "# Modules\r\n\r\n".into()
}

/// What the Replication section reports. A shard's offsets are op ids of its oplog and
/// its backlog is the oplog; a proxy has neither (the default: zeros).
#[derive(Clone, Debug)]
pub struct Replication {
    /// `master` or `slave`.
    pub role: &'static str,
    /// The lines after `role:` that depend on it, each ending in `\r\n`: a replica's
    /// `master_host` … `replica_announced`, then `connected_slaves` and the `slaveN` lines.
    pub role_lines: String,
    /// The history id (Redis's replication id), 40 hex digits.
    pub replid: String,
    /// The last op id.
    pub offset: u64,
    /// Bytes the backlog may keep.
    pub backlog_size: u64,
    /// The first op id held.
    pub backlog_first: u64,
    /// Ops held.
    pub backlog_len: u64,
}

impl Default for Replication {
    fn default() -> Self {
        Self {
            role: "master",
            role_lines: "connected_slaves:0\r\n".into(),
            replid: "0".repeat(40),
            offset: 0,
            backlog_size: 0,
            backlog_first: 0,
            backlog_len: 0,
        }
    }
}

/// The Replication section, in Redis 7.0's fields.
fn replication_section(r: &Replication) -> String {
    format!(
        "# Replication\r\nrole:{}\r\n{}master_failover_state:no-failover\r\n\
         master_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:-1\r\n\
         repl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\n\
         repl_backlog_histlen:{}\r\n\r\n",
        r.role,
        r.role_lines,
        r.replid,
        "0".repeat(40),
        r.offset,
        u8::from(r.backlog_size > 0),
        r.backlog_size,
        r.backlog_first,
        r.backlog_len,
    )
}

/// The sections proxy and shard build the same way, in Redis's order after `stats`:
/// replication, cpu, modules, commandstats, errorstats.
pub fn shared_sections(
    wanted: &Sections,
    replication: &Replication,
    commands: &CommandMetrics,
    out: &mut String,
) {
    if wanted.wants("replication") {
        out.push_str(&replication_section(replication));
    }
    if wanted.wants("cpu") {
        out.push_str(&cpu_section());
    }
    if wanted.wants("modules") {
        out.push_str(&modules_section());
    }
    if wanted.wants("commandstats") {
        out.push_str(&commands.commandstats_section());
    }
    if wanted.wants("errorstats") {
        out.push_str(&commands.errorstats_section());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_redis_defaults_and_all() {
        let none = Sections::parse(&[] as &[&str]);
        assert!(none.wants("cpu") && none.wants("keyspace"));
        assert!(!none.wants("commandstats"));
        let all = Sections::parse(&["ALL"]);
        assert!(all.wants("commandstats") && all.wants("cpu"));
        let some = Sections::parse(&["cpu", "commandSTATS"]);
        assert!(some.wants("cpu") && some.wants("commandstats") && !some.wants("memory"));
        let default = Sections::parse(&["cpu", "default"]);
        assert!(default.wants("memory") && !default.wants("commandstats"));
    }

    #[test]
    fn sizes_are_written_as_redis_writes_them() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536 * 1024), "1.50M");
    }
}
