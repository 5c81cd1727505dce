//! Shard settings: an optional YAML file, overridden by command-line flags.
//!
//! `config/shard.yaml` documents every field; a test parses it so the example cannot drift.

use serde::Deserialize;
use std::path::PathBuf;

/// When an acknowledged write reaches the disk, as Redis's `appendfsync`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Every acknowledged write is on disk (group commit shares one fsync among writers).
    Always,
    /// Synced once per second; a power loss can take the last second.
    Everysec,
    /// Left to the OS. Survives a process crash, not a power loss.
    No,
}

impl FsyncMode {
    pub fn name(self) -> &'static str {
        match self {
            FsyncMode::Always => "always",
            FsyncMode::Everysec => "everysec",
            FsyncMode::No => "no",
        }
    }
}

pub use fjord_common::topology::ReplicaAcks;

/// Everything a shard can be told. Defaults sit in `Default` and nowhere else.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub fsync: FsyncMode,
    pub requirepass: Option<String>,
    pub cache_mb: u64,
    pub row_cache_mb: u64,
    pub member_cache_mb: u64,
    pub memtable_mb: u64,
    pub max_journal_mb: u64,
    pub key_filter_mb: u64,
    pub io_threads: usize,
    pub storage_threads: usize,
    pub max_clients: usize,
    pub max_bulk_len: usize,
    pub max_array_len: usize,
    pub max_inline_len: usize,
    pub client_query_buffer_limit: usize,
    pub client_memory_budget: usize,
    pub writer_queue: usize,
    pub oplog_retention_mb: u64,
    pub oplog_pin_max_mb: u64,
    pub replica_of: Option<String>,
    pub replica_acks: ReplicaAcks,
    pub min_insync_replicas: usize,
    pub replica_ack_timeout_ms: u64,
    pub admin: Option<String>,
    pub record_metrics: bool,
}

impl Default for ShardConfig {
    fn default() -> Self {
        let limits = fjord_common::Limits::default();
        Self {
            listen: "127.0.0.1:7101".into(),
            data_dir: PathBuf::from("data/shard"),
            fsync: FsyncMode::Everysec,
            requirepass: None,
            cache_mb: 64,
            row_cache_mb: 64,
            member_cache_mb: 32,
            memtable_mb: 16,
            max_journal_mb: 128,
            key_filter_mb: 64,
            io_threads: 2,
            storage_threads: 1,
            max_clients: 10_000,
            max_bulk_len: limits.max_bulk_len,
            max_array_len: limits.max_array_len,
            max_inline_len: limits.max_inline_len,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_memory_budget: 2 * 1024 * 1024 * 1024,
            writer_queue: 8192,
            oplog_retention_mb: 256,
            oplog_pin_max_mb: 4096,
            replica_of: None,
            replica_acks: ReplicaAcks::Sync,
            min_insync_replicas: 0,
            replica_ack_timeout_ms: 1000,
            admin: None,
            record_metrics: true,
        }
    }
}

impl ShardConfig {
    /// Reads a YAML file; relative `data_dir` resolves against the file's folder.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let mut config: ShardConfig =
            serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if config.data_dir.is_relative() {
            if let Some(dir) = path.parent() {
                config.data_dir = dir.join(&config.data_dir);
            }
        }
        Ok(config)
    }

    /// How replies wait for replicas.
    pub fn ack_options(&self) -> crate::repl::acks::AckOptions {
        crate::repl::acks::AckOptions {
            sync: self.replica_acks == ReplicaAcks::Sync,
            min_insync: self.min_insync_replicas,
            timeout: std::time::Duration::from_millis(self.replica_ack_timeout_ms.max(1)),
        }
    }

    /// What the oplog keeps, in bytes.
    pub fn oplog_options(&self) -> crate::store::oplog::OplogOptions {
        crate::store::oplog::OplogOptions {
            retention_bytes: self.oplog_retention_mb.saturating_mul(1024 * 1024),
            pin_max_bytes: self.oplog_pin_max_mb.saturating_mul(1024 * 1024),
        }
    }

    pub fn limits(&self) -> fjord_common::Limits {
        fjord_common::Limits {
            max_bulk_len: self.max_bulk_len,
            max_array_len: self.max_array_len,
            max_inline_len: self.max_inline_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example must parse, and say what the defaults are.
    #[test]
    fn example_file_parses_with_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/shard.yaml");
        let parsed = ShardConfig::from_file(&path).unwrap();
        let d = ShardConfig::default();
        assert_eq!(parsed.fsync, d.fsync);
        assert_eq!(parsed.cache_mb, d.cache_mb);
        assert_eq!(parsed.row_cache_mb, d.row_cache_mb);
        assert_eq!(parsed.member_cache_mb, d.member_cache_mb);
        assert_eq!(parsed.memtable_mb, d.memtable_mb);
        assert_eq!(parsed.max_journal_mb, d.max_journal_mb);
        assert_eq!(parsed.key_filter_mb, d.key_filter_mb);
        assert_eq!(parsed.max_bulk_len, d.max_bulk_len);
        assert_eq!(parsed.client_memory_budget, d.client_memory_budget);
        assert_eq!(parsed.writer_queue, d.writer_queue);
        assert_eq!(parsed.oplog_retention_mb, d.oplog_retention_mb);
        assert_eq!(parsed.oplog_pin_max_mb, d.oplog_pin_max_mb);
        assert_eq!(parsed.replica_of, d.replica_of);
        assert_eq!(parsed.replica_acks, d.replica_acks);
        assert_eq!(parsed.min_insync_replicas, d.min_insync_replicas);
        assert_eq!(parsed.replica_ack_timeout_ms, d.replica_ack_timeout_ms);
        assert_eq!(parsed.admin, d.admin);
        assert_eq!(parsed.record_metrics, d.record_metrics);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_yaml::from_str::<ShardConfig>("fsync: always\nbogus: 1\n").is_err());
    }
}
