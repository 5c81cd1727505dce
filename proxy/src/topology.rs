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
use fjord_common::topology::{Topology, TopologyError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A topology with a backend for each of its shards (same order as `topology.shards`) and
/// for each of their replicas.
pub struct Routing {
    pub topology: Topology,
    /// The shards' primaries, by shard index.
    pub backends: Vec<Arc<ShardBackend>>,
    /// Every shard's replicas, shard by shard (`replicas_of` says which are whose).
    pub replica_backends: Vec<Arc<ShardBackend>>,
    /// Per shard, the range of `replica_backends` that are its replicas.
    replicas_of: Vec<std::ops::Range<usize>>,
}

impl Routing {
    /// A destination: a shard's primary (`dest < shards`) or a replica's backend after them.
    pub fn backend(&self, dest: usize) -> &Arc<ShardBackend> {
        match dest.checked_sub(self.backends.len()) {
            None => &self.backends[dest],
            Some(i) => &self.replica_backends[i],
        }
    }

    /// The shard whose primary is at `addr`, if this topology has one.
    pub fn primary_at(&self, addr: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.addr == addr)
    }

    /// How many destinations there are ([`Routing::backend`]).
    pub fn destinations(&self) -> usize {
        self.backends.len() + self.replica_backends.len()
    }

    /// The destination of a replica of `shard` that may serve a READONLY read, if one may:
    /// connected, not recently found lagging, and recorded in sync when a controller
    /// manages the shard. `spread` picks among several (a client's id).
    pub fn replica_for(&self, shard: usize, spread: u64) -> Option<usize> {
        let s = &self.topology.shards[shard];
        // Walked twice rather than collected: this runs for every READONLY read.
        let usable = || {
            self.replicas_of[shard]
                .clone()
                .zip(&s.replicas)
                .filter(|(i, r)| {
                    let b = &self.replica_backends[*i];
                    (s.term == 0 || r.in_sync) && b.is_up() && !b.held_off()
                })
                .map(|(i, _)| self.backends.len() + i)
        };
        match usable().count() {
            0 => None,
            n => usable().nth((spread % n as u64) as usize),
        }
    }

    /// Every backend: primaries, then replicas.
    fn all(&self) -> impl Iterator<Item = &Arc<ShardBackend>> {
        self.backends.iter().chain(&self.replica_backends)
    }
}

/// The backend id (logs, errors, metric labels) of a shard's `j`-th replica.
fn replica_id(shard: &str, j: usize) -> String {
    format!("{shard}-replica{}", j + 1)
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
    /// Addresses the cluster listeners and their replica listeners actually bound (port 0
    /// resolved), by index.
    bound: Vec<Bound>,
    options: BackendOptions,
    reload_lock: Mutex<()>,
    metrics: Arc<ProxyMetrics>,
}

impl TopologyHandle {
    /// Starts backends for `topology`, whose listeners were bound at `bound`.
    pub fn new(
        path: &Path,
        mut topology: Topology,
        bound: Vec<Bound>,
        options: BackendOptions,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        apply_bound(&mut topology, &bound);
        metrics.topology_version.set(topology.version as i64);
        let routing = routing(topology, None, &options, &metrics);
        Self {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(routing),
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
            || next.nodes.iter().zip(&prev.nodes).any(|(a, b)| {
                a.endpoint.listen != b.endpoint.listen
                    || a.replica.as_ref().map(|r| r.listen) != b.replica.as_ref().map(|r| r.listen)
            })
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
        for (n, p) in next.nodes.iter_mut().zip(&prev.nodes) {
            // A replica listener comes or goes only with a restart: advertise what is bound.
            if n.replica.is_some() != p.replica.is_some() {
                n.replica = p.replica.clone();
            }
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
        self.metrics.topology_version.set(next.version as i64);
        let routing = routing(next, Some(&old), &self.options, &self.metrics);
        let retired: Vec<Arc<ShardBackend>> = old
            .all()
            .filter(|b| !routing.all().any(|n| Arc::ptr_eq(n, b)))
            .cloned()
            .collect();
        for gone in &retired {
            if routing.all().all(|n| n.id != gone.id) {
                self.metrics.forget_shard(&gone.id);
            }
        }
        self.current.store(Arc::new(routing));
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

/// What a cluster listener and its replica listener bound.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub master: SocketAddr,
    pub replica: Option<SocketAddr>,
}

/// The backends for `topology`: those of `old` that reach the same shard at the same
/// address, new ones for the rest.
fn routing(
    topology: Topology,
    old: Option<&Routing>,
    options: &BackendOptions,
    metrics: &ProxyMetrics,
) -> Routing {
    let backend = |id: &str, addr: &str, options: &BackendOptions| {
        old.and_then(|o| o.all().find(|b| b.addr == addr && b.id == id).cloned())
            .unwrap_or_else(|| ShardBackend::start(id, addr, options, metrics.backend(id)))
    };
    let replica_options = options.for_replica_reads();
    let backends = topology
        .shards
        .iter()
        .map(|s| backend(&s.id, &s.addr, options))
        .collect();
    let mut replica_backends = Vec::new();
    let mut replicas_of = Vec::new();
    for s in &topology.shards {
        let first = replica_backends.len();
        for (j, r) in s.replicas.iter().enumerate() {
            replica_backends.push(backend(&replica_id(&s.id, j), &r.addr, &replica_options));
        }
        replicas_of.push(first..replica_backends.len());
    }
    Routing {
        topology,
        backends,
        replica_backends,
        replicas_of,
    }
}

/// Listeners configured with port 0 (tests) and no announce address advertise the port they
/// actually bound.
fn apply_bound(topology: &mut Topology, bound: &[Bound]) {
    for (node, b) in topology.nodes.iter_mut().zip(bound) {
        node.endpoint.resolve_bound(b.master);
        if let (Some(r), Some(addr)) = (&mut node.replica, b.replica) {
            r.resolve_bound(addr);
        }
    }
}
