//! The topology store: where the controller and `fjord-admin` read the cluster document and
//! publish changes to it. Two backends behind one interface (load, compare-and-swap update,
//! the controllers' shared state, the mover's lease):
//!
//! - **A file** (the default). A write is a compare-and-swap on the document's `version`: the
//!   change is computed on the document as read, then, under an exclusive lock on the sibling
//!   `FILE.lock`, the file is read again; if its version moved (another controller, or an
//!   operator's edit), the change is computed again on the new document. The result replaces
//!   the file by a rename of a synced temporary file, so a proxy never reads half a file and a
//!   crash leaves the old one or the new one.
//! - **etcd** ([`fjord_common::etcd`]): the document is one value; a write is a transaction
//!   that applies only if the value's mod_revision is still the one read (and, for an elected
//!   controller, only while it still holds its leadership key), otherwise the change is
//!   computed again on the new value.
//!
//! Either way the result is validated as a proxy would and gets version+1.
//!
//! The document is edited as YAML values, so that fields this tool does not know (the proxy's
//! settings, comments aside) survive. Comments do not: the default local cluster runs on a
//! copy (`data/cluster.yaml`), never on the committed, documented file.

use anyhow::{anyhow, bail, Context, Result};
use fjord_common::etcd::{Etcd, EtcdUrl, Held};
use fjord_common::files;
use fjord_common::slotset::SlotSet;
use fjord_common::topology::{ReplicaAcks, Topology};
use serde_yaml::{Mapping, Value};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first line of a file this tool wrote.
const HEADER: &str =
    "# Written by fjord-admin. Every field is documented in fjord's config/cluster.yaml.\n";

/// How long a mover's lease outlives its last renewal.
pub const MOVER_LEASE_TTL: Duration = Duration::from_secs(3);

/// A topology store: the cluster file or etcd.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The leadership key of the elected controller this store writes for: with etcd, a
    /// write applies only while it is held, so a deposed leader's writes are refused.
    held: Option<Held>,
}

#[derive(Clone)]
enum Backend {
    File(PathBuf),
    Etcd(Etcd),
}

/// The document as read: its YAML, and what it means.
#[derive(Clone, Debug)]
pub struct Doc {
    pub value: Value,
    pub topology: Topology,
}

impl Doc {
    pub fn version(&self) -> u64 {
        self.topology.version
    }
}

/// What a change did: `Skip` leaves the document as it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Write,
    Skip,
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::File(path) => write!(f, "{}", path.display()),
            Backend::Etcd(etcd) => write!(f, "{}", etcd.url),
        }
    }
}

impl Store {
    pub fn file(path: &Path) -> Self {
        Self {
            backend: Backend::File(path.to_path_buf()),
            held: None,
        }
    }

    pub fn etcd(url: &EtcdUrl) -> Result<Self> {
        Ok(Self {
            backend: Backend::Etcd(Etcd::connect(url).map_err(|e| anyhow!(e))?),
            held: None,
        })
    }

    /// This store, writing only while `held` (an elected controller's leadership key).
    pub fn holding(&self, held: Held) -> Self {
        Self {
            backend: self.backend.clone(),
            held: Some(held),
        }
    }

    /// The leadership term of the elected controller writing through this store: its
    /// leadership key's create revision, which each election makes higher.
    pub fn leader_term(&self) -> Option<u64> {
        self.held
            .as_ref()
            .map(|h| u64::try_from(h.create_revision).unwrap_or(0))
    }

    /// The etcd connection, if this store is etcd.
    pub fn etcd_client(&self) -> Option<&Etcd> {
        match &self.backend {
            Backend::Etcd(e) => Some(e),
            Backend::File(_) => None,
        }
    }

    pub fn load(&self) -> Result<Doc> {
        Ok(self.read()?.0)
    }

    /// The document and the guard a compare-and-swap checks: etcd's mod_revision (the file
    /// checks the document's version instead).
    fn read(&self) -> Result<(Doc, i64)> {
        let (text, rev) = self.text()?;
        let doc = match &self.backend {
            Backend::File(path) => parse(&text, &path.display().to_string(), path.parent())?,
            Backend::Etcd(etcd) => parse(&text, &etcd.url.topology_key(), None)?,
        };
        Ok((doc, rev))
    }

    /// The stored document's text, as a proxy reads it.
    pub fn export(&self) -> Result<String> {
        Ok(self.text()?.0)
    }

    /// The stored document's text and its mod_revision (0 for the file).
    fn text(&self) -> Result<(String, i64)> {
        match &self.backend {
            Backend::File(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok((text, 0))
            }
            Backend::Etcd(etcd) => {
                let key = etcd.url.topology_key();
                let read = etcd.block(etcd.get(key.clone())).map_err(|e| anyhow!(e))?;
                let read = read.ok_or_else(|| {
                    anyhow!(
                        "there is no topology at {} ({key}): store one with `fjord-admin --store {} import FILE`",
                        etcd.url,
                        etcd.url
                    )
                })?;
                Ok((read.value, read.mod_revision))
            }
        }
    }

    /// Stores the cluster file at `path` as the topology, its relative `data_dir`s made
    /// absolute (they resolved against its folder). Over a stored topology, it takes a version
    /// above the stored one, so that proxies never see the version go down. Returns the
    /// version stored.
    pub fn import(&self, path: &Path) -> Result<u64> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let folder = std::path::absolute(path)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let doc = parse(&text, &path.display().to_string(), Some(&folder))?;
        let mut value = doc.value;
        let absolute =
            |d: &Path| Value::from(files::lexically_normal(d).to_string_lossy().into_owned());
        for (i, shard) in doc.topology.shards.iter().enumerate() {
            let entry = &mut value["shards"][i];
            if let Some(d) = &shard.data_dir {
                entry["data_dir"] = absolute(d);
            }
            for (j, r) in shard.replicas.iter().enumerate() {
                if let Some(d) = &r.data_dir {
                    entry["replicas"][j]["data_dir"] = absolute(d);
                }
            }
        }
        let Backend::Etcd(etcd) = &self.backend else {
            bail!("import stores a file into etcd: give --store etcd://…");
        };
        loop {
            let key = etcd.url.topology_key();
            let current = etcd.block(etcd.get(key.clone())).map_err(|e| anyhow!(e))?;
            let (rev, version) = match &current {
                Some(c) => {
                    let stored: Value = serde_yaml::from_str(&c.value).unwrap_or_default();
                    let stored = stored["version"].as_u64().unwrap_or(0);
                    (c.mod_revision, doc.topology.version.max(stored + 1))
                }
                None => (0, doc.topology.version),
            };
            value["version"] = Value::from(version);
            let text = serde_yaml::to_string(&value)?;
            parse(&text, &key, None).context("the imported topology is invalid")?;
            let put = etcd.put_if(key, text, rev, self.held.clone());
            if etcd.block(put).map_err(|e| anyhow!(e))? {
                return Ok(version);
            }
        }
    }

    /// Applies `change` to the current document and publishes it with version+1, re-reading
    /// and re-applying on a conflict. Returns the document in force afterwards, and whether
    /// this change is in it (false: `change` skipped, on the document as it then stood).
    pub fn update(
        &self,
        mut change: impl FnMut(&mut Edit<'_>) -> Result<Change>,
    ) -> Result<(Doc, bool)> {
        loop {
            let (read, rev) = self.read()?;
            let mut next = read.value.clone();
            if change(&mut Edit { value: &mut next })? == Change::Skip {
                return Ok((read, false));
            }
            let version = read.version() + 1;
            next["version"] = Value::from(version);
            let written = match &self.backend {
                Backend::File(path) => {
                    let _lock = lock(path)?;
                    let (now, _) = self.read()?;
                    if now.version() != read.version() {
                        tracing::info!(
                            read = read.version(),
                            now = now.version(),
                            "the cluster file changed meanwhile; applying the change again"
                        );
                        continue;
                    }
                    let text = format!("{HEADER}{}", serde_yaml::to_string(&next)?);
                    let doc = parse(&text, &path.display().to_string(), path.parent())
                        .context("the changed topology is invalid")?;
                    write_replacing(path, &text)?;
                    doc
                }
                Backend::Etcd(etcd) => {
                    let key = etcd.url.topology_key();
                    let text = serde_yaml::to_string(&next)?;
                    let doc =
                        parse(&text, &key, None).context("the changed topology is invalid")?;
                    let put = etcd.put_if(key, text, rev, self.held.clone());
                    if !etcd.block(put).map_err(|e| anyhow!(e))? {
                        self.check_held()?;
                        tracing::info!(
                            read = read.version(),
                            "the stored topology changed meanwhile; applying the change again"
                        );
                        continue;
                    }
                    doc
                }
            };
            return Ok((written, true));
        }
    }

    /// Fails if this store writes for a leader that no longer holds its key.
    fn check_held(&self) -> Result<()> {
        let (Some(held), Backend::Etcd(etcd)) = (&self.held, &self.backend) else {
            return Ok(());
        };
        let key = String::from_utf8_lossy(&held.key).into_owned();
        if !etcd.block(etcd.exists(key)).map_err(|e| anyhow!(e))? {
            bail!(
                "this controller is no longer the leader (its lease expired); its write is refused"
            );
        }
        Ok(())
    }

    /// Takes `new` as shard `id`'s term if the file still has it at `term` with primary
    /// `primary` (what the caller decided on). True if this write put it there: another
    /// writer may have taken the same number first.
    pub fn take_term(&self, id: &str, term: u64, primary: &str, new: u64) -> Result<bool> {
        let (_, written) = self.update(|e| {
            if e.term(id)? != term || e.primary(id)? != primary {
                return Ok(Change::Skip);
            }
            e.set_term(id, new)?;
            Ok(Change::Write)
        })?;
        Ok(written)
    }

    /// Records replica `replica` of shard `id` in or out of sync, if the shard is still at
    /// `term` with primary `primary`.
    pub fn record_in_sync(
        &self,
        id: &str,
        term: u64,
        primary: &str,
        replica: &str,
        in_sync: bool,
    ) -> Result<bool> {
        let (_, written) = self.update(|e| {
            if e.term(id)? != term || e.primary(id)? != primary {
                return Ok(Change::Skip);
            }
            e.set_in_sync(id, replica, in_sync)?;
            Ok(Change::Write)
        })?;
        Ok(written)
    }

    /// Publishes replica `addr` as shard `id`'s primary, if the shard is still at `term`
    /// (the term its promotion took). Returns the new version if this write did it.
    pub fn publish_primary(&self, id: &str, term: u64, addr: &str) -> Result<Option<u64>> {
        let (doc, written) = self.update(|e| {
            if e.term(id)? != term || e.primary(id)? == addr {
                return Ok(Change::Skip);
            }
            e.swap_primary(id, addr)?;
            Ok(Change::Write)
        })?;
        Ok(written.then(|| doc.version()))
    }

    /// Whether `reshard --abort` asked the move under way to stop.
    pub fn abort_requested(&self) -> Result<bool> {
        let doc = self.load()?;
        Ok(doc.value["moving"]["abort"].as_bool().unwrap_or(false))
    }

    /// Whether controllers are paused (`fjord-admin controller pause`): they keep probing and
    /// keeping the in-sync record, but start no failover. The controllers' shared state lives
    /// beside the topology (`FILE.controller`, or the prefix's `controller` key); proxies
    /// never read it.
    pub fn paused(&self) -> Result<bool> {
        let text = match &self.backend {
            Backend::File(path) => match std::fs::read_to_string(state_path(path)) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("reading {}", state_path(path).display()))
                }
            },
            Backend::Etcd(etcd) => {
                let read = etcd.block(etcd.get(etcd.url.controller_key()));
                match read.map_err(|e| anyhow!(e))? {
                    Some(v) => v.value,
                    None => return Ok(false),
                }
            }
        };
        let state: Value = serde_yaml::from_str(&text)
            .with_context(|| format!("reading {self}'s controller state"))?;
        Ok(state["paused"].as_bool().unwrap_or(false))
    }

    pub fn set_paused(&self, paused: bool) -> Result<()> {
        let text = format!("# fjord-admin controller pause|resume\npaused: {paused}\n");
        match &self.backend {
            Backend::File(path) => {
                let _lock = lock(path)?;
                write_replacing(&state_path(path), &text)
            }
            Backend::Etcd(etcd) => etcd
                .block(etcd.put(etcd.url.controller_key(), text, None))
                .map_err(|e| anyhow!(e)),
        }
    }

    /// Holds the mover's lease (one `reshard` at a time runs a move; a controller finishes or
    /// rolls back a move whose mover stopped renewing it) until the returned value is dropped.
    pub fn mover_lease(&self) -> Result<MoverLease> {
        let task = match &self.backend {
            Backend::File(path) => {
                let path = mover_path(path);
                tokio::spawn(async move {
                    loop {
                        if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
                            tracing::warn!(error = %e, path = %path.display(), "cannot renew the mover's lease");
                        }
                        tokio::time::sleep(MOVER_LEASE_TTL / 3).await;
                    }
                })
            }
            Backend::Etcd(etcd) => {
                let lease = etcd
                    .block(etcd.lease(MOVER_LEASE_TTL))
                    .map_err(|e| anyhow!(e))?;
                let value = format!("pid {}\n", std::process::id());
                etcd.block(etcd.put(etcd.url.mover_key(), value, Some(lease.id)))
                    .map_err(|e| anyhow!(e))?;
                return Ok(MoverLease::Etcd { _lease: lease });
            }
        };
        Ok(MoverLease::File(task))
    }

    /// How long ago a mover last renewed its lease (`None`: none holds it). etcd tells only
    /// whether the lease is alive: then zero.
    pub fn mover_lease_age(&self) -> Option<Duration> {
        match &self.backend {
            Backend::File(path) => {
                let modified = std::fs::metadata(mover_path(path))
                    .and_then(|m| m.modified())
                    .ok()?;
                Some(modified.elapsed().unwrap_or_default())
            }
            Backend::Etcd(etcd) => etcd
                .block(etcd.exists(etcd.url.mover_key()))
                .ok()?
                .then_some(Duration::ZERO),
        }
    }
}

/// A mover's lease, renewed until dropped: a file rewritten by a task, or an etcd lease
/// (its own task renews it; held only to be dropped).
pub enum MoverLease {
    File(tokio::task::JoinHandle<()>),
    Etcd { _lease: fjord_common::etcd::Lease },
}

impl Drop for MoverLease {
    fn drop(&mut self) {
        if let MoverLease::File(task) = self {
            task.abort();
        }
    }
}

/// `FILE.controller`: the controllers' shared state beside a cluster file.
fn state_path(path: &Path) -> PathBuf {
    sibling(path, ".controller")
}

/// `FILE.move-lease`: a running mover rewrites it every second.
fn mover_path(path: &Path) -> PathBuf {
    sibling(path, ".move-lease")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// An exclusive lock on `FILE.lock`, released when the file closes.
fn lock(path: &Path) -> Result<File> {
    let name = sibling(path, ".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .with_context(|| format!("opening {}", name.display()))?;
    // SAFETY: flock on a descriptor this function owns; it blocks until granted.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!(
            "locking {}: {}",
            name.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

/// Replaces `path` by a synced temporary file and a rename ([`files::write_replacing`]).
fn write_replacing(path: &Path, text: &str) -> Result<()> {
    files::write_replacing(path, text).with_context(|| format!("replacing {}", path.display()))
}

/// Parses and validates a document; `name` says where it came from, `base` is the folder
/// relative paths resolve against.
fn parse(text: &str, name: &str, base: Option<&Path>) -> Result<Doc> {
    let topology = Topology::parse(text, base).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        anyhow!("{name} is invalid:\n  {}", lines.join("\n  "))
    })?;
    let value = serde_yaml::from_str(text)?;
    Ok(Doc { value, topology })
}

/// Changes to a document, by shard id.
pub struct Edit<'a> {
    value: &'a mut Value,
}

impl Edit<'_> {
    fn shard(&mut self, id: &str) -> Result<&mut Mapping> {
        self.value["shards"]
            .as_sequence_mut()
            .into_iter()
            .flatten()
            .filter_map(Value::as_mapping_mut)
            .find(|s| s.get("id").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| anyhow!("no shard {id} in the cluster file"))
    }

    /// The shard's term as the document holds it.
    pub fn term(&mut self, id: &str) -> Result<u64> {
        Ok(self
            .shard(id)?
            .get("term")
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// The shard's primary address as the document holds it.
    pub fn primary(&mut self, id: &str) -> Result<String> {
        let shard = self.shard(id)?;
        Ok(shard
            .get("addr")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// Sets the given fields of the `replication` section (created if missing).
    pub fn set_replication(&mut self, acks: Option<ReplicaAcks>, min_insync: Option<usize>) {
        let section = &mut self.value["replication"];
        if !section.is_mapping() {
            *section = Value::Mapping(Mapping::new());
        }
        if let Some(acks) = acks {
            section["acks"] = Value::from(acks.name());
        }
        if let Some(min) = min_insync {
            section["min_insync_replicas"] = Value::from(min as u64);
        }
    }

    pub fn set_term(&mut self, id: &str, term: u64) -> Result<()> {
        self.shard(id)?.insert("term".into(), Value::from(term));
        Ok(())
    }

    /// Records whether the replica at `addr` holds every acknowledged write.
    pub fn set_in_sync(&mut self, id: &str, addr: &str, in_sync: bool) -> Result<()> {
        let replica = replicas(self.shard(id)?)
            .find(|r| r.get("addr").and_then(Value::as_str) == Some(addr))
            .ok_or_else(|| anyhow!("shard {id} has no replica {addr}"))?;
        replica.insert("in_sync".into(), Value::from(in_sync));
        Ok(())
    }

    /// Adds a replica at `addr` (not in sync) to shard `id`, in place of the one at
    /// `replace` if given.
    pub fn add_replica(
        &mut self,
        id: &str,
        addr: &str,
        admin: Option<&str>,
        data_dir: Option<&Path>,
        replace: Option<&str>,
    ) -> Result<()> {
        let shard = self.shard(id)?;
        if shard.get("addr").and_then(Value::as_str) == Some(addr)
            || replicas(shard).any(|r| r.get("addr").and_then(Value::as_str) == Some(addr))
        {
            bail!("{addr} is already shard {id}'s primary or replica");
        }
        let mut entry = Mapping::new();
        entry.insert("addr".into(), addr.into());
        if let Some(a) = admin {
            entry.insert("admin".into(), a.into());
        }
        if let Some(d) = data_dir {
            entry.insert("data_dir".into(), d.to_string_lossy().into_owned().into());
        }
        entry.insert("in_sync".into(), false.into());
        let list = shard
            .entry("replicas".into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        let Some(list) = list.as_sequence_mut() else {
            bail!("shard {id}'s replicas is not a list");
        };
        match replace {
            Some(old) => {
                let slot = list
                    .iter_mut()
                    .find(|r| r.get("addr").and_then(Value::as_str) == Some(old))
                    .ok_or_else(|| anyhow!("shard {id} has no replica {old} to replace"))?;
                *slot = Value::Mapping(entry);
            }
            None => list.push(Value::Mapping(entry)),
        }
        Ok(())
    }

    /// Makes the replica at `addr` the primary and the primary one of its replicas (with its
    /// admin address and data folder); no replica is recorded in sync with the new primary.
    pub fn swap_primary(&mut self, id: &str, addr: &str) -> Result<()> {
        let shard = self.shard(id)?;
        let index = replicas(shard)
            .position(|r| r.get("addr").and_then(Value::as_str) == Some(addr))
            .ok_or_else(|| anyhow!("shard {id} has no replica {addr}"))?;
        let mut promoted = replicas(shard).nth(index).cloned().unwrap_or_default();
        let mut demoted = Mapping::new();
        for field in ["addr", "admin", "data_dir"] {
            let key = Value::from(field);
            match promoted.remove(&key) {
                Some(v) => {
                    if let Some(old) = shard.insert(key.clone(), v) {
                        demoted.insert(key, old);
                    }
                }
                None => {
                    if let Some(old) = shard.remove(&key) {
                        demoted.insert(key, old);
                    }
                }
            }
        }
        let list = shard
            .get_mut("replicas")
            .and_then(Value::as_sequence_mut)
            .ok_or_else(|| anyhow!("shard {id} has no replicas"))?;
        list[index] = Value::Mapping(demoted);
        for r in list.iter_mut().filter_map(Value::as_mapping_mut) {
            r.insert("in_sync".into(), Value::from(false));
        }
        Ok(())
    }
}

/// Slot moves: the `moving` section and the shards' `slots`.
impl Edit<'_> {
    /// The document's version as read (a change is published as this + 1).
    pub fn version(&self) -> u64 {
        self.value["version"].as_u64().unwrap_or(0)
    }

    /// Records a move under way, or (`None`) that none is.
    pub fn set_moving(&mut self, plan: Option<&Plan>) {
        let Some(map) = self.value.as_mapping_mut() else {
            return;
        };
        match plan {
            None => {
                map.remove("moving");
            }
            Some(p) => {
                let mut m = Mapping::new();
                m.insert("from".into(), p.from.as_str().into());
                m.insert("to".into(), p.to.as_str().into());
                m.insert("slots".into(), slot_list(&p.slots));
                m.insert("epoch".into(), Value::from(p.epoch));
                map.insert("moving".into(), Value::Mapping(m));
            }
        }
    }

    /// Adds a shard that owns no slot.
    pub fn add_shard(&mut self, shard: &crate::ops::NewShard) -> Result<()> {
        if self.shard(&shard.id).is_ok() {
            bail!("there is a shard {} already", shard.id);
        }
        let mut entry = Mapping::new();
        entry.insert("id".into(), shard.id.as_str().into());
        entry.insert("addr".into(), shard.addr.as_str().into());
        entry.insert("slots".into(), Value::Sequence(Vec::new()));
        if let Some(a) = &shard.admin {
            entry.insert("admin".into(), a.as_str().into());
        }
        if let Some(d) = &shard.data_dir {
            entry.insert("data_dir".into(), d.to_string_lossy().into_owned().into());
        }
        let replicas = shard
            .replicas
            .iter()
            .map(|addr| {
                let mut r = Mapping::new();
                r.insert("addr".into(), addr.as_str().into());
                r.insert("in_sync".into(), false.into());
                Value::Mapping(r)
            })
            .collect();
        entry.insert("replicas".into(), Value::Sequence(replicas));
        self.value["shards"]
            .as_sequence_mut()
            .ok_or_else(|| anyhow!("the cluster file's shards is not a list"))?
            .push(Value::Mapping(entry));
        Ok(())
    }

    /// Removes a shard (it must own no slot: validation refuses the file otherwise).
    pub fn remove_shard(&mut self, id: &str) -> Result<()> {
        let list = self.value["shards"]
            .as_sequence_mut()
            .ok_or_else(|| anyhow!("the cluster file's shards is not a list"))?;
        let before = list.len();
        list.retain(|s| s.get("id").and_then(Value::as_str) != Some(id));
        if list.len() == before {
            bail!("no shard {id} in the cluster file");
        }
        Ok(())
    }

    pub fn has_moving(&self) -> bool {
        self.value.get("moving").is_some_and(|m| !m.is_null())
    }

    /// Marks the move under way as to be stopped (`reshard --abort`).
    pub fn request_abort(&mut self) {
        if let Some(m) = self.value.get_mut("moving").and_then(Value::as_mapping_mut) {
            m.insert("abort".into(), Value::from(true));
        }
    }

    /// Whether shard `id` owns every slot of `slots`.
    pub fn owns(&mut self, id: &str, slots: &SlotSet) -> Result<bool> {
        let owned = owned_slots(self.shard(id)?)?;
        Ok(owned.intersect(slots) == *slots)
    }

    /// Gives `slots` of shard `from` to shard `to`.
    pub fn move_slots(&mut self, from: &str, to: &str, slots: &SlotSet) -> Result<()> {
        let source = self.shard(from)?;
        let left = owned_slots(source)?;
        if left.intersect(slots) != *slots {
            bail!("shard {from} does not own every slot of {slots}");
        }
        source.insert(
            "slots".into(),
            slot_list(&left.intersect(&slots.complement())),
        );
        let target = self.shard(to)?;
        let mut gained = owned_slots(target)?.ranges().to_vec();
        gained.extend_from_slice(slots.ranges());
        target.insert("slots".into(), slot_list(&SlotSet::from_ranges(gained)));
        Ok(())
    }
}

/// The slots a shard's entry lists.
fn owned_slots(shard: &Mapping) -> Result<SlotSet> {
    let texts = shard
        .get("slots")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut ranges = Vec::new();
    for text in texts {
        ranges.extend_from_slice(SlotSet::parse(text)?.ranges());
    }
    Ok(SlotSet::from_ranges(ranges))
}

/// A move as the `moving` section records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub from: String,
    pub to: String,
    pub slots: SlotSet,
    pub epoch: u64,
}

/// Slots as the file lists them: one range per entry.
fn slot_list(slots: &SlotSet) -> Value {
    Value::Sequence(
        slots
            .ranges()
            .iter()
            .map(|r| Value::from(SlotSet::from_ranges([*r]).to_string()))
            .collect(),
    )
}

fn replicas(shard: &mut Mapping) -> impl Iterator<Item = &mut Mapping> {
    shard
        .get_mut("replicas")
        .and_then(Value::as_sequence_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_mapping_mut)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "version: 3\nproxies: [{listen: 127.0.0.1:7000}]\nsettings: {backend_connections: 3}\nshards:\n  - id: s1\n    addr: 127.0.0.1:7101\n    admin: 127.0.0.1:9101\n    data_dir: d/s1\n    slots: [0-16383]\n    replicas:\n      - {addr: 127.0.0.1:7104, data_dir: d/r1, in_sync: true}\n";

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.yaml");
        std::fs::write(&path, FILE).unwrap();
        (dir, Store::file(&path))
    }

    #[test]
    fn a_swap_moves_addresses_and_folders_and_clears_the_record() {
        let (_dir, store) = store();
        let (doc, _) = store
            .update(|e| {
                e.set_term("s1", 4)?;
                e.swap_primary("s1", "127.0.0.1:7104")?;
                Ok(Change::Write)
            })
            .unwrap();
        let s = &doc.topology.shards[0];
        assert_eq!(doc.version(), 4);
        assert_eq!((s.addr.as_str(), s.term), ("127.0.0.1:7104", 4));
        assert_eq!(s.admin, None);
        assert!(s.data_dir.as_ref().unwrap().ends_with("d/r1"));
        let r = &s.replicas[0];
        assert_eq!(r.addr, "127.0.0.1:7101");
        assert_eq!(r.admin.as_deref(), Some("127.0.0.1:9101"));
        assert!(r.data_dir.as_ref().unwrap().ends_with("d/s1"));
        assert!(!r.in_sync);
        assert_eq!(
            doc.topology.settings.backend_connections, 3,
            "unknown-to-us fields survive"
        );
        assert_eq!(store.load().unwrap().version(), 4);
    }

    #[test]
    fn a_replica_is_added_or_put_in_place_of_another() {
        let (_dir, store) = store();
        store
            .update(|e| {
                e.add_replica("s1", "127.0.0.1:7105", Some("127.0.0.1:9105"), None, None)?;
                Ok(Change::Write)
            })
            .unwrap();
        let (doc, _) = store
            .update(|e| {
                e.add_replica(
                    "s1",
                    "127.0.0.1:7106",
                    None,
                    Some(Path::new("d/r3")),
                    Some("127.0.0.1:7104"),
                )?;
                Ok(Change::Write)
            })
            .unwrap();
        let r = &doc.topology.shards[0].replicas;
        let addrs: Vec<&str> = r.iter().map(|r| r.addr.as_str()).collect();
        assert_eq!(addrs, ["127.0.0.1:7106", "127.0.0.1:7105"]);
        assert!(r.iter().all(|r| !r.in_sync));
        assert_eq!(r[1].admin.as_deref(), Some("127.0.0.1:9105"));
        assert!(r[0].data_dir.as_ref().unwrap().ends_with("d/r3"));
        let refused = store.update(|e| {
            e.add_replica("s1", "127.0.0.1:7101", None, None, None)?;
            Ok(Change::Write)
        });
        assert!(refused.unwrap_err().to_string().contains("already"));
        let refused = store.update(|e| {
            e.add_replica("s1", "127.0.0.1:7107", None, None, Some("127.0.0.1:7999"))?;
            Ok(Change::Write)
        });
        assert!(refused.unwrap_err().to_string().contains("no replica"));
    }

    #[test]
    fn a_conflicting_write_is_reapplied_on_the_new_document() {
        let (dir, store) = store();
        let mut runs = 0;
        let (doc, written) = store
            .update(|e| {
                runs += 1;
                if runs == 1 {
                    // Someone else publishes between our read and our write.
                    let other = FILE.replace("version: 3", "version: 9");
                    std::fs::write(dir.path().join("cluster.yaml"), other).unwrap();
                }
                let term = e.term("s1")?;
                e.set_term("s1", term + 1)?;
                Ok(Change::Write)
            })
            .unwrap();
        assert_eq!(runs, 2);
        assert!(written);
        assert_eq!(doc.version(), 10);
    }

    #[test]
    fn an_invalid_result_is_refused_and_the_file_stays() {
        let (dir, store) = store();
        let err = store
            .update(|e| {
                e.swap_primary("s1", "127.0.0.1:7104")?;
                e.set_in_sync("s1", "127.0.0.1:9999", true)?;
                Ok(Change::Write)
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("no replica 127.0.0.1:9999"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cluster.yaml")).unwrap(),
            FILE
        );
    }

    #[test]
    fn a_move_is_recorded_then_slots_change_hands_and_the_record_goes() {
        let (_dir, store) = store();
        let shard = crate::ops::NewShard {
            id: "s2".into(),
            addr: "127.0.0.1:7102".into(),
            replicas: vec!["127.0.0.1:7105".into()],
            admin: None,
            data_dir: None,
        };
        store
            .update(|e| {
                e.add_shard(&shard)?;
                Ok(Change::Write)
            })
            .unwrap();
        let plan = Plan {
            from: "s1".into(),
            to: "s2".into(),
            slots: SlotSet::parse("0-99,200").unwrap(),
            epoch: 5,
        };
        let (doc, _) = store
            .update(|e| {
                e.set_moving(Some(&plan));
                e.move_slots("s1", "s2", &SlotSet::parse("0-99").unwrap())?;
                Ok(Change::Write)
            })
            .unwrap();
        let t = &doc.topology;
        let m = t.moving.as_ref().unwrap();
        assert_eq!((m.from, m.to, m.epoch), (0, 1, 5));
        assert_eq!(m.slots.to_string(), "0-99,200");
        assert_eq!(t.shards[0].slots.to_string(), "100-16383");
        assert_eq!(t.shards[1].slots.to_string(), "0-99");
        assert!(!t.shards[1].replicas[0].in_sync);
        let err = store
            .update(|e| {
                e.move_slots("s1", "s2", &SlotSet::parse("50").unwrap())?;
                Ok(Change::Write)
            })
            .unwrap_err();
        assert!(err.to_string().contains("does not own every slot"), "{err}");
        let err = store
            .update(|e| {
                e.remove_shard("s2")?;
                Ok(Change::Write)
            })
            .unwrap_err();
        assert!(format!("{err:#}").contains("owned by no shard"), "{err:#}");
        let (doc, _) = store
            .update(|e| {
                e.set_moving(None);
                e.move_slots("s2", "s1", &SlotSet::parse("0-99").unwrap())?;
                e.remove_shard("s2")?;
                Ok(Change::Write)
            })
            .unwrap();
        assert!(doc.topology.moving.is_none());
        assert_eq!(doc.topology.shards.len(), 1);
        assert_eq!(doc.topology.shards[0].slots.to_string(), "0-16383");
    }
}
