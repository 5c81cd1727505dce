//! The cluster file: which shards own which slots, which proxy listeners are advertised, and
//! the proxy's own settings.
//!
//! [`ClusterFile`] is the YAML as written (`config/cluster.yaml` documents every field);
//! [`Topology`] is what it means once validated: every one of the 16384 slots owned by exactly
//! one shard, unique shard ids and addresses, parseable addresses, the advertised listeners'
//! slot ranges and stable node ids. Validation reports every problem at once, each naming the
//! field's path and its line in the file, so an operator can fix a file in one go.

use crate::slotset::{SlotRange, SlotSet};
use crate::SLOT_COUNT;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The YAML file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub version: u64,
    pub proxies: Vec<ProxyEntry>,
    #[serde(default)]
    pub standalone: Option<String>,
    #[serde(default)]
    pub admin: Option<String>,
    #[serde(default)]
    pub settings: ProxySettings,
    #[serde(default)]
    pub replication: ReplicationPolicy,
    pub shards: Vec<ShardEntry>,
    /// A slot move under way (`fjord-admin reshard` records it, and removes it when done).
    #[serde(default)]
    pub moving: Option<MoveEntry>,
}

/// The fields of a cluster file that belong to the proxy reading it, not to the cluster:
/// with the topology in a store, a proxy takes them from its local file
/// ([`Topology::parse_with`]), whose other fields it ignores.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ProxyFields {
    #[serde(default)]
    pub proxies: Vec<ProxyEntry>,
    #[serde(default)]
    pub standalone: Option<String>,
    #[serde(default)]
    pub admin: Option<String>,
    #[serde(default)]
    pub settings: ProxySettings,
}

impl ProxyFields {
    /// Their names in the file.
    pub const NAMES: [&'static str; 4] = ["proxies", "standalone", "admin", "settings"];
}

/// The `moving` section: which slots go from which shard to which, at which epoch.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveEntry {
    pub from: String,
    pub to: String,
    /// All the slots of the move; those already handed over are in `to`'s `slots`.
    pub slots: Vec<String>,
    /// The epoch every slot-state change of the move carries.
    pub epoch: u64,
    /// Set by `fjord-admin reshard --abort`: the mover stops before its next hand-over.
    #[serde(default)]
    pub abort: bool,
}

/// How every shard's replies wait for its replicas: the file's `replication` section. The
/// proxy starts its local shards with it and the controller applies it to every primary it
/// manages, so it can change while the cluster serves.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationPolicy {
    pub acks: ReplicaAcks,
    pub min_insync_replicas: usize,
}

/// Whether a primary's replies wait for its in-sync replicas.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaAcks {
    /// A reply leaves once every in-sync replica has the write: a failover loses nothing
    /// acknowledged.
    #[default]
    Sync,
    /// A reply leaves at once, as in Redis: a failover can lose the last writes.
    Async,
}

impl ReplicaAcks {
    pub fn name(self) -> &'static str {
        match self {
            ReplicaAcks::Sync => "sync",
            ReplicaAcks::Async => "async",
        }
    }
}

impl std::str::FromStr for ReplicaAcks {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sync" => Ok(ReplicaAcks::Sync),
            "async" => Ok(ReplicaAcks::Async),
            other => Err(format!("{other:?} is neither sync nor async")),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyEntry {
    pub listen: String,
    #[serde(default)]
    pub announce: Option<String>,
    /// A second listener, advertised as this master's replica.
    #[serde(default)]
    pub replica: Option<ListenerEntry>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerEntry {
    pub listen: String,
    #[serde(default)]
    pub announce: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    pub id: String,
    pub addr: String,
    pub slots: Vec<String>,
    #[serde(default)]
    pub admin: Option<String>,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Shards that follow this one (`fjord-shard --replica-of addr`).
    #[serde(default)]
    pub replicas: Vec<ReplicaEntry>,
    /// The controller term of the shard's current primary (0: no controller has managed it).
    #[serde(default)]
    pub term: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaEntry {
    pub addr: String,
    #[serde(default)]
    pub admin: Option<String>,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Whether the controller recorded it as holding every acknowledged write (only such a
    /// replica is promoted).
    #[serde(default)]
    pub in_sync: bool,
}

/// The proxy process's settings. Read at start; a reload that changes them is logged and
/// ignored until a restart.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    pub requirepass: Option<String>,
    pub shard_password: Option<String>,
    pub backend_connections: usize,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    pub reconnect_max_backoff_ms: u64,
    pub io_threads: usize,
    pub max_clients: usize,
    pub max_bulk_len: usize,
    pub max_array_len: usize,
    pub max_inline_len: usize,
    pub client_query_buffer_limit: usize,
    pub client_output_buffer_limit: usize,
    pub client_memory_budget: usize,
    pub max_pipeline: usize,
    pub replica_max_lag_ms: u64,
    pub local_shard_fsync: String,
    pub record_metrics: bool,
}

impl Default for ProxySettings {
    fn default() -> Self {
        let limits = crate::Limits::default();
        Self {
            requirepass: None,
            shard_password: None,
            backend_connections: 2,
            connect_timeout_ms: 1000,
            command_timeout_ms: 5000,
            reconnect_max_backoff_ms: 2000,
            io_threads: 2,
            max_clients: 10_000,
            max_bulk_len: limits.max_bulk_len,
            max_array_len: limits.max_array_len,
            max_inline_len: limits.max_inline_len,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit: 256 * 1024 * 1024,
            client_memory_budget: 2 * 1024 * 1024 * 1024,
            max_pipeline: 1024,
            replica_max_lag_ms: 1000,
            local_shard_fsync: "everysec".into(),
            record_metrics: true,
        }
    }
}

impl ProxySettings {
    pub fn limits(&self) -> crate::Limits {
        crate::Limits {
            max_bulk_len: self.max_bulk_len,
            max_array_len: self.max_array_len,
            max_inline_len: self.max_inline_len,
        }
    }
}

/// An advertised proxy listener, as clients see it in CLUSTER SLOTS/NODES/SHARDS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub endpoint: Endpoint,
    /// The slots this listener advertises, and covers for node-scoped commands.
    pub slots: SlotSet,
    /// The listener advertised as its replica, if any.
    pub replica: Option<Endpoint>,
}

/// A listener as clients see it: where it binds, what it announces, its node id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub listen: SocketAddr,
    pub host: String,
    /// 0 until the proxy binds a listener configured with port 0.
    pub port: u16,
    /// 40 hex characters derived from the announce address: stable across restarts.
    pub id: String,
}

impl Endpoint {
    /// A listener configured with port 0 (tests) and no announce address advertises the
    /// address it actually bound.
    pub fn resolve_bound(&mut self, bound: SocketAddr) {
        if self.port == 0 {
            self.host = bound.ip().to_string();
            self.port = bound.port();
            self.id = node_id(&self.host, self.port);
        }
    }
}

/// A shard: where its primary listens, what it owns, and its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    pub addr: String,
    pub slots: SlotSet,
    pub admin: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub replicas: Vec<Replica>,
    /// The controller term of its primary (0: unmanaged).
    pub term: u64,
}

/// A replica of a shard: it follows the shard's primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub addr: String,
    pub admin: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Recorded in sync by the controller.
    pub in_sync: bool,
}

/// A slot move under way, by shard index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub from: usize,
    pub to: usize,
    pub slots: SlotSet,
    pub epoch: u64,
}

/// A validated topology: what the proxy routes by.
#[derive(Clone, Debug)]
pub struct Topology {
    pub version: u64,
    pub nodes: Vec<Node>,
    pub shards: Vec<Shard>,
    pub standalone: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub settings: ProxySettings,
    pub replication: ReplicationPolicy,
    pub moving: Option<Move>,
    /// Index into `shards` of each slot's owner.
    owner: Box<[u16]>,
}

impl Topology {
    /// The shard owning `slot`.
    pub fn owner(&self, slot: u16) -> usize {
        usize::from(self.owner[usize::from(slot)])
    }

    /// For each shard (by index), the part of `slots` it owns, skipping shards with none.
    pub fn split_by_shard(&self, slots: &SlotSet) -> Vec<(usize, SlotSet)> {
        self.shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let part = s.slots.intersect(slots);
                (!part.is_empty()).then_some((i, part))
            })
            .collect()
    }

    /// The longest run of slots from `slot` on, inside `within`, owned by one shard.
    pub fn run_from(&self, slot: u16, within: &SlotSet) -> SlotRange {
        let owner = self.owner[usize::from(slot)];
        let mut end = slot;
        while end + 1 < SLOT_COUNT
            && self.owner[usize::from(end + 1)] == owner
            && within.contains(end + 1)
        {
            end += 1;
        }
        SlotRange { start: slot, end }
    }

    /// Whether two topologies route and advertise the same way (reloading one onto the other
    /// changes nothing a client can see but the version).
    pub fn same_layout(&self, other: &Topology) -> bool {
        self.nodes == other.nodes && self.shards == other.shards && self.moving == other.moving
    }

    /// Reads and validates a cluster file. Relative `data_dir`s resolve against its folder.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
            file: path.display().to_string(),
            problems: vec![Problem {
                path: String::new(),
                line: None,
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        Self::parse(&text, path.parent()).map_err(|problems| TopologyError {
            file: path.display().to_string(),
            problems,
        })
    }

    /// Parses and validates YAML text; `base` is the folder relative paths resolve against.
    pub fn parse(text: &str, base: Option<&Path>) -> Result<Topology, Vec<Problem>> {
        let file: ClusterFile = serde_yaml::from_str(text).map_err(unreadable)?;
        Self::from_file(file, text, base)
    }

    /// Parses and validates a stored document (the topology in etcd) with `own`'s fields in
    /// place of its own: a proxy's listeners and settings come from its local file.
    pub fn parse_with(
        text: &str,
        own: &ProxyFields,
        base: Option<&Path>,
    ) -> Result<Topology, Vec<Problem>> {
        let mut file: ClusterFile = serde_yaml::from_str(text).map_err(unreadable)?;
        file.proxies.clone_from(&own.proxies);
        file.standalone.clone_from(&own.standalone);
        file.admin.clone_from(&own.admin);
        file.settings.clone_from(&own.settings);
        Self::from_file(file, text, base)
    }

    fn from_file(
        file: ClusterFile,
        text: &str,
        base: Option<&Path>,
    ) -> Result<Topology, Vec<Problem>> {
        let mut v = Validator {
            text,
            lines: std::cell::OnceCell::new(),
            problems: Vec::new(),
        };
        let topology = v.validate(file, base);
        match topology {
            Some(t) if v.problems.is_empty() => Ok(t),
            _ => Err(v.problems),
        }
    }
}

/// A document that is not a cluster file at all (a syntax or type error), with its line when
/// serde_yaml knows it.
fn unreadable(e: serde_yaml::Error) -> Vec<Problem> {
    vec![Problem {
        path: String::new(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    }]
}

/// One thing wrong with a cluster file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: `shards[1].slots[0]`; empty for the whole file.
    pub path: String,
    /// 1-based line of that field, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.path.is_empty(), self.line) {
            (false, Some(line)) => write!(f, "line {line}: {}: {}", self.path, self.message),
            (false, None) => write!(f, "{}: {}", self.path, self.message),
            (true, Some(line)) => write!(f, "line {line}: {}", self.message),
            (true, None) => write!(f, "{}", self.message),
        }
    }
}

/// A cluster file that cannot be used, with everything wrong in it.
#[derive(Clone, Debug)]
pub struct TopologyError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a valid cluster file:", self.file)?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TopologyError {}

struct Validator<'a> {
    text: &'a str,
    /// Each field's line, indexed at the first problem only: the second parse it takes cost
    /// half of a 1,000-shard topology's reload.
    lines: std::cell::OnceCell<HashMap<String, usize>>,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn problem(&mut self, path: String, message: impl Into<String>) {
        let text = self.text;
        let lines = self.lines.get_or_init(|| crate::yaml_lines::index(text));
        let line = lines.get(&path).copied();
        self.problems.push(Problem {
            path,
            line,
            message: message.into(),
        });
    }

    fn socket_addr(&mut self, path: String, text: &str) -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(path, format!("'{text}' is not an IP:port address"));
                None
            }
        }
    }

    /// `host:port` with a non-empty host (ioredis skips nodes with an empty host).
    fn host_port(&mut self, path: String, text: &str) -> Option<(String, u16)> {
        let parsed = text
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .filter(|(h, p)| !h.is_empty() && *p != 0);
        match parsed {
            Some((h, p)) => Some((h.to_string(), p)),
            None => {
                self.problem(
                    path,
                    format!("'{text}' is not a host:port address with a non-empty host and a port"),
                );
                None
            }
        }
    }

    /// A listener's `listen` and `announce` at `path`, each unique in the file.
    fn endpoint(
        &mut self,
        seen: &mut Seen,
        path: String,
        listen: &str,
        announce: Option<&str>,
    ) -> Option<Endpoint> {
        let bind = self.socket_addr(format!("{path}.listen"), listen);
        // Without an announce address a listener advertises what it binds; port 0 (tests)
        // is replaced by the bound port once the proxy has it.
        let announced = match announce {
            Some(text) => self.host_port(format!("{path}.announce"), text),
            None => bind.map(|l| (l.ip().to_string(), l.port())),
        };
        if let Some(l) = bind {
            if l.port() != 0 && !seen.listen.insert(l) {
                self.problem(format!("{path}.listen"), "listed twice");
            }
            if l.ip().is_unspecified() && announce.is_none() {
                self.problem(
                    path.clone(),
                    "a listener on a wildcard address needs an announce address clients can reach",
                );
            }
        }
        let (listen, (host, port)) = (bind?, announced?);
        if port != 0 && !seen.announce.insert((host.clone(), port)) {
            self.problem(format!("{path}.announce"), "announced twice");
        }
        Some(Endpoint {
            listen,
            id: node_id(&host, port),
            host,
            port,
        })
    }

    fn validate(&mut self, file: ClusterFile, base: Option<&Path>) -> Option<Topology> {
        let standalone = file
            .standalone
            .as_deref()
            .and_then(|s| self.socket_addr("standalone".into(), s));
        let admin = file
            .admin
            .as_deref()
            .and_then(|s| self.socket_addr("admin".into(), s));
        if file.settings.backend_connections == 0 {
            self.problem("settings.backend_connections".into(), "must be at least 1");
        }
        if file.settings.io_threads == 0 {
            self.problem("settings.io_threads".into(), "must be at least 1");
        }
        if !["always", "everysec", "no"].contains(&file.settings.local_shard_fsync.as_str()) {
            self.problem(
                "settings.local_shard_fsync".into(),
                "must be always, everysec or no",
            );
        }

        // Proxy listeners divide the slots among themselves the way redis-cli --cluster create
        // divides them among masters, so clients see an ordinary cluster.
        if file.proxies.is_empty() {
            self.problem("proxies".into(), "at least one cluster listener is needed");
        }
        let ranges = even_split(file.proxies.len());
        let mut nodes = Vec::new();
        let mut seen = Seen::default();
        for (i, p) in file.proxies.iter().enumerate() {
            let master = self.endpoint(
                &mut seen,
                format!("proxies[{i}]"),
                &p.listen,
                p.announce.as_deref(),
            );
            // `None`: invalid; `Some(None)`: none configured.
            let replica = match &p.replica {
                None => Some(None),
                Some(r) => self
                    .endpoint(
                        &mut seen,
                        format!("proxies[{i}].replica"),
                        &r.listen,
                        r.announce.as_deref(),
                    )
                    .map(Some),
            };
            if let (Some(m), Some(replica)) = (master, replica) {
                nodes.push(Node {
                    endpoint: m,
                    slots: SlotSet::from_ranges([ranges[i]]),
                    replica,
                });
            }
        }

        let mut shards = Vec::new();
        let mut owner = vec![u16::MAX; usize::from(SLOT_COUNT)];
        let mut seen_ids = HashSet::new();
        let mut seen_addrs = HashSet::new();
        if file.shards.is_empty() {
            self.problem("shards".into(), "at least one shard is needed");
        }
        if file.shards.len() > usize::from(u16::MAX) {
            self.problem("shards".into(), "too many shards");
            return None;
        }
        for (i, s) in file.shards.iter().enumerate() {
            if s.id.is_empty() || s.id.contains(char::is_whitespace) {
                self.problem(format!("shards[{i}].id"), "must be a non-empty word");
            } else if !seen_ids.insert(s.id.clone()) {
                self.problem(
                    format!("shards[{i}].id"),
                    format!("'{}' is used twice", s.id),
                );
            }
            if self
                .host_port(format!("shards[{i}].addr"), &s.addr)
                .is_some()
                && !seen_addrs.insert(s.addr.clone())
            {
                self.problem(
                    format!("shards[{i}].addr"),
                    format!("'{}' is used by two shards", s.addr),
                );
            }
            if let Some(a) = &s.admin {
                self.host_port(format!("shards[{i}].admin"), a);
            }
            for (j, r) in s.replicas.iter().enumerate() {
                let path = format!("shards[{i}].replicas[{j}]");
                if self.host_port(format!("{path}.addr"), &r.addr).is_some()
                    && !seen_addrs.insert(r.addr.clone())
                {
                    self.problem(
                        format!("{path}.addr"),
                        format!("'{}' is used by two shards or replicas", r.addr),
                    );
                }
                if let Some(a) = &r.admin {
                    self.host_port(format!("{path}.admin"), a);
                }
            }
            let min = file.replication.min_insync_replicas;
            if s.replicas.len() < min {
                self.problem(
                    format!("shards[{i}].replicas"),
                    format!("{} replicas, fewer than replication.min_insync_replicas ({min}): every write would fail with NOREPLICAS", s.replicas.len()),
                );
            }
            let mut set_ranges = Vec::new();
            for (j, text) in s.slots.iter().enumerate() {
                let path = format!("shards[{i}].slots[{j}]");
                match SlotSet::parse(text) {
                    Ok(set) => {
                        for r in set.ranges() {
                            let mut reported = false;
                            for slot in r.start..=r.end {
                                let o = &mut owner[usize::from(slot)];
                                if *o != u16::MAX && usize::from(*o) != i {
                                    // One problem per range, naming its first contested slot.
                                    if !reported {
                                        self.problem(
                                            path.clone(),
                                            format!("slot {slot} is already owned by shards[{o}]"),
                                        );
                                        reported = true;
                                    }
                                    continue;
                                }
                                *o = i as u16;
                            }
                            set_ranges.push(*r);
                        }
                    }
                    Err(e) => self.problem(path, e.to_string()),
                }
            }
            shards.push(Shard {
                id: s.id.clone(),
                addr: s.addr.clone(),
                slots: SlotSet::from_ranges(set_ranges),
                admin: s.admin.clone(),
                data_dir: s.data_dir.as_deref().map(|d| resolve(base, d)),
                replicas: s
                    .replicas
                    .iter()
                    .map(|r| Replica {
                        addr: r.addr.clone(),
                        admin: r.admin.clone(),
                        data_dir: r.data_dir.as_deref().map(|d| resolve(base, d)),
                        in_sync: r.in_sync,
                    })
                    .collect(),
                term: s.term,
            });
        }
        let unowned = SlotSet::from_ranges(
            (0..SLOT_COUNT)
                .filter(|&s| owner[usize::from(s)] == u16::MAX)
                .map(|s| SlotRange { start: s, end: s }),
        );
        if !unowned.is_empty() && !file.shards.is_empty() {
            self.problem(
                "shards".into(),
                format!("slots {unowned} are owned by no shard (each of the 16384 slots needs exactly one owner)"),
            );
        }
        let moving = file.moving.as_ref().and_then(|m| self.moving(m, &shards));
        Some(Topology {
            version: file.version,
            nodes,
            shards,
            standalone,
            admin,
            settings: file.settings,
            replication: file.replication,
            moving,
            owner: owner.into_boxed_slice(),
        })
    }

    /// The `moving` section: two different shards of the file, and slots.
    fn moving(&mut self, m: &MoveEntry, shards: &[Shard]) -> Option<Move> {
        let mut index = |field: &str, id: &str| {
            let found = shards.iter().position(|s| s.id == id);
            if found.is_none() {
                self.problem(
                    format!("moving.{field}"),
                    format!("no shard has the id '{id}'"),
                );
            }
            found
        };
        let (from, to) = (index("from", &m.from), index("to", &m.to));
        let mut slots = Vec::new();
        for (j, text) in m.slots.iter().enumerate() {
            match SlotSet::parse(text) {
                Ok(set) => slots.extend_from_slice(set.ranges()),
                Err(e) => self.problem(format!("moving.slots[{j}]"), e.to_string()),
            }
        }
        let (from, to) = (from?, to?);
        if from == to {
            self.problem("moving.to".into(), "a move needs two different shards");
            return None;
        }
        Some(Move {
            from,
            to,
            slots: SlotSet::from_ranges(slots),
            epoch: m.epoch,
        })
    }
}

/// Listen and announce addresses met so far: each may be used once.
#[derive(Default)]
struct Seen {
    listen: HashSet<SocketAddr>,
    announce: HashSet<(String, u16)>,
}

/// A path of the file, relative to its folder unless absolute.
fn resolve(base: Option<&Path>, path: &Path) -> PathBuf {
    match base {
        Some(b) if path.is_relative() => b.join(path),
        _ => path.to_path_buf(),
    }
}

/// Slot ranges for `n` masters, as `redis-cli --cluster create` assigns them.
fn even_split(n: usize) -> Vec<SlotRange> {
    let per_node = f64::from(SLOT_COUNT) / n.max(1) as f64;
    let mut first = 0i64;
    let mut cursor = 0f64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut last = (cursor + per_node - 1.0).round() as i64;
        if last > i64::from(SLOT_COUNT) - 1 || i == n - 1 {
            last = i64::from(SLOT_COUNT) - 1;
        }
        if last < first {
            last = first;
        }
        out.push(SlotRange {
            start: first.min(i64::from(SLOT_COUNT) - 1) as u16,
            end: last as u16,
        });
        first = last + 1;
        cursor += per_node;
    }
    out
}

/// A node id: 40 hex characters, the same for the same announced address on every proxy.
pub fn node_id(host: &str, port: u16) -> String {
    let digest = sha1_smol::Sha1::from(format!("fjord-node {host}:{port}")).digest();
    digest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
version: 3
proxies:
  - listen: 127.0.0.1:7000
  - { listen: 127.0.0.1:7001, announce: proxy.example:7001 }
shards:
  - id: a
    addr: 127.0.0.1:7101
    slots: [0-8191]
  - id: b
    addr: 127.0.0.1:7102
    slots: [8192-16000, 16001-16383]
";

    #[test]
    fn a_good_file_routes_every_slot() {
        let t = Topology::parse(GOOD, None).unwrap();
        assert_eq!(t.version, 3);
        assert_eq!(t.owner(0), 0);
        assert_eq!(t.owner(8191), 0);
        assert_eq!(t.owner(8192), 1);
        assert_eq!(t.owner(16383), 1);
        assert_eq!(t.nodes[1].endpoint.host, "proxy.example");
        assert_eq!(t.nodes[0].endpoint.id.len(), 40);
        assert_eq!(t.nodes[0].endpoint.id, node_id("127.0.0.1", 7000));
        assert_eq!(t.nodes[0].slots.to_string(), "0-8191");
        assert_eq!(t.nodes[1].slots.to_string(), "8192-16383");
        assert_eq!(t.run_from(100, &SlotSet::all()).end, 8191);
    }

    /// The documented default must parse, and say what the defaults are.
    #[test]
    fn the_default_cluster_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cluster.yaml");
        let t = Topology::load(&path).unwrap();
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(
            t.nodes[0].endpoint.listen,
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(t.nodes[2].slots.to_string(), "10923-16383");
        assert_eq!(t.standalone, Some("127.0.0.1:6380".parse().unwrap()));
        assert_eq!(t.admin, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(t.settings, ProxySettings::default());
        assert_eq!(t.replication, ReplicationPolicy::default());
        let addrs: Vec<&str> = t.shards.iter().map(|s| s.addr.as_str()).collect();
        assert_eq!(
            addrs,
            ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]
        );
        assert_eq!(t.shards[1].admin.as_deref(), Some("127.0.0.1:9102"));
        assert!(t.shards[0].data_dir.as_ref().unwrap().ends_with("data/s1"));
        for (i, s) in t.shards.iter().enumerate() {
            assert_eq!(s.slots, t.nodes[i].slots);
            let replica = t.nodes[i].replica.as_ref().unwrap();
            assert_eq!(replica.listen.port(), 7003 + i as u16);
            assert_eq!(replica.id, node_id("127.0.0.1", 7003 + i as u16));
            assert_eq!(s.replicas.len(), 1);
            assert_eq!(s.replicas[0].addr, format!("127.0.0.1:{}", 7104 + i));
            assert_eq!(s.replicas[0].admin, Some(format!("127.0.0.1:{}", 9104 + i)));
        }
        assert!(t.shards[2].replicas[0]
            .data_dir
            .as_ref()
            .unwrap()
            .ends_with("data/s3-replica"));
    }

    #[test]
    fn a_replica_listener_must_not_reuse_an_address() {
        let text = "version: 1\nproxies:\n  - { listen: 127.0.0.1:7000, replica: { listen: 127.0.0.1:7000 } }\n  - { listen: 127.0.0.1:7001, replica: { listen: 127.0.0.1:7003, announce: nowhere } }\nshards:\n  - { id: s1, addr: 127.0.0.1:7101, slots: [0-16383] }\n";
        let problems = Topology::parse(text, None).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "proxies[0].replica.listen",
                "proxies[0].replica.announce",
                "proxies[1].replica.announce"
            ]
        );
    }

    #[test]
    fn a_replica_address_must_be_unique_and_valid() {
        let text = "version: 1\nproxies: [{listen: 127.0.0.1:7000}]\nshards:\n  - id: s1\n    addr: 127.0.0.1:7101\n    slots: [0-16383]\n    replicas:\n      - addr: 127.0.0.1:7101\n      - addr: nowhere\n";
        let problems = Topology::parse(text, None).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["shards[0].replicas[0].addr", "shards[0].replicas[1].addr"]
        );
    }

    #[test]
    fn the_replication_section_is_checked_against_each_shards_replicas() {
        let one_replica = "version: 1\nproxies: [{listen: 127.0.0.1:7000}]\nreplication: {acks: async, min_insync_replicas: 1}\nshards:\n  - id: s1\n    addr: 127.0.0.1:7101\n    slots: [0-16383]\n    replicas: [{addr: 127.0.0.1:7104}]\n";
        let t = Topology::parse(one_replica, None).unwrap();
        assert_eq!(t.replication.acks, ReplicaAcks::Async);
        assert_eq!(t.replication.min_insync_replicas, 1);
        let problems = Topology::parse(
            &one_replica.replace("replicas: [{addr: 127.0.0.1:7104}]", ""),
            None,
        )
        .unwrap_err();
        assert_eq!(problems[0].path, "shards[0].replicas");
        assert!(problems[0].message.contains("NOREPLICAS"), "{problems:?}");
        let problems =
            Topology::parse(&one_replica.replace("acks: async", "acks: maybe"), None).unwrap_err();
        assert!(
            problems[0].to_string().contains("replication.acks"),
            "{problems:?}"
        );
    }

    #[test]
    fn three_listeners_split_like_redis_cli() {
        let r = even_split(3);
        assert_eq!(
            r.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(),
            vec![(0, 5460), (5461, 10922), (10923, 16383)]
        );
    }

    #[test]
    fn problems_name_the_field_and_its_line() {
        let bad = GOOD
            .replace("slots: [0-8191]", "slots: [0-8192]")
            .replace("id: b", "id: a");
        let problems = Topology::parse(&bad, None).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.contains(
                &"line 11: shards[1].slots[0]: slot 8192 is already owned by shards[0]".to_string()
            ),
            "{text:?}"
        );
        assert!(
            text.contains(&"line 9: shards[1].id: 'a' is used twice".to_string()),
            "{text:?}"
        );
    }

    #[test]
    fn uncovered_slots_and_bad_addresses_are_refused() {
        let bad = GOOD
            .replace("16001-16383", "16001-16382")
            .replace("addr: 127.0.0.1:7102", "addr: nowhere")
            .replace("listen: 127.0.0.1:7000", "listen: :7000");
        let text: Vec<String> = Topology::parse(&bad, None)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert!(
            text.iter()
                .any(|t| t.contains("slots 16383 are owned by no shard")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("line 10: shards[1].addr")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("line 3: proxies[0].listen")),
            "{text:?}"
        );
    }

    #[test]
    fn syntax_errors_and_unknown_fields_carry_a_line() {
        let problems =
            Topology::parse(&GOOD.replace("version: 3", "version: 3\nbogus: 1"), None).unwrap_err();
        assert_eq!(problems[0].line, Some(2), "{problems:?}");
        assert!(problems[0].message.contains("bogus"));
    }
}
