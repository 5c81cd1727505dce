//! The topology in force: loaded from the cluster file or etcd, swapped atomically on reload.
//!
//! A [`Routing`] pairs a validated topology with the backends of its shards. Requests load the
//! current one once (`ArcSwap::load_full`) and finish on it even if a reload swaps in another.
//! A reload reads the whole document anew (editors truncate, then write), validates it, keeps
//! the backends of shards whose address did not change and starts the others; an invalid one
//! is refused with a log line per problem and the old routing stays. Reloads come from the
//! file changing (the folder is watched and events debounced) or etcd's key changing (it is
//! watched), SIGHUP, and the admin endpoint.
//!
//! With etcd ([`StoreSource`]) the proxy's own part of the document (its listeners, admin
//! address and settings) comes from the local cluster file, the rest from etcd. While etcd
//! cannot be read the last topology stays in force: the proxy keeps serving and says so (a
//! log line, `fjord_proxy_topology_store_up`, `GET /topology`).

use crate::backend::{BackendOptions, ShardBackend};
use crate::metrics::ProxyMetrics;
use arc_swap::ArcSwap;
use fjord_common::etcd::{Etcd, EtcdUrl, Followed};
use fjord_common::topology::{Problem, ProxyFields, Topology, TopologyError};
use serde_yaml::Value;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    source: Source,
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
        source: Source,
        mut topology: Topology,
        bound: Vec<Bound>,
        options: BackendOptions,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        apply_bound(&mut topology, &bound);
        metrics.topology_version.set(topology.version as i64);
        if let Source::Store(store) = &source {
            metrics.store_up.set(i64::from(store.down().is_none()));
        }
        let (routing, built) = routing(topology, None, &options);
        start(&built, &metrics);
        Self {
            source,
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

    /// Where the topology comes from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Reads the document anew and swaps it in if valid. Must run inside the runtime (it may
    /// start backends).
    pub async fn reload(&self) -> Result<Reloaded, TopologyError> {
        let started = Instant::now();
        let next = match &self.source {
            Source::File(path) => Topology::load(path),
            Source::Store(store) => store.read().await,
        };
        self.apply(next, started)
    }

    /// Swaps `next` in if it is valid (`Ok`). `started` is when reading the document began
    /// (for etcd's watch, when its value arrived): the reload's time, parsing included, is
    /// logged and in `fjord_proxy_topology_reload_seconds`.
    fn apply(
        &self,
        next: Result<Topology, TopologyError>,
        started: Instant,
    ) -> Result<Reloaded, TopologyError> {
        let _one_at_a_time = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = match next {
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
        let (routing, built) = routing(next, Some(&old), &self.options);
        let routed: HashSet<*const ShardBackend> = routing.all().map(Arc::as_ptr).collect();
        let retired: Vec<Arc<ShardBackend>> = old
            .all()
            .filter(|b| !routed.contains(&Arc::as_ptr(b)))
            .cloned()
            .collect();
        let ids: HashSet<&str> = routing.all().map(|b| b.id.as_str()).collect();
        let gone: Vec<String> = retired
            .iter()
            .filter(|b| !ids.contains(b.id.as_str()))
            .map(|b| b.id.clone())
            .collect();
        drop(ids);
        self.current.store(Arc::new(routing));
        let in_force = started.elapsed();
        self.metrics.reload_seconds.observe(in_force.as_secs_f64());
        // After the swap: requests for the new shards have been queueing in their backends
        // meanwhile; a request that loads the routing from now on never picks the retired.
        start(&built, &self.metrics);
        for b in retired {
            tracing::info!(shard = %b.id, addr = %b.addr, "no longer routed to: failing its requests in flight");
            b.retire();
        }
        for id in gone {
            self.metrics.forget_shard(&id);
        }
        self.metrics.reloads_ok.inc();
        let elapsed = started.elapsed();
        tracing::info!(
            ?outcome,
            ?in_force,
            ?elapsed,
            new_backends = built.len(),
            "topology reloaded"
        );
        Ok(outcome)
    }

    /// Reloads whenever the topology changes: for the file, when its folder changes and
    /// things settle for `debounce`; for etcd, at each change of its key.
    pub fn watch(self: &Arc<Self>, debounce: Duration) -> anyhow::Result<()> {
        let path = match &self.source {
            Source::File(path) => path,
            Source::Store(_) => {
                self.follow_store();
                return Ok(());
            }
        };
        use notify::Watcher;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let file_name = path.file_name().map(|n| n.to_os_string());
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
                let _ = handle.reload().await;
            }
        });
        Ok(())
    }

    /// Follows etcd's topology key: each value is swapped in (and kept in the cache file);
    /// while etcd cannot be read, the last one stays in force and the store shows as down.
    fn follow_store(self: &Arc<Self>) {
        let Source::Store(store) = &self.source else {
            return;
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        store.etcd.follow(store.etcd.url.topology_key(), tx);
        let handle = Arc::clone(self);
        tokio::spawn(async move {
            let Source::Store(store) = &handle.source else {
                return;
            };
            while let Some(event) = rx.recv().await {
                match event {
                    Followed::Value(v) => {
                        store.set_status(None, &handle.metrics);
                        let arrived = Instant::now();
                        let next = store.topology(&v.value);
                        if handle.apply(next, arrived).is_ok() {
                            store.keep(&v.value);
                        }
                    }
                    Followed::Down(why) => store.set_status(Some(why), &handle.metrics),
                }
            }
        });
    }
}

/// Where the topology comes from.
pub enum Source {
    File(PathBuf),
    Store(Box<StoreSource>),
}

/// The topology in etcd, completed by the local cluster file's own part.
pub struct StoreSource {
    etcd: Etcd,
    /// The local cluster file's own fields, which replace the stored ones.
    own: ProxyFields,
    /// The local file's folder: relative paths in the stored document resolve against it.
    base: PathBuf,
    /// Where the last topology read from etcd is kept, to start from while etcd is down.
    cache: Option<PathBuf>,
    /// Why etcd cannot be read, while it cannot.
    down: Mutex<Option<String>>,
}

impl StoreSource {
    /// Connects to etcd and reads the topology; if etcd cannot be read, starts from the cache
    /// file when there is one. `local` is the proxy's own cluster file.
    pub fn open(
        url: &EtcdUrl,
        local: &Path,
        cache: Option<PathBuf>,
    ) -> anyhow::Result<(StoreSource, Topology)> {
        use anyhow::Context;
        let text = std::fs::read_to_string(local)
            .with_context(|| format!("reading {}", local.display()))?;
        let local_value: Value =
            serde_yaml::from_str(&text).with_context(|| format!("reading {}", local.display()))?;
        let ignored: Vec<&str> = local_value
            .as_mapping()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(Value::as_str)
            .filter(|k| !ProxyFields::NAMES.contains(k))
            .collect();
        if !ignored.is_empty() {
            tracing::info!(file = %local.display(), ?ignored, store = %url, "the topology comes from the store: these fields of the local file are ignored");
        }
        let own: ProxyFields = serde_yaml::from_value(local_value)
            .with_context(|| format!("reading {}", local.display()))?;
        let etcd = Etcd::connect(url).map_err(anyhow::Error::msg)?;
        let source = StoreSource {
            etcd,
            own,
            base: local.parent().map(Path::to_path_buf).unwrap_or_default(),
            cache,
            down: Mutex::new(None),
        };
        let key = url.topology_key();
        let read = source.etcd.block(source.etcd.get(key.clone()));
        let stored = match read {
            Ok(Some(v)) => v.value,
            Ok(None) => anyhow::bail!(
                "there is no topology at {url} ({key}): store one with `fjord-admin --store {url} import FILE`"
            ),
            Err(e) => match &source.cache {
                Some(path) if path.exists() => {
                    tracing::warn!(cache = %path.display(), "{e}; starting from the cached copy, and following etcd once it answers");
                    *source.down.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?
                }
                _ => anyhow::bail!("{e} (give --store-cache FILE to start from the last topology read while etcd is down)"),
            },
        };
        let topology = source.topology(&stored)?;
        source.keep(&stored);
        Ok((source, topology))
    }

    /// Reads the stored topology now.
    async fn read(&self) -> Result<Topology, TopologyError> {
        match self.etcd.get(self.etcd.url.topology_key()).await {
            Ok(Some(v)) => self.topology(&v.value),
            Ok(None) => Err(self.problem("there is no topology stored".into())),
            Err(e) => Err(self.problem(e)),
        }
    }

    /// The topology a stored document makes with the local file's own part.
    fn topology(&self, stored: &str) -> Result<Topology, TopologyError> {
        // Problems' lines refer to the stored document, which `export` prints.
        Topology::parse_with(stored, &self.own, Some(&self.base)).map_err(|problems| {
            TopologyError {
                file: self.etcd.url.topology_key(),
                problems,
            }
        })
    }

    fn problem(&self, message: String) -> TopologyError {
        TopologyError {
            file: format!("{}/topology", self.etcd.url),
            problems: vec![Problem {
                path: String::new(),
                line: None,
                message,
            }],
        }
    }

    /// Keeps `stored` in the cache file, if there is one.
    fn keep(&self, stored: &str) {
        if let Some(path) = &self.cache {
            if let Err(e) = fjord_common::files::write_replacing(path, stored) {
                tracing::warn!(cache = %path.display(), error = %e, "cannot keep the topology in the cache file");
            }
        }
    }

    fn set_status(&self, down: Option<String>, metrics: &ProxyMetrics) {
        metrics.store_up.set(i64::from(down.is_none()));
        let mut slot = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_some() && slot.is_none() {
            tracing::warn!(store = %self.etcd.url, "the topology store cannot be read; the last topology stays in force");
        }
        *slot = down;
    }

    pub fn url(&self) -> &EtcdUrl {
        &self.etcd.url
    }

    /// Why etcd cannot be read, while it cannot.
    pub fn down(&self) -> Option<String> {
        self.down.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a cluster listener and its replica listener bound.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub master: SocketAddr,
    pub replica: Option<SocketAddr>,
}

/// The backends for `topology`: those of `old` that reach the same shard at the same
/// address, new ones for the rest, built but not started (also returned: [`start`]).
fn routing(
    topology: Topology,
    old: Option<&Routing>,
    options: &BackendOptions,
) -> (Routing, Vec<Arc<ShardBackend>>) {
    // By shard and address: a lookup per backend, since topologies have 1,000s of shards.
    let reusable: HashMap<(&str, &str), &Arc<ShardBackend>> = old
        .into_iter()
        .flat_map(Routing::all)
        .map(|b| ((b.id.as_str(), b.addr.as_str()), b))
        .collect();
    let mut built = Vec::new();
    let mut backend =
        |id: &str, addr: &str, options: &BackendOptions| match reusable.get(&(id, addr)) {
            Some(b) => Arc::clone(b),
            None => {
                let b = ShardBackend::build(id, addr, options);
                built.push(Arc::clone(&b));
                b
            }
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
    let routing = Routing {
        topology,
        backends,
        replica_backends,
        replicas_of,
    };
    (routing, built)
}

/// Starts backends [`routing`] built, each with its metric series.
fn start(built: &[Arc<ShardBackend>], metrics: &ProxyMetrics) {
    for b in built {
        b.start(metrics.backend(&b.id));
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
