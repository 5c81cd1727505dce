//! A real etcd cluster (Debian's `etcd-server`) for the tests of the etcd topology store.
//!
//! Members listen on loopback ports below 32768, which the kernel never hands out for port 0
//! (its ephemeral range starts there), so no test's own connections take them. Their data
//! lives in `/dev/shm` (fsync there costs nothing), and a heartbeat of 200 ms with an
//! election timeout of 2 s, with pre-vote, keeps a loaded two-core machine from holding
//! elections.

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
    /// Plain HTTP /metrics, also when clients must speak TLS.
    metrics: u16,
}

/// A running etcd cluster, stopped and removed when dropped.
pub struct EtcdCluster {
    members: Vec<Member>,
    data: tempfile::TempDir,
    initial_cluster: String,
    tls: Option<(TestCa, u32)>,
}

/// Three free loopback ports below 32768, for a member's client, peer and metrics URLs.
fn three_ports() -> Result<(u16, u16, u16)> {
    let mut rng = rand::thread_rng();
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    for _ in 0..1000 {
        let p = rng.gen_range(20000..32000u16) & !3;
        if free(p) && free(p + 1) && free(p + 2) {
            return Ok((p, p + 1, p + 2));
        }
    }
    bail!("no three free ports below 32768")
}

/// A certificate authority made for one test (with `openssl`), a server certificate for
/// 127.0.0.1 signed by it, and a client certificate whose common name is `nobody` (no etcd
/// user has that name, so a request is allowed only through the user and password it
/// authenticates with).
#[derive(Clone)]
pub struct TestCa {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCa {
    pub fn make(dir: &std::path::Path) -> Result<Self> {
        let run = |args: &[&str]| -> Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .context("running openssl (tests/run.sh installs it)")?;
            if !out.status.success() {
                bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=fjord test CA",
            ],
        ]
        .concat())?;
        for (name, cn, usage) in [
            (
                "server",
                "etcd",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth",
            ),
            ("client", "nobody", "extendedKeyUsage=clientAuth"),
        ] {
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            std::fs::write(dir.join(&ext), usage)?;
            run(&[
                &["req"],
                &ec[..],
                &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={cn}")],
            ]
            .concat())?;
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ])?;
        }
        Ok(TestCa {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        })
    }

    /// The query part of a store address that makes fjord speak TLS with this CA.
    pub fn query(&self) -> String {
        format!(
            "?ca={}&cert={}&key={}",
            self.ca.display(),
            self.client_cert.display(),
            self.client_key.display()
        )
    }
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster has a leader.
    pub fn start(n: usize) -> Result<Self> {
        Self::start_with(n, None)
    }

    /// Starts `n` members whose clients must speak TLS with a client certificate of `ca`
    /// (`--client-cert-auth`); simple auth tokens expire after `token_ttl_s` unused.
    pub fn start_tls(n: usize, ca: TestCa, token_ttl_s: u32) -> Result<Self> {
        Self::start_with(n, Some((ca, token_ttl_s)))
    }

    fn start_with(n: usize, tls: Option<(TestCa, u32)>) -> Result<Self> {
        let shm = std::path::Path::new("/dev/shm");
        let data = match shm.is_dir() {
            true => tempfile::tempdir_in(shm)?,
            false => tempfile::tempdir()?,
        };
        let mut members = Vec::new();
        for i in 0..n {
            let (client, peer, metrics) = three_ports()?;
            members.push(Member {
                name: format!("e{i}"),
                child: None,
                client,
                peer,
                metrics,
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
            tls,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_until_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// Waits until every member answers `/health` with true: it knows a leader and a
    /// quorum read went through. A leader alone is not enough: right after the first
    /// election a member may still be joining and start another, and a client's first
    /// request then finds no member that can answer.
    pub fn wait_until_healthy(&self, within: Duration) -> Result<()> {
        let healthy = |m: &Member| {
            crate::http(&format!("127.0.0.1:{}", m.metrics), "GET", "/health")
                .is_ok_and(|(status, body)| status == 200 && body.contains("\"true\""))
        };
        let sick = || -> Vec<&str> {
            self.members
                .iter()
                .filter(|m| m.child.is_some() && !healthy(m))
                .map(|m| m.name.as_str())
                .collect()
        };
        if crate::eventually(within, || sick().is_empty()) {
            return Ok(());
        }
        bail!(
            "etcd members {:?} are not healthy after {within:?}; see their logs in {}",
            sick(),
            self.data.path().display()
        )
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let m = &self.members[i];
        let dir: PathBuf = self.data.path().join(&m.name);
        let log = std::fs::File::create(self.data.path().join(format!("{}.log", m.name)))?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let metrics = format!("http://127.0.0.1:{}", m.metrics);
        let mut etcd = Command::new("etcd");
        if let Some((ca, token_ttl_s)) = &self.tls {
            etcd.arg("--cert-file")
                .arg(&ca.server_cert)
                .arg("--key-file")
                .arg(&ca.server_key)
                .arg("--trusted-ca-file")
                .arg(&ca.ca)
                .arg("--client-cert-auth")
                .args(["--auth-token-ttl", &token_ttl_s.to_string()]);
        }
        let child = etcd
            .args(["--name", &m.name])
            .args(["--listen-metrics-urls", &metrics])
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
            // As etcd 3.5 does by default (Debian's 3.4 does not): a member that lost touch
            // for a moment asks before it starts an election, instead of deposing a leader
            // that is fine.
            .arg("--pre-vote")
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

    /// The store address fjord takes: `etcd://ENDPOINTS/PREFIX`, with the CA and client
    /// certificate when the cluster speaks TLS.
    pub fn url(&self, prefix: &str) -> String {
        let query = self
            .tls
            .as_ref()
            .map(|(ca, _)| ca.query())
            .unwrap_or_default();
        format!("etcd://{}/{prefix}{query}", self.endpoints())
    }

    /// Turns on etcd's authentication with a `root` user and a user `user` (password
    /// `password`) that may read and write under `prefix` only.
    pub fn enable_auth(&self, user: &str, password: &str, prefix: &str) -> Result<()> {
        use etcd_client::{Certificate, Client, ConnectOptions, Identity, Permission, TlsOptions};
        let (ca, _) = self.tls.as_ref().context("auth is tested over TLS only")?;
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(&ca.ca)?))
            .identity(Identity::from_pem(
                std::fs::read(&ca.client_cert)?,
                std::fs::read(&ca.client_key)?,
            ));
        let endpoint = format!("https://127.0.0.1:{}", self.members[0].client);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut c =
                Client::connect([endpoint], Some(ConnectOptions::new().with_tls(tls))).await?;
            c.user_add("root", "root-password", None).await?;
            // Some etcd versions have the root role built in.
            let _ = c.role_add("root").await;
            c.user_grant_role("root", "root").await?;
            c.role_add("fjord").await?;
            let perm = Permission::read_write(prefix).with_prefix();
            c.role_grant_permission("fjord", perm).await?;
            c.user_add(user, password, None).await?;
            c.user_grant_role(user, "fjord").await?;
            c.auth_enable().await?;
            anyhow::Ok(())
        })
    }

    /// Writes `puts` values under `key`, then compacts etcd's history up to the newest
    /// revision, as `--auto-compaction-*` does in a production etcd; returns that revision.
    pub fn write_and_compact(&self, key: &str, puts: usize) -> Result<i64> {
        use etcd_client::{Client, CompactionOptions};
        anyhow::ensure!(self.tls.is_none(), "compacting is done over plain TCP only");
        let endpoints: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| format!("http://127.0.0.1:{}", m.client))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut c = Client::connect(endpoints, None).await?;
            let mut revision = 0;
            for i in 0..puts {
                let put = c.put(key, i.to_string(), None).await?;
                revision = put.header().map(|h| h.revision()).unwrap_or_default();
            }
            c.compact(revision, Some(CompactionOptions::new().with_physical()))
                .await?;
            Ok(revision)
        })
    }

    /// The member that leads now, by its own metrics.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|&i| {
            self.members[i].child.is_some()
                && crate::http(
                    &format!("127.0.0.1:{}", self.members[i].metrics),
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
            crate::pause_process(c.id() as i32, stop);
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        // A failing test removes the members' logs with their folder: show how they ended.
        if std::thread::panicking() {
            for m in &self.members {
                let log = self.data.path().join(format!("{}.log", m.name));
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                eprintln!("--- the last lines of etcd member {}'s log:", m.name);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        for i in 0..self.members.len() {
            self.pause(i, false);
            self.kill(i);
        }
    }
}
