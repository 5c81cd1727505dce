//! Helpers for fjord's end-to-end tests: start the real binaries and a real `redis-server` on
//! free loopback addresses, and talk RESP to them byte for byte.
//!
//! Every process started here is stopped when its handle is dropped, also when a test fails.

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod etcd;
pub mod faults;
pub mod load;
pub mod metrics;
pub mod redis_suite;

/// Folder with the release binaries (`tests/run.sh` builds them before the tests run).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FJORD_BIN_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release")
}

fn binary(name: &str) -> Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build with `cargo build --release` (tests/run.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// A running `fjord-shard` on a free port.
pub struct Shard {
    child: Child,
    /// The shard's own pid when it runs under a wrapper (killing strace leaves its tracee).
    wrapped_pid: Option<i32>,
    pub addr: String,
    /// The admin HTTP address (metrics, health), when started with one.
    pub admin: Option<String>,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// How to start a shard.
#[derive(Clone, Debug)]
pub struct ShardOptions {
    pub fsync: &'static str,
    pub data_dir: Option<PathBuf>,
    /// Listen here instead of a free port (to restart a shard where the proxy expects it).
    pub listen: Option<String>,
    pub extra_args: Vec<String>,
    /// Run the shard under this wrapper (e.g. `strace -f -o FILE`).
    pub wrapper: Vec<String>,
    /// Open the admin HTTP port (metrics, health) on a free port.
    pub admin: bool,
}

impl Default for ShardOptions {
    fn default() -> Self {
        Self {
            fsync: "everysec",
            data_dir: None,
            listen: None,
            extra_args: vec![],
            wrapper: vec![],
            admin: false,
        }
    }
}

impl Shard {
    pub fn start() -> Result<Self> {
        Self::start_with(ShardOptions::default())
    }

    pub fn start_with(opts: ShardOptions) -> Result<Self> {
        let (temp, data_dir) = match opts.data_dir.clone() {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir()?;
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let bin = binary("fjord-shard")?;
        let mut cmd = match opts.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.arg("--listen")
            .arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .args(["--fsync", opts.fsync, "--data-dir"])
            .arg(&data_dir)
            .args(["--io-threads", "2"])
            .args(
                opts.admin
                    .then_some(["--admin", "127.0.0.1:0"])
                    .into_iter()
                    .flatten(),
            )
            .args(&opts.extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let lines = read_lines_until(&mut child, |l| l.starts_with("fjord-shard listening on "))?;
        let after = |prefix: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .map(String::from)
        };
        let addr = after("fjord-shard listening on ").context("no listen line")?;
        let admin = after("fjord-shard admin on ");
        let wrapped_pid = match opts.wrapper.is_empty() {
            true => None,
            false => {
                let info = RawClient::tcp(&addr)?.call_str(&["INFO", "server"])?;
                info.lines()
                    .find_map(|l| l.strip_prefix("process_id:"))
                    .and_then(|p| p.trim().parse().ok())
            }
        };
        Ok(Self {
            child,
            wrapped_pid,
            addr,
            admin,
            data_dir,
            _temp: temp,
        })
    }

    pub fn client(&self) -> Result<RawClient> {
        RawClient::tcp(&self.addr)
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(pid) = self.wrapped_pid.take() {
            // SAFETY: sending a signal to the shard this handle started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs, or how it ended, for failure messages. Peeks without
    /// reaping it, so [`Shard::kill9`] and [`Shard::wait_exit`] still work.
    pub fn describe(&self) -> String {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter; waitid with WNOWAIT only reads
        // the state of our own child.
        let (r, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            (r, info)
        };
        if r != 0 {
            return format!("unknown ({})", std::io::Error::last_os_error());
        }
        // SAFETY: waitid filled the fields of a child's state change (or left them zero).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        match info.si_code {
            _ if pid == 0 => "running".to_string(),
            libc::CLD_EXITED => format!("exited with code {status}"),
            _ => format!("killed by signal {status}"),
        }
    }

    /// The shard's process id.
    pub fn pid(&self) -> i32 {
        self.wrapped_pid.unwrap_or(self.child.id() as i32)
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn terminate(&mut self) -> Result<Option<i32>> {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.wait_exit()
    }

    /// Waits (up to 20 s) for the shard to exit on its own; returns the exit status code.
    pub fn wait_exit(&mut self) -> Result<Option<i32>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                bail!("shard did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads the child's stdout lines up to and including the first that satisfies `done`, then
/// keeps draining stdout in the background so the child never blocks on a full pipe.
fn read_lines_until(child: &mut Child, done: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("process exited before it was ready; it printed {lines:?}");
        }
        let line = line.trim().to_string();
        let finished = done(&line);
        lines.push(line);
        if finished {
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
            });
            return Ok(lines);
        }
    }
}

/// Where a test cluster's topology lives: the cluster file the proxy reads, or a 3-member
/// etcd the proxy follows with `--store` (issue 16). Either way the cluster file holds the
/// first document, whose listeners and settings the proxy takes (it ignores the topology
/// part when a store is given).
pub enum TopologyStore {
    File(PathBuf),
    Etcd {
        // Boxed: a cluster's handle is large, and test enums hold a `Cluster`.
        _etcd: Box<etcd::EtcdCluster>,
        url: String,
    },
}

impl TopologyStore {
    /// Writes `text` to `file`, and with `in_etcd` starts an etcd and imports it there.
    pub fn create(in_etcd: bool, file: &Path, text: &str) -> Result<Self> {
        std::fs::write(file, text)?;
        if !in_etcd {
            return Ok(Self::File(file.to_path_buf()));
        }
        let etcd = etcd::EtcdCluster::start(3)?;
        let url = etcd.url("fjord");
        let store = Self::Etcd {
            _etcd: Box::new(etcd),
            url,
        };
        let out = store.admin().arg("import").arg(file).output()?;
        if !out.status.success() {
            bail!(
                "fjord-admin import: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(store)
    }

    /// `--config FILE` or `--store URL`, as `fjord-admin` takes them.
    pub fn args(&self) -> [std::ffi::OsString; 2] {
        match self {
            Self::File(file) => ["--config".into(), file.into()],
            Self::Etcd { url, .. } => ["--store".into(), url.into()],
        }
    }

    /// What the proxy takes besides `--config FILE`.
    pub fn proxy_args(&self) -> Vec<&str> {
        match self {
            Self::File(_) => vec![],
            Self::Etcd { url, .. } => vec!["--store", url],
        }
    }

    /// `fjord-admin` on this store, logging warnings only.
    pub fn admin(&self) -> Command {
        let mut command = Command::new(bin_dir().join("fjord-admin"));
        command.args(self.args()).env("RUST_LOG", "warn");
        command
    }

    /// The topology document as the store holds it.
    pub fn text(&self) -> Result<String> {
        match self {
            Self::File(file) => Ok(std::fs::read_to_string(file)?),
            Self::Etcd { .. } => {
                let out = self.admin().arg("export").output()?;
                if !out.status.success() {
                    bail!(
                        "fjord-admin export: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Ok(String::from_utf8(out.stdout)?)
            }
        }
    }

    pub fn topology(&self) -> Result<fjord_common::topology::Topology> {
        fjord_common::topology::Topology::parse(&self.text()?, None)
            .map_err(|problems| anyhow::anyhow!("the stored topology is invalid: {problems:?}"))
    }
}

/// A running `fjord-proxy` in front of its own shards, all on free ports: shaped like the
/// default local cluster (three shards, three cluster listeners, a standalone listener).
pub struct Cluster {
    proxy: Child,
    pub shards: Vec<Shard>,
    /// Cluster listeners, as `host:port`.
    pub nodes: Vec<String>,
    /// With [`ClusterOptions::replicas`]: each shard's replica, and the replica listeners
    /// (as `host:port`, in the order of `nodes`).
    pub replicas: Vec<Shard>,
    pub replica_nodes: Vec<String>,
    pub standalone: String,
    /// The admin HTTP listener.
    pub admin: String,
    /// The cluster file the proxy reads (rewrite it to test reloads). With
    /// [`ClusterOptions::etcd`] it holds only the proxy's listeners and settings that count.
    pub config: PathBuf,
    /// Where the topology lives.
    pub store: TopologyStore,
    settings: Vec<String>,
    _dir: tempfile::TempDir,
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub shards: usize,
    /// Extra lines for the `settings:` section, e.g. `"  requirepass: secret"`.
    pub settings: Vec<String>,
    pub shard: ShardOptions,
    /// A replica for each shard, and a replica listener for each cluster listener (the
    /// six-node layout of the default local cluster).
    pub replicas: bool,
    /// The topology in a 3-member etcd rather than in the cluster file.
    pub etcd: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            shards: 3,
            settings: vec![],
            shard: ShardOptions::default(),
            replicas: false,
            etcd: false,
        }
    }
}

impl Cluster {
    pub fn start() -> Result<Self> {
        Self::start_with(ClusterOptions::default())
    }

    pub fn start_with(opts: ClusterOptions) -> Result<Self> {
        let shards = (0..opts.shards)
            .map(|_| Shard::start_with(opts.shard.clone()))
            .collect::<Result<Vec<_>>>()?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("cluster.yaml");
        let per = 16384 / opts.shards;
        let ranges: Vec<(usize, usize)> = (0..opts.shards)
            .map(|i| {
                let end = if i + 1 == opts.shards {
                    16383
                } else {
                    (i + 1) * per - 1
                };
                (i * per, end)
            })
            .collect();
        let addrs: Vec<&str> = shards.iter().map(|s| s.addr.as_str()).collect();
        let replicas = match opts.replicas {
            true => addrs
                .iter()
                .map(|primary| {
                    let mut options = opts.shard.clone();
                    options.data_dir = None;
                    options.listen = None;
                    options
                        .extra_args
                        .extend(["--replica-of".into(), primary.to_string()]);
                    Shard::start_with(options)
                })
                .collect::<Result<Vec<_>>>()?,
            false => Vec::new(),
        };
        let replica_addrs: Vec<&str> = replicas.iter().map(|s| s.addr.as_str()).collect();
        let ranges: Vec<Vec<(usize, usize)>> = ranges.into_iter().map(|r| vec![r]).collect();
        let layout = Layout {
            shards: &addrs,
            replicas: &replica_addrs,
            settings: &opts.settings,
        };
        let store = TopologyStore::create(opts.etcd, &config, &layout.yaml(1, &ranges))?;
        let (proxy, lines) = start_proxy(&config, &store.proxy_args())?;
        let nodes = lines
            .iter()
            .filter_map(|l| l.strip_prefix("fjord-proxy listening on cluster "))
            .map(String::from)
            .collect();
        // `listening on replica A of B`, in the order of the masters.
        let replica_nodes = lines
            .iter()
            .filter_map(|l| l.strip_prefix("fjord-proxy listening on replica "))
            .filter_map(|l| l.split_once(" of ").map(|(a, _)| a.to_string()))
            .collect();
        let standalone = lines
            .iter()
            .find_map(|l| l.strip_prefix("fjord-proxy listening on standalone "))
            .context("no standalone listener")?
            .to_string();
        let admin = lines
            .iter()
            .find_map(|l| l.strip_prefix("fjord-proxy listening on admin "))
            .context("no admin listener")?
            .to_string();
        Ok(Self {
            admin,
            proxy,
            shards,
            nodes,
            replicas,
            replica_nodes,
            standalone,
            config,
            store,
            settings: opts.settings,
            _dir: dir,
        })
    }

    /// A client of the first cluster listener.
    pub fn client(&self) -> Result<RawClient> {
        RawClient::tcp(&self.nodes[0])
    }

    /// A client of the standalone listener.
    pub fn standalone_client(&self) -> Result<RawClient> {
        RawClient::tcp(&self.standalone)
    }

    /// Rewrites the cluster file with these shard slot ranges (same shards, same order).
    pub fn write_topology(&self, version: u64, ranges: &[Vec<(usize, usize)>]) -> Result<()> {
        let addrs: Vec<&str> = self.shards.iter().map(|s| s.addr.as_str()).collect();
        let replicas: Vec<&str> = self.replicas.iter().map(|s| s.addr.as_str()).collect();
        let layout = Layout {
            shards: &addrs,
            replicas: &replicas,
            settings: &self.settings,
        };
        write_atomically(&self.config, &layout.yaml(version, ranges))
    }

    /// Sends SIGHUP to the proxy (reload the cluster file).
    pub fn sighup(&self) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.proxy.id() as i32, libc::SIGHUP);
        }
    }
}

/// One HTTP/1.1 request without a body; returns the status code and the body.
pub fn http(addr: &str, method: &str, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status line")?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = match chunked {
        true => dechunk(body)?,
        false => body.to_string(),
    };
    Ok((status, body))
}

/// The body of a `Transfer-Encoding: chunked` response (Prometheus's API answers so).
fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").context("chunk size line")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).context("short chunk")?);
        body = rest[size..]
            .strip_prefix("\r\n")
            .context("chunk not terminated")?;
    }
}

/// A loopback port that was free a moment ago, for servers that cannot bind port 0 and say
/// which port they got (Prometheus). Another process could take it in between; tests that use
/// it fail loudly at start-up if so.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Replaces a file's content in one step (as a careful operator or a config tool would).
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// What a test cluster's file describes: shards (and a replica of each, or none), and the
/// extra lines of its `settings:`.
struct Layout<'a> {
    shards: &'a [&'a str],
    replicas: &'a [&'a str],
    settings: &'a [String],
}

impl Layout<'_> {
    /// The cluster file: three cluster listeners (each with a replica listener when the
    /// shards have replicas), standalone and admin on free ports, and the shards with these
    /// slot ranges.
    fn yaml(&self, version: u64, ranges: &[Vec<(usize, usize)>]) -> String {
        let mut text = format!("version: {version}\nproxies:\n");
        for _ in 0..3 {
            text.push_str("  - listen: 127.0.0.1:0\n");
            if !self.replicas.is_empty() {
                text.push_str("    replica: { listen: 127.0.0.1:0 }\n");
            }
        }
        text.push_str("standalone: 127.0.0.1:0\nadmin: 127.0.0.1:0\n");
        if !self.settings.is_empty() {
            text.push_str("settings:\n");
            for s in self.settings {
                text.push_str(s);
                text.push('\n');
            }
        }
        text.push_str("shards:\n");
        for (i, (addr, r)) in self.shards.iter().zip(ranges).enumerate() {
            let slots: Vec<String> = r.iter().map(|(a, b)| format!("{a}-{b}")).collect();
            let replicas = match self.replicas.get(i) {
                Some(replica) => format!(", replicas: [{{ addr: \"{replica}\" }}]"),
                None => String::new(),
            };
            text.push_str(&format!(
                "  - {{ id: s{}, addr: \"{addr}\", slots: [{}]{replicas} }}\n",
                i + 1,
                slots.join(", ")
            ));
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// Starts `fjord-proxy --config FILE ARGS…` and waits until it is ready; returns it with
/// the lines it printed (its listeners' addresses).
pub fn start_proxy(config: &Path, args: &[&str]) -> Result<(Child, Vec<String>)> {
    start_proxy_with_env(config, args, &[])
}

/// [`start_proxy`] with these variables in its environment.
pub fn start_proxy_with_env(
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(Child, Vec<String>)> {
    let mut proxy = Command::new(binary("fjord-proxy")?)
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting fjord-proxy")?;
    let lines = read_lines_until(&mut proxy, |l| l == "fjord-proxy ready")?;
    Ok((proxy, lines))
}

/// A running `fjord-admin controller`, stopped when dropped.
pub struct Controller {
    child: Child,
    /// Its admin HTTP address (metrics).
    pub admin: String,
}

impl Controller {
    /// Starts `fjord-admin --config FILE controller --probe-ms N` with its admin port on a
    /// free one. Its log goes to `log`.
    pub fn start(config: &Path, probe_ms: u64, log: Stdio) -> Result<Self> {
        let store = ["--config".as_ref(), config.as_os_str()];
        Self::start_on(&store, probe_ms, log)
    }

    /// The same on the store `store` names (`--config FILE` or `--store URL`).
    pub fn start_on<S: AsRef<std::ffi::OsStr>>(
        store: &[S],
        probe_ms: u64,
        log: Stdio,
    ) -> Result<Self> {
        let mut child = Command::new(binary("fjord-admin")?)
            .args(store)
            .args(["controller", "--probe-ms", &probe_ms.to_string()])
            .args(["--admin", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting fjord-admin controller")?;
        let lines = read_lines_until(&mut child, |l| l.starts_with("fjord-admin admin on "))?;
        let admin = lines
            .iter()
            .find_map(|l| l.strip_prefix("fjord-admin admin on "))
            .context("no admin line")?
            .to_string();
        Ok(Self { child, admin })
    }
}

impl Controller {
    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`).
    pub fn pause(&self, stop: bool) {
        pause_process(self.child.id() as i32, stop);
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.pause(false);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `redis-server` on a Unix socket in a temporary folder (no port to race for).
pub struct RedisServer {
    child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start(extra: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (apt-get install redis-server)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not come up");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            socket,
            _dir: dir,
        })
    }

    pub fn client(&self) -> Result<RawClient> {
        RawClient::unix(&self.socket)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Redis Cluster of three masters without replicas (`appendonly yes`, `appendfsync
/// everysec`) on free loopback ports, each with its bus port (+10000) free too.
pub struct RedisCluster {
    children: Vec<Child>,
    /// The masters, as `host:port`.
    pub nodes: Vec<String>,
    dir: tempfile::TempDir,
}

impl RedisCluster {
    pub fn start() -> Result<Self> {
        // Built first, so whatever started is stopped if a later step fails.
        let mut cluster = Self {
            children: Vec::new(),
            nodes: Vec::new(),
            dir: tempfile::tempdir()?,
        };
        for i in 0..3 {
            let port = loop {
                let p = free_port()?;
                if p < 55536 && std::net::TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
                    break p;
                }
            };
            let node_dir = cluster.dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--save", ""])
                .args(["--appendonly", "yes", "--appendfsync", "everysec"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting redis-server (apt-get install redis-server)")?;
            cluster.children.push(child);
            let addr = format!("127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(&addr).is_err() {
                if Instant::now() > deadline {
                    bail!("redis-server on {addr} did not come up");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            cluster.nodes.push(addr);
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&cluster.nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .context("running redis-cli --cluster create")?;
        if !created.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&created.stdout)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &cluster.nodes {
            while !RawClient::tcp(node)?
                .call_str(&["CLUSTER", "INFO"])?
                .contains("cluster_state:ok")
            {
                if Instant::now() > deadline {
                    bail!("Redis Cluster did not reach cluster_state:ok");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(cluster)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A client that sends commands and returns each reply's exact bytes.
pub struct RawClient {
    stream: Box<dyn Stream>,
    buf: BytesMut,
    resp3: bool,
}

impl RawClient {
    pub fn tcp(addr: &str) -> Result<Self> {
        let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self::new(Box::new(s)))
    }

    pub fn unix(path: &Path) -> Result<Self> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self::new(Box::new(s)))
    }

    fn new(stream: Box<dyn Stream>) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            resp3: false,
        }
    }

    /// Sends raw bytes as they are (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Sends one command without waiting for its reply (pipelining).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let mut out = BytesMut::new();
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// Reads one complete reply and returns its bytes.
    pub fn read_reply(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(len) = self.frame_len()? {
                return Ok(self.buf.split_to(len).to_vec());
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// `read_reply` as text: a pipelined reply, for assertions.
    pub fn read_str(&mut self) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read_reply()?).into_owned())
    }

    /// Reads the replies to come as RESP3 (or RESP2): for a pipeline that switches with
    /// `HELLO`, whose replies `call` cannot track.
    pub fn expect_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
    }

    /// Whether the server closed the connection (reads until EOF or timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0))
    }

    fn frame_len(&self) -> Result<Option<usize>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let r = if self.resp3 {
            redis_protocol::resp3::decode::complete::decode(&self.buf).map(|o| o.map(|(_, n)| n))
        } else {
            redis_protocol::resp2::decode::decode(&self.buf).map(|o| o.map(|(_, n)| n))
        };
        r.map_err(|e| anyhow::anyhow!("undecodable reply: {e:?}"))
    }

    /// Sends a command and returns its reply's bytes. Tracks `HELLO 2|3` for decoding.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Vec<u8>> {
        self.send(args)?;
        let was_resp3 = self.resp3;
        let hello = args.len() >= 2 && args[0].as_ref().eq_ignore_ascii_case(b"hello");
        if hello {
            // The HELLO reply itself already comes in the requested protocol.
            self.resp3 = args[1].as_ref() == b"3";
        }
        let reply = self.read_reply()?;
        if hello && reply.starts_with(b"-") {
            self.resp3 = was_resp3;
        }
        Ok(reply)
    }

    /// `call` with the reply as text, for assertions.
    pub fn call_str<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.call(args)?).into_owned())
    }
}

/// Splits a command line into arguments (for readable scripted tests).
pub fn words(line: &str) -> Vec<Vec<u8>> {
    line.split_whitespace()
        .map(|w| w.as_bytes().to_vec())
        .collect()
}

/// Every key a server holds, with its type, absolute expiry and value as the server replies
/// them: two servers hold the same data exactly when their datasets are equal (a replica
/// and its primary at quiesce). Collections are read whole, in the order the server keeps.
pub fn dataset(addr: &str) -> Result<std::collections::BTreeMap<Vec<u8>, Vec<String>>> {
    use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};
    let mut c = RawClient::tcp(addr)?;
    let keys = c.call(&["KEYS", "*"])?;
    let (frame, _) = redis_protocol::resp2::decode::decode(&keys)
        .map_err(|e| anyhow::anyhow!("undecodable KEYS reply: {e:?}"))?
        .context("incomplete KEYS reply")?;
    let OwnedFrame::Array(keys) = frame else {
        bail!("KEYS answered {frame:?}");
    };
    let keys = keys
        .iter()
        .map(|k| Ok(k.as_bytes().context("a key that is not a string")?.to_vec()))
        .collect::<Result<Vec<_>>>()?;
    let mut out = std::collections::BTreeMap::new();
    // Pipelined rounds: the fault tests compare datasets of many keys after every cycle.
    for round in keys.chunks(256) {
        for key in round {
            c.send(&[&b"TYPE"[..], key])?;
        }
        let mut reads = Vec::new();
        for key in round {
            let kind = c.read_str()?;
            let read: &[&[u8]] = match kind.trim() {
                "+string" => &[b"GET"],
                "+hash" => &[b"HGETALL"],
                "+set" => &[b"SMEMBERS"],
                "+zset" => &[b"ZRANGE", b"0", b"-1", b"WITHSCORES"],
                "+list" => &[b"LRANGE", b"0", b"-1"],
                "+none" => continue, // expired or deleted since KEYS
                other => bail!("unexpected type {other}"),
            };
            reads.push((key, kind, read));
        }
        for (key, _, read) in &reads {
            let mut args: Vec<&[u8]> = vec![read[0], key];
            args.extend_from_slice(&read[1..]);
            c.send(&args)?;
            c.send(&[&b"PEXPIRETIME"[..], key])?;
        }
        for (key, kind, _) in reads {
            let value = c.read_str()?;
            let expiry = c.read_str()?;
            out.insert(key.clone(), vec![kind, expiry, value]);
        }
    }
    Ok(out)
}

/// One field of a server's INFO section (`None` if it does not answer or has no such field).
pub fn info_field(addr: &str, section: &str, name: &str) -> Option<String> {
    let text = RawClient::tcp(addr)
        .ok()?
        .call_str(&["INFO", section])
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// A count a long run sets through the environment (`tests/bench/run-*-proof.sh`), or
/// `default` in the suite.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// SIGSTOP (`true`) or SIGCONT (`false`) to process `pid`. A stop returns once every thread of
/// the process has stopped: kill() returns before they have, and a test that acted on a
/// process it took for frozen saw it answer one more request.
pub fn pause_process(pid: i32, stop: bool) {
    let signal = if stop { libc::SIGSTOP } else { libc::SIGCONT };
    // SAFETY: a signal to a process the test started.
    unsafe {
        libc::kill(pid, signal);
    }
    if stop {
        assert!(
            eventually(Duration::from_secs(10), || all_threads_stopped(pid)),
            "process {pid} did not stop"
        );
    }
}

fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    })
}

/// Polls `check` every 20 ms until it holds or `within` passes; whether it held.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
