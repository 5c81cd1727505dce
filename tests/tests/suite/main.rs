//! Every end-to-end test in one binary: each file here is one part of the product, tested
//! against the real binaries. One binary links once (with LTO) instead of once per file, which
//! saved minutes of the test command's build on 2 cores.
//!
//! `cargo test --release -p fjord-tests --test suite failover::` runs one file's tests.

mod cluster_client;
mod collections;
mod differential;
mod durability;
mod etcd;
mod failover;
mod format;
mod ioredis;
mod launch;
mod load;
mod metrics;
mod migration;
mod ownership;
mod proxy;
mod replica_reads;
mod replication;
