//! `fjord-proxy`: the cluster-mode front of fjord.
//!
//! Reads the cluster file (or, with `--store etcd://…`, the topology from etcd and the proxy's
//! own part from the file), connects to the shards, opens the cluster listeners (advertised as
//! the masters of a Redis cluster) and the optional standalone listener, and routes every
//! command by its keys' slots. Prints `fjord-proxy listening on <kind> <addr>` per listener and
//! `fjord-proxy ready` once it serves, so scripts and tests can use port 0.

mod admin;
mod backend;
mod batch;
mod cluster;
mod gather;
mod launch;
mod metrics;
mod proxy;
mod router;
mod session;
mod sort;
mod topology;

/// Many small allocations per request (arguments, replies, futures): mimalloc handles them
/// markedly faster than the system allocator under several threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use backend::BackendOptions;
use clap::Parser;
use fjord_common::process;
use fjord_common::topology::Topology;
use metrics::ProxyMetrics;
use proxy::{Listener, Proxy};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use topology::{Bound, Source, StoreSource, TopologyHandle};

#[derive(Parser, Debug)]
#[command(version, about = "fjord's cluster-mode proxy")]
struct Cli {
    /// The cluster file: topology and proxy settings (see config/cluster.yaml). With
    /// --store, only its proxies, standalone, admin and settings are used.
    #[arg(long, default_value = "config/cluster.yaml")]
    config: PathBuf,
    /// Take the topology from etcd and follow it:
    /// `etcd://[USER@]HOST:PORT[,HOST:PORT…]/PREFIX[?ca=PEM&cert=PEM&key=PEM]` (USER's
    /// password in FJORD_ETCD_PASSWORD).
    #[arg(long)]
    store: Option<fjord_common::etcd::EtcdUrl>,
    /// With --store: keep the last topology read here, and start from it if etcd cannot be
    /// read at start.
    #[arg(long, requires = "store")]
    store_cache: Option<PathBuf>,
    /// Development: start the topology's shards that have a data_dir, wait until they
    /// answer, and stop them on exit.
    #[arg(long)]
    launch_shards: bool,
    /// The fjord-shard binary for --launch-shards (default: next to this binary).
    #[arg(long)]
    shard_binary: Option<PathBuf>,
}

fn main() {
    process::init_logging();
    process::disable_transparent_huge_pages();
    if let Err(e) = run(Cli::parse()) {
        tracing::error!("{e:#}");
        eprintln!("fjord-proxy: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (source, topology) = match &cli.store {
        Some(url) => {
            let (store, t) = StoreSource::open(url, &cli.config, cli.store_cache.clone())?;
            (Source::Store(Box::new(store)), t)
        }
        None => (
            Source::File(cli.config.clone()),
            Topology::load(&cli.config)?,
        ),
    };
    process::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(topology.settings.io_threads)
        .thread_name("fjord-proxy")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(cli, source, topology))
}

async fn serve(cli: Cli, source: Source, topology: Topology) -> anyhow::Result<()> {
    let _local_shards = match cli.launch_shards {
        true => {
            let binary = match cli.shard_binary {
                Some(b) => b,
                None => std::env::current_exe()?
                    .parent()
                    .context("locating fjord-shard")?
                    .join("fjord-shard"),
            };
            Some(launch::LocalShards::start(&topology, &binary).await?)
        }
        false => None,
    };

    let mut cluster_listeners = Vec::new();
    let mut replica_listeners = Vec::new();
    for node in &topology.nodes {
        let l = TcpListener::bind(node.endpoint.listen)
            .await
            .with_context(|| format!("binding cluster listener {}", node.endpoint.listen))?;
        cluster_listeners.push(l);
        let replica = match &node.replica {
            Some(r) => Some(
                TcpListener::bind(r.listen)
                    .await
                    .with_context(|| format!("binding replica listener {}", r.listen))?,
            ),
            None => None,
        };
        replica_listeners.push(replica);
    }
    let standalone = match topology.standalone {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding standalone listener {addr}"))?,
        ),
        None => None,
    };
    let admin = match topology.admin {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding admin listener {addr}"))?,
        ),
        None => None,
    };
    let mut bound = Vec::new();
    for (master, replica) in cluster_listeners.iter().zip(&replica_listeners) {
        bound.push(Bound {
            master: master.local_addr()?,
            replica: replica.as_ref().map(|r| r.local_addr()).transpose()?,
        });
    }

    let settings = topology.settings.clone();
    let options = BackendOptions {
        connections: settings.backend_connections,
        connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
        command_timeout: Duration::from_millis(settings.command_timeout_ms),
        max_backoff: Duration::from_millis(settings.reconnect_max_backoff_ms),
        password: settings.shard_password.clone(),
        read_lag_ms: None,
        replica_max_lag_ms: settings.replica_max_lag_ms,
    };
    let metrics = Arc::new(ProxyMetrics::new(settings.record_metrics));
    let handle = Arc::new(TopologyHandle::new(
        source,
        topology,
        bound.clone(),
        options,
        Arc::clone(&metrics),
    ));
    // Short: a failover's publication waits on it. An editor's truncate-then-write, and the
    // controller's write-then-rename, come well within it.
    if let Err(e) = handle.watch(Duration::from_millis(50)) {
        tracing::warn!(error = %e, "cannot watch the cluster file; reload with SIGHUP instead");
    }
    let proxy = Arc::new(Proxy::new(Arc::clone(&handle), settings, metrics));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (i, l) in cluster_listeners.into_iter().enumerate() {
        println!("fjord-proxy listening on cluster {}", bound[i].master);
        let task = session::serve(l, Listener::Cluster(i), Arc::clone(&proxy), stop_rx.clone());
        tasks.push(tokio::spawn(task));
    }
    for (i, l) in replica_listeners.into_iter().enumerate() {
        let Some(l) = l else { continue };
        println!(
            "fjord-proxy listening on replica {} of {}",
            l.local_addr()?,
            bound[i].master
        );
        let task = session::serve(l, Listener::Replica(i), Arc::clone(&proxy), stop_rx.clone());
        tasks.push(tokio::spawn(task));
    }
    if let Some(l) = standalone {
        println!("fjord-proxy listening on standalone {}", l.local_addr()?);
        let task = session::serve(l, Listener::Standalone, Arc::clone(&proxy), stop_rx.clone());
        tasks.push(tokio::spawn(task));
    }
    if let Some(l) = admin {
        println!("fjord-proxy listening on admin {}", l.local_addr()?);
        let task = admin::serve(l, Arc::clone(&proxy), stop_rx.clone());
        tasks.push(tokio::spawn(task));
    }
    proxy.serving.store(true, Ordering::Relaxed);
    println!("fjord-proxy ready");
    tracing::info!(
        version = handle.load().topology.version,
        "fjord-proxy ready"
    );

    let reloader = Arc::clone(&handle);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the topology");
            let _ = reloader.reload().await;
        }
    });

    process::shutdown_signal().await;
    tracing::info!("shutting down");
    proxy.serving.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
