//! Development mode: the proxy starts the local shards of its topology itself.
//!
//! `fjord-proxy --launch-shards` starts one `fjord-shard` per shard and per replica that has a
//! `data_dir` (replicas with `--replica-of` their shard's address), waits until each shard
//! answers PING and each replica's link is up, and only then opens its own listeners. A
//! local shard that dies is started again within about a second (a replica then resumes from
//! its oplog). On shutdown it stops them (SIGTERM, then SIGKILL after a grace period). Production runs shards as their own
//! services and never uses this.

use anyhow::{bail, Context};
use fjord_common::topology::Topology;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often the supervisor looks for local shards that died.
const SUPERVISE_EVERY: Duration = Duration::from_millis(250);
/// Least time between two starts of one local shard, so one that dies at once does not spin.
const RESTART_GAP: Duration = Duration::from_secs(1);

/// The shard processes started by this proxy. A process that dies is started again (same
/// address, data and role), until [`LocalShards::stop`].
pub struct LocalShards {
    running: Arc<Mutex<Vec<Running>>>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

/// A process to start: a shard's primary or one of its replicas.
#[derive(Clone, Debug)]
struct Local {
    /// `s1`, or `s1-replica-1`.
    name: String,
    addr: String,
    dir: PathBuf,
    admin: Option<String>,
    /// The primary a replica follows.
    replica_of: Option<String>,
}

/// A started process and how to start it again.
struct Running {
    local: Local,
    child: Child,
    started: Instant,
}

/// What every local shard is started with.
#[derive(Clone)]
struct Launch {
    binary: PathBuf,
    fsync: String,
    password: Option<String>,
    record_metrics: bool,
    replication: fjord_common::topology::ReplicationPolicy,
}

impl LocalShards {
    /// Starts the shards and replicas with a data dir and waits until all of them answer
    /// and every replica's link to its primary is up.
    pub async fn start(topology: &Topology, binary: &Path) -> anyhow::Result<Self> {
        let settings = &topology.settings;
        let launch = Launch {
            binary: binary.to_path_buf(),
            fsync: settings.local_shard_fsync.clone(),
            password: settings.shard_password.clone(),
            record_metrics: settings.record_metrics,
            replication: topology.replication,
        };
        let mut locals = Vec::new();
        for s in &topology.shards {
            match &s.data_dir {
                Some(dir) => locals.push(Local {
                    name: s.id.clone(),
                    addr: s.addr.clone(),
                    dir: dir.clone(),
                    admin: s.admin.clone(),
                    replica_of: None,
                }),
                None => tracing::info!(shard = %s.id, "no data_dir: not started here"),
            }
            for (i, r) in s.replicas.iter().enumerate() {
                if let Some(dir) = &r.data_dir {
                    locals.push(Local {
                        name: format!("{}-replica-{}", s.id, i + 1),
                        addr: r.addr.clone(),
                        dir: dir.clone(),
                        admin: r.admin.clone(),
                        replica_of: Some(s.addr.clone()),
                    });
                }
            }
        }
        let mut shards = Self {
            running: Arc::new(Mutex::new(Vec::new())),
            supervisor: None,
        };
        for local in &locals {
            let child = spawn(local, &launch)?;
            tracing::info!(shard = %local.name, addr = %local.addr, dir = %local.dir.display(), pid = child.id(), "started local shard");
            shards.lock().push(Running {
                local: local.clone(),
                child,
                started: Instant::now(),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let password = launch.password.as_deref();
        for local in &locals {
            loop {
                let ready = match local.replica_of {
                    None => answers_ping(&local.addr).await,
                    Some(_) => link_is_up(&local.addr, password).await,
                };
                if ready {
                    break;
                }
                shards.check_alive()?;
                if Instant::now() > deadline {
                    match &local.replica_of {
                        None => bail!(
                            "shard {} at {} did not answer within 60 s",
                            local.name,
                            local.addr
                        ),
                        Some(p) => bail!(
                            "replica {} at {} did not link up with {p} within 60 s",
                            local.name,
                            local.addr
                        ),
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        shards.supervisor = Some(tokio::spawn(supervise(Arc::clone(&shards.running), launch)));
        Ok(shards)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for r in self.lock().iter_mut() {
            if let Some(status) = r.child.try_wait()? {
                bail!(
                    "local shard {} exited during start-up ({status})",
                    r.local.name
                );
            }
        }
        Ok(())
    }

    /// Stops the shards: SIGTERM (they flush and exit), SIGKILL after `grace`. Nothing is
    /// restarted from here on.
    pub fn stop(&mut self, grace: Duration) {
        if let Some(s) = self.supervisor.take() {
            s.abort();
        }
        let mut running = std::mem::take(&mut *self.lock());
        for r in &running {
            // SAFETY: kill only sends a signal to a child we started.
            unsafe {
                libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for r in &mut running {
            let id = &r.local.name;
            loop {
                match r.child.try_wait() {
                    Ok(Some(status)) => {
                        tracing::info!(shard = %id, %status, "local shard stopped");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        tracing::warn!(shard = %id, "local shard did not stop in time; killing it");
                        let _ = r.child.kill();
                        let _ = r.child.wait();
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for LocalShards {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Starts again every local shard that died, as it was started: a primary comes back as
/// the primary, a replica resumes from its oplog.
async fn supervise(running: Arc<Mutex<Vec<Running>>>, launch: Launch) {
    loop {
        tokio::time::sleep(SUPERVISE_EVERY).await;
        let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
        for r in running.iter_mut() {
            let Ok(Some(status)) = r.child.try_wait() else {
                continue;
            };
            if r.started.elapsed() < RESTART_GAP {
                continue;
            }
            tracing::warn!(shard = %r.local.name, %status, "local shard died; starting it again");
            match spawn(&r.local, &launch) {
                Ok(child) => {
                    tracing::info!(shard = %r.local.name, pid = child.id(), "local shard started again");
                    r.child = child;
                    r.started = Instant::now();
                }
                Err(e) => {
                    tracing::error!(shard = %r.local.name, error = %format!("{e:#}"), "could not start a local shard again")
                }
            }
        }
    }
}

fn spawn(local: &Local, launch: &Launch) -> anyhow::Result<Child> {
    std::fs::create_dir_all(&local.dir)
        .with_context(|| format!("creating {}", local.dir.display()))?;
    let mut cmd = Command::new(&launch.binary);
    cmd.arg("--listen")
        .arg(&local.addr)
        .arg("--data-dir")
        .arg(&local.dir)
        .arg("--fsync")
        .arg(&launch.fsync)
        .args(["--io-threads", "1"])
        .args(["--replica-acks", launch.replication.acks.name()])
        .arg("--min-insync-replicas")
        .arg(launch.replication.min_insync_replicas.to_string());
    if let Some(password) = &launch.password {
        cmd.arg("--requirepass").arg(password);
    }
    if let Some(admin) = &local.admin {
        cmd.arg("--admin").arg(admin);
    }
    if let Some(primary) = &local.replica_of {
        cmd.arg("--replica-of").arg(primary);
    }
    if !launch.record_metrics {
        cmd.args(["--record-metrics", "false"]);
    }
    cmd.spawn().with_context(|| {
        format!(
            "starting {} for shard {}",
            launch.binary.display(),
            local.name
        )
    })
}

/// Whether the replica at `addr` reports its link to its primary up.
async fn link_is_up(addr: &str, password: Option<&str>) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut request = Vec::new();
        if let Some(p) = password {
            request.extend_from_slice(
                format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{p}\r\n", p.len()).as_bytes(),
            );
        }
        request.extend_from_slice(b"INFO replication\r\n");
        stream.write_all(&request).await.ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // The INFO text is short; read until its link line has come.
        while !buf.windows(18).any(|w| w == b"master_link_status") || !buf.ends_with(b"\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(String::from_utf8_lossy(&buf).contains("master_link_status:up"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

async fn answers_ping(addr: &str) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).await.ok()?;
        // A password-protected shard answers NOAUTH: it is up all the same.
        Some(buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
