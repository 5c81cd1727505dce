//! What both fjord binaries share.
//!
//! The proxy routes by the same command table the shard executes by, hashes keys the same way
//! the shard stores them, and speaks the same RESP dialect with the same limits. Keeping these
//! in one crate is what makes "the proxy and the shard agree" a compile-time fact rather than a
//! convention.

pub mod admin;
pub mod algebra;
pub mod budget;
pub mod client;
pub mod command;
pub mod error;
pub mod etcd;
pub mod files;
pub mod geo;
pub mod glob;
pub mod hll;
pub mod info;
pub mod metrics;
pub mod number;
pub mod ownership;
pub mod process;
pub mod repl;
pub mod resp;
pub mod slot;
pub mod slotset;
pub mod sort;
pub mod topology;
pub mod tunables;
mod yaml_lines;

pub use command::{CommandId, CommandSpec};
pub use resp::{Bulks, Limits, Proto, Reply, ReplyDecoder, RequestDecoder, Shape};
pub use slot::{slot_of, SLOT_COUNT};

/// A command line split at single spaces into its arguments (for tests: real arguments may
/// hold spaces).
pub fn split_args(line: &str) -> Vec<bytes::Bytes> {
    line.split(' ')
        .map(|w| bytes::Bytes::from(w.to_string()))
        .collect()
}
