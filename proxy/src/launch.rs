//! Development mode: the proxy starts the local shards of its topology itself.
//!
//! `fjord-proxy --launch-shards` starts one `fjord-shard` per shard that has a `data_dir`,
//! waits until each answers PING, and only then opens its own listeners; on shutdown it stops
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

impl LocalShards {
    /// Starts the shards with a data dir and waits until all of them answer.
    pub async fn start(topology: &Topology, binary: &Path) -> anyhow::Result<Self> {
        let mut shards = Self {
            children: Vec::new(),
        };
        let settings = &topology.settings;
        for s in &topology.shards {
            let Some(dir) = &s.data_dir else {
                tracing::info!(shard = %s.id, "no data_dir: not started here");
                continue;
            };
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut cmd = Command::new(binary);
            cmd.arg("--listen")
                .arg(&s.addr)
                .arg("--data-dir")
                .arg(dir)
                .arg("--fsync")
                .arg(&settings.local_shard_fsync)
                .args(["--io-threads", "1"]);
            if let Some(password) = &settings.shard_password {
                cmd.arg("--requirepass").arg(password);
            }
            if let Some(admin) = &s.admin {
                cmd.arg("--admin").arg(admin);
            }
            if !settings.record_metrics {
                cmd.args(["--record-metrics", "false"]);
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {} for shard {}", binary.display(), s.id))?;
            tracing::info!(shard = %s.id, addr = %s.addr, dir = %dir.display(), pid = child.id(), "started local shard");
            shards.children.push((s.id.clone(), child));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for s in topology.shards.iter().filter(|s| s.data_dir.is_some()) {
            loop {
                if answers_ping(&s.addr).await {
                    break;
                }
                shards.check_alive()?;
                if Instant::now() > deadline {
                    bail!("shard {} at {} did not answer within 60 s", s.id, s.addr);
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
