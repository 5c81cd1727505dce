//! Runs commands against a real store without sockets, for the `commands` fuzz target and
//! the shard's own tests.
//!
//! The same path as a connection takes — resolve, execute, hand writes to the writer — minus
//! the network, so that a fuzzer can explore argument parsing and execution quickly.

use crate::cmd::{self, Ctx, Outcome};
use crate::config::ShardConfig;
use crate::repl::Replication;
use crate::server::Server;
use crate::store::writer::Writer;
use crate::store::{Store, StoreOptions};
use bytes::{Bytes, BytesMut};
use fjord_common::client::ClientState;
use fjord_common::command::resolve;
use fjord_common::{Proto, Reply};
use std::sync::{Arc, Mutex};

/// A store in a temporary directory with one connection's state.
pub struct Harness {
    server: Arc<Server>,
    conn: Mutex<ClientState>,
    _dir: std::path::PathBuf,
}

impl Harness {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("fjord-fuzz-{}", std::process::id()));
        Self::open(ShardConfig {
            data_dir: dir,
            ..ShardConfig::default()
        })
    }

    /// A store in `config.data_dir` (created if missing), with small caches.
    pub fn open(config: ShardConfig) -> Self {
        let dir = config.data_dir.clone();
        let store = Arc::new(
            Store::open(
                &dir,
                StoreOptions {
                    fsync: config.fsync,
                    cache_bytes: 8 << 20,
                    row_cache_bytes: 8 << 20,
                    member_cache_bytes: 8 << 20,
                    memtable_bytes: 8 << 20,
                    journal_bytes: 128 << 20,
                    key_filter_bytes: 1 << 20,
                    worker_threads: 1,
                    oplog: config.oplog_options(),
                },
            )
            .expect("opening the harness store"),
        );
        let repl = Arc::new(Replication::new(None, config.ack_options(), 0, 0));
        let (writer, _thread) = Writer::start(Arc::clone(&store), repl.clone(), 64);
        let addr = "127.0.0.1:0".parse().expect("address");
        let server = Arc::new(Server::new(store, writer, repl, config, addr));
        let info = server.clients.register(addr, addr);
        let conn = ClientState::new(&*server, info, false);
        Self {
            server,
            conn: Mutex::new(conn),
            _dir: dir,
        }
    }

    /// The server the commands run on, for tests that look at its store.
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// The connection commands run on, for tests that execute a command in steps.
    pub fn conn(&self) -> std::sync::MutexGuard<'_, ClientState> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Executes one command as far as a connection does before the writer: its reply, or
    /// the write it hands the writer.
    pub fn outcome(&self, args: &[Bytes]) -> Outcome {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let resolved = match resolve(args) {
            Ok(r) => r,
            Err(e) => return Reply::error(e).into(),
        };
        cmd::execute(
            &mut Ctx {
                server: &self.server,
                conn: &mut conn,
            },
            resolved,
            args,
        )
    }

    /// Runs the writes `lines` (words split at spaces) as one group of the writer, as a busy
    /// shard groups many clients' writes; their replies, in order.
    pub fn run_group(&self, lines: &[String]) -> Vec<Reply> {
        let ops = lines
            .iter()
            .map(|line| match self.outcome(&words(line)) {
                Outcome::Write(op) => op,
                _ => panic!("{line} is not a write"),
            })
            .collect();
        let writer = self.server.writer.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime
            .block_on(async { writer.submit(ops).await.await })
            .expect("the writer answers")
    }

    /// Runs one command (words split at spaces) and returns its reply.
    pub fn run_line(&self, line: &str) -> Reply {
        self.run(&words(line))
    }

    /// Runs one command and returns its reply.
    pub fn run(&self, args: &[Bytes]) -> Reply {
        let reply = match self.outcome(args) {
            Outcome::Reply(r) | Outcome::Close(r) => r,
            Outcome::Write(op) => self.server.writer.submit_blocking(op).unwrap_or(Reply::Nil),
            Outcome::Flush { slots, .. } => self
                .server
                .writer
                .flush_blocking(slots)
                .unwrap_or(Reply::Nil),
            Outcome::Blocking(f) => f(),
            // Without a runtime WAIT answers at once, so no task is ever made here.
            Outcome::Later(task) => {
                task.abort();
                Reply::Nil
            }
            // A connection would become a replication link here.
            Outcome::Sync(_) => Reply::ok(),
            // The harness has no process to stop.
            Outcome::Shutdown { .. } => Reply::ok(),
        };
        // Encoding must not panic either, in both protocols.
        let mut out = BytesMut::new();
        reply.encode(Proto::Resp2, &mut out);
        reply.encode(Proto::Resp3, &mut out);
        reply
    }
}

/// A command line's words, split at spaces.
pub fn words(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

/// A reply as a RESP2 client reads it (replies of one shape can be built two ways).
pub fn resp2(reply: &Reply) -> BytesMut {
    let mut out = BytesMut::new();
    reply.encode(Proto::Resp2, &mut out);
    out
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}
