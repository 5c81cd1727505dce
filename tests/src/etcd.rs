//! A real etcd cluster (Debian's `etcd-server`) for the tests of the etcd topology store.
//!
//! Members listen on loopback ports below 32768, which the kernel never hands out for port 0
//! (its ephemeral range starts there), so no test's own connections take them. Their data
//! lives in `/dev/shm` (fsync there costs nothing), and a heartbeat of 200 ms with an
//! election timeout of 2 s keeps a loaded two-core machine from holding elections.

use anyhow::{bail, Context, Result};
use rand::Rng;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member: its process (None while killed), ports and data folder.
struct Member {
    name: String,
    child: Option<Child>,
    client: u16,
    peer: u16,
}

/// A running etcd cluster, stopped and removed when dropped.
pub struct EtcdCluster {
    members: Vec<Member>,
    data: tempfile::TempDir,
    initial_cluster: String,
}

/// Two free loopback ports below 32768, for a member's client and peer URLs.
fn two_ports() -> Result<(u16, u16)> {
    let mut rng = rand::thread_rng();
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    for _ in 0..1000 {
        let p = rng.gen_range(20000..32000u16) & !1;
        if free(p) && free(p + 1) {
            return Ok((p, p + 1));
        }
    }
    bail!("no two free ports below 32768")
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster has a leader.
    pub fn start(n: usize) -> Result<Self> {
        let shm = std::path::Path::new("/dev/shm");
        let data = match shm.is_dir() {
            true => tempfile::tempdir_in(shm)?,
            false => tempfile::tempdir()?,
        };
        let mut members = Vec::new();
        for i in 0..n {
            let (client, peer) = two_ports()?;
            members.push(Member {
                name: format!("e{i}"),
                child: None,
                client,
                peer,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            members,
            data,
            initial_cluster,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_for_leader(Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let m = &self.members[i];
        let dir: PathBuf = self.data.path().join(&m.name);
        let log = std::fs::File::create(self.data.path().join(format!("{}.log", m.name)))?;
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "fjord-test"])
            .args(["--heartbeat-interval", "200", "--election-timeout", "2000"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting etcd (Debian's etcd-server; tests/run.sh installs it)")?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// `HOST:PORT,…` of every member's client URL.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The store address fjord takes: `etcd://ENDPOINTS/PREFIX`.
    pub fn url(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints())
    }

    /// The member that leads now, by its own metrics.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|&i| {
            self.members[i].child.is_some()
                && crate::http(
                    &format!("127.0.0.1:{}", self.members[i].client),
                    "GET",
                    "/metrics",
                )
                .is_ok_and(|(_, body)| body.lines().any(|l| l == "etcd_server_is_leader 1"))
        })
    }

    pub fn wait_for_leader(&self, within: Duration) -> Result<usize> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.leader() {
                return Ok(i);
            }
            if Instant::now() > deadline {
                bail!(
                    "the etcd cluster has no leader after {within:?}; see its logs in {}",
                    self.data.path().display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// kill -9 of member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data (after [`EtcdCluster::kill`]).
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        self.spawn(i)
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to member `i`.
    pub fn pause(&self, i: usize, stop: bool) {
        if let Some(c) = &self.members[i].child {
            let signal = if stop { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: a signal to our own child process.
            unsafe {
                libc::kill(c.id() as i32, signal);
            }
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.pause(i, false);
            self.kill(i);
        }
    }
}
