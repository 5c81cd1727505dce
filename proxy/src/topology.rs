//! The topology in force: loaded from the cluster file, swapped atomically on reload.
//!
//! A [`Routing`] pairs a validated topology with the backends of its shards. Requests load the
//! current one once (`ArcSwap::load_full`) and finish on it even if a reload swaps in another.
//! A reload re-reads the whole file (editors truncate, then write), validates it, keeps the
//! backends of shards whose address did not change and starts the others; an invalid file is
//! refused with a log line per problem and the old routing stays. Reloads come from the file
//! changing (the folder is watched and events debounced), SIGHUP, and the admin endpoint.

use crate::backend::{BackendOptions, ShardBackend};
use crate::metrics::ProxyMetrics;
use arc_swap::ArcSwap;
use fjord_common::topology::{node_id, Topology, TopologyError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A topology with a backend for each of its shards (same order as `topology.shards`).
pub struct Routing {
    pub topology: Topology,
    pub backends: Vec<Arc<ShardBackend>>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The file routes and advertises as before (its version may differ).
    Unchanged {
        version: u64,
    },
    Changed {
        from: u64,
        to: u64,
    },
}

/// The current routing and how to replace it.
pub struct TopologyHandle {
    path: PathBuf,
    current: ArcSwap<Routing>,
    /// Addresses the cluster listeners actually bound (port 0 resolved), by index.
    bound: Vec<SocketAddr>,
    options: BackendOptions,
    reload_lock: Mutex<()>,
    metrics: Arc<ProxyMetrics>,
}

impl TopologyHandle {
    /// Starts backends for `topology`, whose listeners were bound at `bound`.
    pub fn new(
        path: &Path,
        mut topology: Topology,
        bound: Vec<SocketAddr>,
        options: BackendOptions,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        apply_bound(&mut topology, &bound);
        metrics.topology_version.set(topology.version as i64);
        let backends = topology
            .shards
            .iter()
            .map(|s| ShardBackend::start(&s.id, &s.addr, &options, metrics.backend(&s.id)))
            .collect();
        Self {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(Routing { topology, backends }),
            bound,
            options,
            reload_lock: Mutex::new(()),
            metrics,
        }
    }

    /// The routing in force.
    pub fn load(&self) -> Arc<Routing> {
        self.current.load_full()
    }

    /// Re-reads the file and swaps it in if valid. Must run inside the runtime (it may start
    /// backends).
    pub fn reload(&self) -> Result<Reloaded, TopologyError> {
        let _one_at_a_time = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = match Topology::load(&self.path) {
            Ok(t) => t,
            Err(e) => {
                self.metrics.reloads_failed.inc();
                tracing::error!("topology reload refused, the old topology stays in force: {e}");
                return Err(e);
            }
        };
        apply_bound(&mut next, &self.bound);
        let old = self.load();
        let prev = &old.topology;
        let listeners_changed = next.nodes.len() != prev.nodes.len()
            || next
                .nodes
                .iter()
                .zip(&prev.nodes)
                .any(|(a, b)| a.listen != b.listen)
            || next.standalone != prev.standalone
            || next.admin != prev.admin;
        if listeners_changed {
            tracing::warn!("the cluster file changes listen, standalone or admin addresses; they take effect after a restart");
        }
        if next.settings != prev.settings {
            tracing::warn!("the cluster file changes settings; they take effect after a restart");
        }
        if next.nodes.len() != prev.nodes.len() {
            // Node slots are divided among the listeners that exist; keep advertising those.
            next.nodes = prev.nodes.clone();
        }
        next.settings = prev.settings.clone();
        let outcome = if next.same_layout(prev) {
            Reloaded::Unchanged {
                version: next.version,
            }
        } else {
            Reloaded::Changed {
                from: prev.version,
                to: next.version,
            }
        };
        let backends: Vec<Arc<ShardBackend>> = next
            .shards
            .iter()
            .map(|s| {
                old.backends
                    .iter()
                    .find(|b| b.addr == s.addr && b.id == s.id)
                    .cloned()
                    .unwrap_or_else(|| {
                        let metrics = self.metrics.backend(&s.id);
                        ShardBackend::start(&s.id, &s.addr, &self.options, metrics)
                    })
            })
            .collect();
        for gone in prev
            .shards
            .iter()
            .filter(|p| next.shards.iter().all(|n| n.id != p.id))
        {
            self.metrics.forget_shard(&gone.id);
        }
        self.metrics.topology_version.set(next.version as i64);
        let retired: Vec<Arc<ShardBackend>> = old
            .backends
            .iter()
            .filter(|b| !backends.iter().any(|n| Arc::ptr_eq(n, b)))
            .cloned()
            .collect();
        self.current.store(Arc::new(Routing {
            topology: next,
            backends,
        }));
        // After the swap: a request that loads the routing from now on never picks these.
        for b in retired {
            tracing::info!(shard = %b.id, addr = %b.addr, "no longer routed to: failing its requests in flight");
            b.retire();
        }
        self.metrics.reloads_ok.inc();
        tracing::info!(?outcome, "topology reloaded");
        Ok(outcome)
    }

    /// Reloads whenever the file's folder changes, after things settle for `debounce`.
    pub fn watch(self: &Arc<Self>, debounce: Duration) -> anyhow::Result<()> {
        use notify::Watcher;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let file_name = self.path.file_name().map(|n| n.to_os_string());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    let ours = event
                        .paths
                        .iter()
                        .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
                    if ours && !event.kind.is_access() {
                        let _ = tx.send(());
                    }
                }
            })?;
        watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
        let handle = Arc::clone(self);
        tokio::spawn(async move {
            let _watcher = watcher;
            while rx.recv().await.is_some() {
                // Editors write in several steps: wait until the events stop.
                loop {
                    match tokio::time::timeout(debounce, rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                tracing::info!("cluster file changed; reloading");
                let _ = handle.reload();
            }
        });
        Ok(())
    }
}

/// Listeners configured with port 0 (tests) and no announce address advertise the port they
/// actually bound.
fn apply_bound(topology: &mut Topology, bound: &[SocketAddr]) {
    for (node, addr) in topology.nodes.iter_mut().zip(bound) {
        if node.port == 0 {
            node.host = addr.ip().to_string();
            node.port = addr.port();
            node.id = node_id(&node.host, node.port);
        }
    }
}
