//! fjord-shard's parts as a library, so that the binary, the fuzz targets and benchmarks share
//! them: the store ([`store`]), the commands ([`cmd`]), connections ([`server`]), replication ([`repl`]), slot moves ([`migrate`]), metrics ([`metrics`])
//! and settings ([`config`]).

pub mod cmd;
pub mod config;
pub mod fuzzing;
pub mod metrics;
pub mod migrate;
pub mod repl;
pub mod server;
pub mod store;
pub mod types;
