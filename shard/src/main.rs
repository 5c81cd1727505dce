//! `fjord-shard`: a single-node RESP server storing its data in fjall.
//!
//! It knows nothing of other shards: the proxy routes slots to it. Started with only
//! `--listen`, `--data-dir` and `--fsync` it opens nothing but that listener and that
//! directory; `--admin` adds the metrics and health endpoints.

/// Many small allocations per request (arguments, replies, futures): mimalloc handles them
/// markedly faster than the system allocator under several threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use fjord_common::process;
use fjord_shard::config::{FsyncMode, ShardConfig};
use fjord_shard::{server, store};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::{Store, StoreOptions};

#[derive(Parser, Debug)]
#[command(
    name = "fjord-shard",
    version,
    about = "fjord's storage node: a RESP server over fjall"
)]
struct Cli {
    /// YAML settings file (see config/shard.yaml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port and prints it.
    #[arg(long)]
    listen: Option<String>,
    /// Data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// When acknowledged writes reach the disk.
    #[arg(long, value_enum)]
    fsync: Option<FsyncMode>,
    /// Password clients must AUTH with.
    #[arg(long)]
    requirepass: Option<String>,
    /// Block cache size in MiB.
    #[arg(long)]
    cache_mb: Option<u64>,
    /// Row cache size in MiB (decoded hot keys); 0 disables it.
    #[arg(long)]
    row_cache_mb: Option<u64>,
    /// Member cache size in MiB (the writer's copy of recent collection members); 0 = off.
    #[arg(long)]
    member_cache_mb: Option<u64>,
    /// Memtable size in MiB before it is flushed to a table.
    #[arg(long)]
    memtable_mb: Option<u64>,
    /// MiB of journal past which the memtables holding it back are flushed.
    #[arg(long)]
    max_journal_mb: Option<u64>,
    /// Most MiB the key filter (present keys, for lookups of absent ones) may take; 0 = off.
    #[arg(long)]
    key_filter_mb: Option<u64>,
    /// Threads serving connections.
    #[arg(long)]
    io_threads: Option<usize>,
    /// fjall background threads.
    #[arg(long)]
    storage_threads: Option<usize>,
    /// Most connections at once.
    #[arg(long)]
    max_clients: Option<usize>,
    /// Follow this primary (HOST:PORT) as a replica; remembered by the store.
    #[arg(long)]
    replica_of: Option<String>,
    /// Whether a primary's replies wait for its in-sync replicas: sync or async.
    #[arg(long)]
    replica_acks: Option<fjord_shard::config::ReplicaAcks>,
    /// In-sync replicas client writes need (NOREPLICAS below).
    #[arg(long)]
    min_insync_replicas: Option<usize>,
    /// How late an acknowledgement may be before its replica leaves the in-sync set.
    #[arg(long)]
    replica_ack_timeout_ms: Option<u64>,
    /// MiB of oplog kept for replicas that reconnect.
    #[arg(long)]
    oplog_retention_mb: Option<u64>,
    /// Most MiB a replica or sync may fall behind the oplog's end before it loses its place.
    #[arg(long)]
    oplog_pin_max_mb: Option<u64>,
    /// Admin HTTP address (metrics, health); none unless given.
    #[arg(long)]
    admin: Option<String>,
    /// Record per-command metrics (true/false).
    #[arg(long)]
    record_metrics: Option<bool>,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<ShardConfig> {
        let mut c = match &self.config {
            Some(path) => ShardConfig::from_file(path)?,
            None => ShardConfig::default(),
        };
        macro_rules! apply {
            ($($field:ident),*) => { $(if let Some(v) = self.$field { c.$field = v; })* };
        }
        apply!(
            listen,
            data_dir,
            fsync,
            cache_mb,
            row_cache_mb,
            member_cache_mb,
            memtable_mb,
            max_journal_mb,
            key_filter_mb,
            io_threads,
            storage_threads,
            max_clients,
            oplog_retention_mb,
            oplog_pin_max_mb,
            replica_acks,
            min_insync_replicas,
            replica_ack_timeout_ms,
            record_metrics
        );
        if self.requirepass.is_some() {
            c.requirepass = self.requirepass;
        }
        if self.replica_of.is_some() {
            c.replica_of = self.replica_of;
        }
        if self.admin.is_some() {
            c.admin = self.admin;
        }
        Ok(c)
    }
}

fn main() {
    process::init_logging();
    process::disable_transparent_huge_pages();
    if let Err(e) = run(Cli::parse()) {
        tracing::error!("{e:#}");
        eprintln!("fjord-shard: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.into_config()?;
    process::raise_fd_limit();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = Arc::new(
        Store::open(
            &config.data_dir,
            StoreOptions {
                fsync: config.fsync,
                cache_bytes: config.cache_mb.saturating_mul(1024 * 1024),
                row_cache_bytes: config.row_cache_mb.saturating_mul(1024 * 1024),
                member_cache_bytes: config.member_cache_mb.saturating_mul(1024 * 1024),
                memtable_bytes: config.memtable_mb.max(1).saturating_mul(1024 * 1024),
                journal_bytes: config.max_journal_mb.max(1).saturating_mul(1024 * 1024),
                worker_threads: config.storage_threads,
                key_filter_bytes: config.key_filter_mb.saturating_mul(1024 * 1024),
                oplog: config.oplog_options(),
            },
        )
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?,
    );
    let managed = store
        .controller_term()
        .context("reading the controller term")?
        > 0;
    match &config.replica_of {
        // A controller has set this shard's role since (it may be a primary now).
        Some(primary) if managed => {
            tracing::info!(%primary, "--replica-of ignored: a controller manages this shard's role")
        }
        Some(primary) => store
            .set_replica_of(Some(primary))
            .context("recording the primary to follow")?,
        None => {}
    }
    tracing::info!(
        data_dir = %config.data_dir.display(),
        replica_of = ?store.replica_of().ok().flatten(),
        keys = store.total_keys(),
        fsync = config.fsync.name(),
        "store open"
    );
    let repl = Arc::new(fjord_shard::repl::Replication::new(
        store.replica_of().context("reading the replication role")?,
        config.ack_options(),
        store
            .controller_term()
            .context("reading the controller term")?,
        store
            .controller_leader()
            .context("reading the leadership term")?,
    ));
    if repl.control.is_managed() {
        tracing::info!(
            term = repl.control.term(),
            "managed by a controller: fenced until it confirms this shard's role"
        );
    }
    let (writer, writer_thread) =
        store::writer::Writer::start(Arc::clone(&store), repl.clone(), config.writer_queue);
    let stop = Arc::new(AtomicBool::new(false));
    let expiry_thread = store::expiry::start(Arc::clone(&store), writer.clone(), Arc::clone(&stop));
    let garbage_thread =
        store::garbage::start(Arc::clone(&store), writer.clone(), Arc::clone(&stop));
    let trim_thread = store::oplog::start_trimming(Arc::clone(&store), Arc::clone(&stop));
    let sync_thread = (config.fsync == FsyncMode::Everysec)
        .then(|| start_everysec(Arc::clone(&store), Arc::clone(&stop)));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_threads.max(1))
        .max_blocking_threads(4)
        .enable_all()
        .build()?;
    let save = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let admin = match &config.admin {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding the admin address {a}"))?,
            ),
            None => None,
        };
        let server = Arc::new(server::Server::new(
            Arc::clone(&store),
            writer,
            Arc::clone(&repl),
            config,
            addr,
        ));
        let (tx, rx) = tokio::sync::watch::channel(false);
        if let Some(l) = admin {
            let admin_addr = l.local_addr()?;
            println!("fjord-shard admin on {admin_addr}");
            tracing::info!(%admin_addr, "admin endpoints (metrics, health) listening");
            let app = fjord_common::admin::router(Arc::clone(&server));
            tokio::spawn(fjord_common::admin::serve(l, app, rx.clone()));
        }
        // Scripts and tests wait for this exact line to learn the port.
        println!("fjord-shard listening on {addr}");
        tracing::info!(%addr, "listening");
        tokio::spawn(fjord_shard::repl::replica::run(
            Arc::clone(&server),
            rx.clone(),
        ));
        tokio::spawn(fjord_shard::repl::acks::watch_lateness(
            Arc::clone(&repl),
            rx.clone(),
        ));
        let serving = tokio::spawn(server::serve(listener, Arc::clone(&server), rx));
        tokio::select! {
            _ = process::shutdown_signal() => {}
            _ = server.shutdown_requested() => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
        let _ = serving.await;
        anyhow::Ok(server.save_on_shutdown())
    })?;
    // Connection tasks hold writer handles; dropping the runtime ends them, and the writer
    // then drains its queue and syncs.
    runtime.shutdown_timeout(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let _ = expiry_thread.join();
    let _ = garbage_thread.join();
    let _ = trim_thread.join();
    let _ = writer_thread.join();
    if let Some(t) = sync_thread {
        let _ = t.join();
    }
    // What is left in memtables is safe in the journal already; flushed, the restart has
    // nothing to replay.
    let flushing = std::time::Instant::now();
    match save.then(|| store.flush_memtables()) {
        Some(Ok(())) => tracing::info!(elapsed = ?flushing.elapsed(), "memtables flushed"),
        Some(Err(e)) => tracing::warn!("flushing memtables at shutdown: {e}"),
        None => tracing::info!("memtables left to the journal (SHUTDOWN NOSAVE)"),
    }
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

/// `fsync: everysec`: fjall has no periodic sync of its own.
fn start_everysec(store: Arc<Store>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("fjord-everysec".into())
        .spawn(move || {
            let mut last_writes = u64::MAX;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let since = store.stats.last_fsync_unix.load(Ordering::Relaxed);
                let writes = store.stats.writes.get();
                if writes != last_writes && store::now_ms() / 1000 > since {
                    if let Err(e) = store.sync() {
                        tracing::error!(error = %e, "periodic fsync failed");
                    }
                    last_writes = writes;
                }
            }
        })
        .expect("spawning the everysec thread")
}
