//! Development mode: the proxy starts the local shards of its topology itself.
//!
//! `fjord-proxy --launch-shards` starts one `fjord-shard` per shard and per replica that has a
//! `data_dir` (replicas with `--replica-of` their shard's address), waits until each shard
//! answers PING and each replica's link is up, and only then opens its own listeners; on shutdown it stops
//! them (SIGTERM, then SIGKILL after a grace period). Production runs shards as their own
//! services and never uses this.

use anyhow::{bail, Context};
use fjord_common::topology::Topology;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shard processes started by this proxy.
pub struct LocalShards {
    children: Vec<(String, Child)>,
}

/// A process to start: a shard's primary or one of its replicas.
struct Local<'a> {
    /// `s1`, or `s1-replica-1`.
    name: String,
    addr: &'a str,
    dir: &'a Path,
    admin: Option<&'a str>,
    /// The primary a replica follows.
    replica_of: Option<&'a str>,
}

impl LocalShards {
    /// Starts the shards and replicas with a data dir and waits until all of them answer
    /// and every replica's link to its primary is up.
    pub async fn start(topology: &Topology, binary: &Path) -> anyhow::Result<Self> {
        let mut shards = Self {
            children: Vec::new(),
        };
        let mut locals = Vec::new();
        for s in &topology.shards {
            match &s.data_dir {
                Some(dir) => locals.push(Local {
                    name: s.id.clone(),
                    addr: &s.addr,
                    dir,
                    admin: s.admin.as_deref(),
                    replica_of: None,
                }),
                None => tracing::info!(shard = %s.id, "no data_dir: not started here"),
            }
            for (i, r) in s.replicas.iter().enumerate() {
                if let Some(dir) = &r.data_dir {
                    locals.push(Local {
                        name: format!("{}-replica-{}", s.id, i + 1),
                        addr: &r.addr,
                        dir,
                        admin: r.admin.as_deref(),
                        replica_of: Some(&s.addr),
                    });
                }
            }
        }
        for local in &locals {
            let child = spawn(local, topology, binary)?;
            tracing::info!(shard = %local.name, addr = %local.addr, dir = %local.dir.display(), pid = child.id(), "started local shard");
            shards.children.push((local.name.clone(), child));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let password = topology.settings.shard_password.as_deref();
        for local in &locals {
            loop {
                let ready = match local.replica_of {
                    None => answers_ping(local.addr).await,
                    Some(_) => link_is_up(local.addr, password).await,
                };
                if ready {
                    break;
                }
                shards.check_alive()?;
                if Instant::now() > deadline {
                    match local.replica_of {
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
        Ok(shards)
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (id, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!("local shard {id} exited during start-up ({status})");
            }
        }
        Ok(())
    }

    /// Stops the shards: SIGTERM (they flush and exit), SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        for (_, child) in &self.children {
            // SAFETY: kill only sends a signal to a child we started.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for (id, child) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        tracing::info!(shard = %id, %status, "local shard stopped");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        tracing::warn!(shard = %id, "local shard did not stop in time; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for LocalShards {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

fn spawn(local: &Local<'_>, topology: &Topology, binary: &Path) -> anyhow::Result<Child> {
    let settings = &topology.settings;
    std::fs::create_dir_all(local.dir)
        .with_context(|| format!("creating {}", local.dir.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("--listen")
        .arg(local.addr)
        .arg("--data-dir")
        .arg(local.dir)
        .arg("--fsync")
        .arg(&settings.local_shard_fsync)
        .args(["--io-threads", "1"]);
    if let Some(password) = &settings.shard_password {
        cmd.arg("--requirepass").arg(password);
    }
    if let Some(admin) = local.admin {
        cmd.arg("--admin").arg(admin);
    }
    if let Some(primary) = local.replica_of {
        cmd.arg("--replica-of").arg(primary);
    }
    if !settings.record_metrics {
        cmd.args(["--record-metrics", "false"]);
    }
    cmd.spawn()
        .with_context(|| format!("starting {} for shard {}", binary.display(), local.name))
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
