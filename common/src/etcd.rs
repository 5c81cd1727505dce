//! etcd as fjord's topology store: the address form, the keys, and the few operations the
//! proxy and `fjord-admin` need (a read, a compare-and-swap, a watch, leases and an election).
//!
//! Keys under the URL's prefix (say `/fjord`):
//! - `/fjord/topology`: the cluster document, the same YAML as the cluster file. Its own
//!   `version` stays the epoch (+1 per write); etcd's mod_revision is only the guard of a
//!   compare-and-swap.
//! - `/fjord/controller`: the controllers' shared state (`paused: true|false`).
//! - `/fjord/mover`: held by a running `fjord-admin reshard`, on a lease it keeps alive.
//! - `/fjord/leader/…`: the controllers' election (etcd's election API on a lease).
//!
//! The client is async (tonic). It runs on a small runtime of its own, so that the admin
//! tool's synchronous store code can wait on it ([`Etcd::block`]) from anywhere but that
//! runtime, and so that the proxy's request runtime carries none of it.

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long one request may take before it counts as failed: etcd answers in milliseconds
/// when it has a quorum.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long between tries while etcd is unreachable.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// Where the store is: `etcd://[USER@]HOST:PORT[,HOST:PORT…]/PREFIX[?ca=PEM&cert=PEM&key=PEM]`.
/// The password of USER comes from `FJORD_ETCD_PASSWORD`, never from the address (which
/// shows in process lists and logs). With `ca`, the endpoints speak TLS; `cert` and `key`
/// add a client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdUrl {
    pub endpoints: Vec<String>,
    /// Starts with `/`, no trailing `/`.
    pub prefix: String,
    pub user: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl std::str::FromStr for EtcdUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let form = "etcd://[USER@]HOST:PORT[,HOST:PORT…]/PREFIX[?ca=FILE&cert=FILE&key=FILE]";
        let rest = text
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("{text:?} is not an etcd address ({form})"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, prefix) = rest
            .split_once('/')
            .ok_or_else(|| format!("{text:?} names no key prefix ({form})"))?;
        let prefix = format!("/{}", prefix.trim_end_matches('/'));
        if prefix == "/" {
            return Err(format!("{text:?} names no key prefix ({form})"));
        }
        let (user, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err(format!("{text:?} has an empty user name")),
            None => (None, authority),
        };
        let endpoints: Vec<String> = hosts.split(',').map(str::to_string).collect();
        for e in &endpoints {
            let port = e.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
            if !matches!(port, Some((h, Ok(_))) if !h.is_empty()) {
                return Err(format!("{text:?}: {e:?} is not HOST:PORT"));
            }
        }
        let mut url = EtcdUrl {
            endpoints,
            prefix,
            user,
            ca: None,
            cert: None,
            key: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "ca" => &mut url.ca,
                "cert" => &mut url.cert,
                "key" => &mut url.key,
                _ => return Err(format!("{text:?}: unknown option {name:?} (ca, cert, key)")),
            };
            *slot = Some(PathBuf::from(value));
        }
        if url.cert.is_some() != url.key.is_some() {
            return Err(format!("{text:?}: cert and key go together"));
        }
        if url.cert.is_some() && url.ca.is_none() {
            return Err(format!("{text:?}: a client certificate needs ca (TLS)"));
        }
        Ok(url)
    }
}

impl std::fmt::Display for EtcdUrl {
    /// The address without its options (for logs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        write!(
            f,
            "etcd://{user}{}{}",
            self.endpoints.join(","),
            self.prefix
        )
    }
}

impl EtcdUrl {
    pub fn topology_key(&self) -> String {
        format!("{}/topology", self.prefix)
    }

    pub fn controller_key(&self) -> String {
        format!("{}/controller", self.prefix)
    }

    pub fn mover_key(&self) -> String {
        format!("{}/mover", self.prefix)
    }

    pub fn election(&self) -> String {
        format!("{}/leader", self.prefix)
    }

    fn options(&self) -> Result<ConnectOptions, String> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(REQUEST_TIMEOUT)
            // A member that stops answering (SIGSTOP, a cut link) is given up within a few
            // seconds, and the next request goes to another.
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            // A member without a quorum refuses rather than serves a value that may be old,
            // and cancels its watches, so that a partitioned reader notices.
            .with_require_leader(true);
        if let Some(user) = &self.user {
            let password = std::env::var("FJORD_ETCD_PASSWORD").map_err(|_| {
                format!("{self} names user {user}: set its password in FJORD_ETCD_PASSWORD")
            })?;
            options = options.with_user(user, password);
        }
        if let Some(ca) = &self.ca {
            let read =
                |p: &PathBuf| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
            let mut tls = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(tls);
        }
        Ok(options)
    }

    fn scheme(&self) -> &'static str {
        if self.ca.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// The runtime the etcd client runs on, started on first use.
fn runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fjord-etcd".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("starting the etcd client's runtime");
                let _ = tx.send(rt.handle().clone());
                rt.block_on(std::future::pending::<()>());
            })
            .expect("starting the etcd client's thread");
        rx.recv().expect("the etcd client's runtime started")
    })
}

/// What went wrong talking to etcd, in words an operator can act on.
pub type Error = String;

/// A connection to an etcd cluster under one prefix. It holds a client per member and sends
/// each request to the member that answered last, trying the others in turn when that one
/// fails: the client library's own balancing keeps sending to a member that is down.
#[derive(Clone)]
pub struct Etcd {
    pub url: EtcdUrl,
    options: Arc<ConnectOptions>,
    /// Per member, its client once connected.
    members: Arc<Vec<tokio::sync::Mutex<Option<Client>>>>,
    preferred: Arc<AtomicUsize>,
}

/// How a watch of [`Etcd::follow`] ended, short of an error.
enum Watch {
    /// The receiver is gone.
    Closed,
    /// etcd no longer holds the history from the watch's revision (compacted up to this one).
    Compacted(i64),
    /// The watch's stream broke after the read and the watch worked: etcd restarted, say,
    /// and the connection the watch went out on was one it had left dead. `heard`: the watch
    /// had delivered a change before.
    Broken { why: Error, heard: bool },
}

/// A value as read, with the revision a compare-and-swap checks.
#[derive(Clone, Debug)]
pub struct Versioned {
    pub value: String,
    pub mod_revision: i64,
}

/// Proof of holding a lease-bound key (an elected leader's key): writes made with it apply
/// only while the key still exists with this create revision.
#[derive(Clone, Debug)]
pub struct Held {
    pub key: Vec<u8>,
    pub create_revision: i64,
}

/// A lease kept alive until dropped.
pub struct Lease {
    pub id: i64,
    /// Turns false once the lease expired, or could not be renewed for its whole ttl.
    pub alive: tokio::sync::watch::Receiver<bool>,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renew.abort();
    }
}

/// What [`Etcd::follow`] reports.
#[derive(Debug)]
pub enum Followed {
    /// The key's value, first as read, then at every change.
    Value(Versioned),
    /// etcd cannot be read (no quorum, unreachable, the key missing); following resumes by
    /// itself.
    Down(Error),
}

fn err(what: &str, url: &EtcdUrl, e: impl std::fmt::Display) -> Error {
    format!("{what} at {url}: {e}")
}

/// The client library's error without its transport details: gRPC's message alone.
fn short(e: etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) if !s.message().is_empty() => s.message().to_string(),
        e => e.to_string(),
    }
}

impl Etcd {
    /// Prepares the connection; the first request finds out whether etcd is there.
    pub fn connect(url: &EtcdUrl) -> Result<Etcd, Error> {
        Ok(Etcd {
            url: url.clone(),
            options: Arc::new(url.options()?),
            members: Arc::new(
                url.endpoints
                    .iter()
                    .map(|_| tokio::sync::Mutex::new(None))
                    .collect(),
            ),
            preferred: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` (one of this client's requests) on the etcd runtime and waits for it, for
    /// synchronous callers. Must not be called from that runtime.
    pub fn block<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        runtime().spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .expect("the etcd runtime runs until the process ends")
    }

    /// Member `i`'s client, connected on first use.
    async fn member(&self, i: usize) -> Result<Client, String> {
        let mut slot = self.members[i].lock().await;
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let endpoint = format!("{}://{}", self.url.scheme(), self.url.endpoints[i]);
        let connect = Client::connect([endpoint], Some(ConnectOptions::clone(&self.options)));
        let client = tokio::time::timeout(REQUEST_TIMEOUT, connect)
            .await
            .map_err(|_| "connecting timed out".to_string())?
            .map_err(short)?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs `op` with the client of the member that answered last, then of each other in
    /// turn until one succeeds. A write whose answer was lost may be sent twice: every write
    /// here is a compare-and-swap, idempotent, or a lease that expires unused.
    fn call<T, F, Fut>(
        &self,
        what: String,
        op: F,
    ) -> impl Future<Output = Result<T, Error>> + Send + 'static
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send,
    {
        let etcd = self.clone();
        async move {
            let n = etcd.url.endpoints.len();
            let first = etcd.preferred.load(Ordering::Relaxed);
            let mut failures = Vec::new();
            for k in 0..n {
                match etcd.attempt((first + k) % n, &op).await {
                    Ok(v) => return Ok(v),
                    Err(e) => failures.push(e),
                }
            }
            Err(err(&what, &etcd.url, failures.join("; ")))
        }
    }

    /// `op` on member `i`, which becomes the preferred one if it answers.
    async fn attempt<T, F, Fut>(&self, i: usize, op: &F) -> Result<T, String>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let result = match self.member(i).await {
            Ok(c) => match op(c.clone()).await {
                // etcd forgets auth tokens it has not seen used for a while
                // (`--auth-token-ttl`) and on a restart, and the client does not renew its
                // own: authenticate again, then retry once.
                Err(e) if e.to_string().contains("invalid auth token") => {
                    match c.refresh_token().await {
                        Ok(()) => op(c).await.map_err(short),
                        Err(e) => Err(short(e)),
                    }
                }
                other => other.map_err(short),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                self.preferred.store(i, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => Err(format!("{}: {e}", self.url.endpoints[i])),
        }
    }

    pub fn get(
        &self,
        key: String,
    ) -> impl Future<Output = Result<Option<Versioned>, Error>> + Send + 'static {
        let read = self.read(key);
        async move { Ok(read.await?.0) }
    }

    /// Reads `key`, with the store's revision at the read: every later change of the key has
    /// a higher one.
    fn read(
        &self,
        key: String,
    ) -> impl Future<Output = Result<(Option<Versioned>, i64), Error>> + Send + 'static {
        let (url, what) = (self.url.clone(), format!("reading {key}"));
        let read = self.call(what.clone(), move |mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        });
        async move {
            let resp = read.await?;
            let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
            let Some(kv) = resp.kvs().first() else {
                return Ok((None, revision));
            };
            let value = kv.value_str().map_err(|e| err(&what, &url, e))?;
            let versioned = Versioned {
                value: value.to_string(),
                mod_revision: kv.mod_revision(),
            };
            Ok((Some(versioned), revision.max(kv.mod_revision())))
        }
    }

    /// Writes `value` if `key` is still at `mod_revision` (0: absent) and, with `held`, the
    /// caller still holds its lease-bound key. False: either changed; nothing was written.
    pub fn put_if(
        &self,
        key: String,
        value: String,
        mod_revision: i64,
        held: Option<Held>,
    ) -> impl Future<Output = Result<bool, Error>> + Send + 'static {
        let what = format!("writing {key}");
        let txn = self.call(what, move |mut c| {
            let mut when = vec![Compare::mod_revision(
                key.as_bytes(),
                CompareOp::Equal,
                mod_revision,
            )];
            if let Some(h) = &held {
                when.push(Compare::create_revision(
                    h.key.clone(),
                    CompareOp::Equal,
                    h.create_revision,
                ));
            }
            let txn = Txn::new().when(when).and_then(vec![TxnOp::put(
                key.as_bytes(),
                value.clone(),
                None,
            )]);
            async move { c.txn(txn).await }
        });
        async move { Ok(txn.await?.succeeded()) }
    }

    /// Writes `value` unconditionally, bound to `lease` if given (it goes when the lease
    /// expires).
    pub fn put(
        &self,
        key: String,
        value: String,
        lease: Option<i64>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let put = self.call(format!("writing {key}"), move |mut c| {
            let options = lease.map(|id| PutOptions::new().with_lease(id));
            let (key, value) = (key.clone(), value.clone());
            async move { c.put(key, value, options).await }
        });
        async move { put.await.map(drop) }
    }

    /// Whether `key` exists.
    pub fn exists(
        &self,
        key: String,
    ) -> impl Future<Output = Result<bool, Error>> + Send + 'static {
        let read = self.call(format!("reading {key}"), move |mut c| {
            let key = key.clone();
            async move { c.get(key, Some(GetOptions::new().with_count_only())).await }
        });
        async move { Ok(read.await?.count() > 0) }
    }

    /// A lease of `ttl`, kept alive until the returned [`Lease`] is dropped (then it expires
    /// within `ttl`).
    pub fn lease(
        &self,
        ttl: Duration,
    ) -> impl Future<Output = Result<Lease, Error>> + Send + 'static {
        let etcd = self.clone();
        let seconds = ttl.as_secs().max(1) as i64;
        async move {
            let grant = etcd.call("taking a lease".into(), move |mut c| async move {
                c.lease_grant(seconds, None).await
            });
            let id = grant.await?.id();
            let (alive_tx, alive) = tokio::sync::watch::channel(true);
            let renew = runtime().spawn(async move {
                let every = (ttl / 3).max(Duration::from_millis(200));
                let mut renewed = tokio::time::Instant::now();
                // Without an answer for ttl, the lease is as good as gone: etcd lets it expire.
                while renewed.elapsed() < ttl {
                    let keep = etcd.call("renewing a lease".into(), move |mut c| async move {
                        c.lease_keep_alive(id).await
                    });
                    match keep.await {
                        Ok((mut keeper, mut stream)) => loop {
                            if keeper.keep_alive().await.is_err() {
                                break;
                            }
                            let answer =
                                tokio::time::timeout(ttl.saturating_sub(renewed.elapsed()), stream.message());
                            match answer.await {
                                Ok(Ok(Some(r))) if r.ttl() > 0 => renewed = tokio::time::Instant::now(),
                                Ok(Ok(Some(_))) => {
                                    tracing::warn!(lease = id, url = %etcd.url, "a lease expired before it was renewed");
                                    let _ = alive_tx.send(false);
                                    return;
                                }
                                _ => break,
                            }
                            tokio::time::sleep(every).await;
                        },
                        Err(e) => tracing::warn!(lease = id, "{e}"),
                    }
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                tracing::warn!(lease = id, url = %etcd.url, "a lease could not be renewed in time");
                let _ = alive_tx.send(false);
            });
            Ok(Lease { id, alive, renew })
        }
    }

    /// Campaigns in `election` with `value` on `lease`; returns once this caller leads.
    pub fn campaign(
        &self,
        election: String,
        value: String,
        lease: i64,
    ) -> impl Future<Output = Result<Held, Error>> + Send + 'static {
        let what = format!("campaigning in {election}");
        // Once, to one member: a campaign request that times out is withdrawn by etcd,
        // which deletes the lease's key; sent again on the same lease to another member, the
        // second could find the key still there, win on it, and then lose it to the first's
        // withdrawal — two controllers acting at once (seen: the next one campaigned on an
        // empty election). A failed campaign is retried on a new lease instead, starting
        // with the next member.
        let etcd = self.clone();
        async move {
            let i = etcd.preferred.load(Ordering::Relaxed);
            let campaign = |mut c: Client| {
                let (election, value) = (election.clone(), value.clone());
                async move { c.campaign(election, value, lease).await }
            };
            let resp = etcd.attempt(i, &campaign).await.map_err(|e| {
                let next = (i + 1) % etcd.url.endpoints.len();
                let _ =
                    etcd.preferred
                        .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
                err(&what, &etcd.url, e)
            })?;
            let leader = resp
                .leader()
                .ok_or_else(|| err(&what, &etcd.url, "etcd named no leader key"))?;
            Ok(Held {
                key: leader.key().to_vec(),
                create_revision: leader.rev(),
            })
        }
    }

    /// Follows `key`: sends its value, then every change, on `tx`; when etcd cannot be read,
    /// says so and tries again, reading the value anew. A watch that fell behind etcd's
    /// compaction reads the value anew at once, and etcd is not called down for it. Runs
    /// until `tx` is closed.
    pub fn follow(&self, key: String, tx: tokio::sync::mpsc::UnboundedSender<Followed>) {
        let etcd = self.clone();
        runtime().spawn(async move {
            let mut was_down = false;
            // A broken watch is read and set up again at once, without saying the store is
            // down, unless that already failed since the last change or down report.
            let mut at_once = true;
            while !tx.is_closed() {
                let why = match etcd.follow_once(&key, &tx, &mut was_down).await {
                    Ok(Watch::Closed) => return,
                    Ok(Watch::Compacted(revision)) => {
                        tracing::info!(
                            revision,
                            "etcd compacted the history the watch of {key} was at; reading it anew"
                        );
                        continue;
                    }
                    Ok(Watch::Broken { why, heard }) if heard || std::mem::take(&mut at_once) => {
                        tracing::info!("{why}; reading it anew");
                        continue;
                    }
                    Ok(Watch::Broken { why, .. }) | Err(why) => why,
                };
                at_once = true;
                if !was_down {
                    tracing::warn!("{why}; retrying every {} ms", RETRY_EVERY.as_millis());
                }
                was_down = true;
                if tx.send(Followed::Down(why)).is_err() {
                    return;
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
        });
    }

    /// Reads `key` and watches it from there until something goes wrong (`Err` before the
    /// watch works, [`Watch::Broken`] after), etcd has compacted the history the watch needs,
    /// or `tx` closes.
    async fn follow_once(
        &self,
        key: &str,
        tx: &tokio::sync::mpsc::UnboundedSender<Followed>,
        was_down: &mut bool,
    ) -> Result<Watch, Error> {
        let what = format!("watching {key}");
        let (first, read_at) = self.read(key.to_string()).await?;
        let first = first.ok_or_else(|| err("reading", &self.url, format!("there is no {key}")))?;
        if std::mem::take(was_down) {
            tracing::info!(url = %self.url, "etcd answers again");
        }
        if tx.send(Followed::Value(first)).is_err() {
            return Ok(Watch::Closed);
        }
        // From the store's revision at the read, not the key's last change: etcd compacts
        // the history behind its current revision (`--auto-compaction-*`), and a watch from
        // a key unchanged since then would be refused as compacted at every attempt.
        let from = read_at + 1;
        let watched = key.to_string();
        let mut stream = self
            .call(what.clone(), move |mut c| {
                let options = WatchOptions::new().with_start_revision(from);
                let key = watched.clone();
                async move { c.watch(key, Some(options)).await }
            })
            .await?;
        let mut heard = false;
        loop {
            let broken = |why| Ok(Watch::Broken { why, heard });
            let resp = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return broken(err(&what, &self.url, "the watch ended")),
                Err(e) => return broken(err(&what, &self.url, short(e))),
            };
            if resp.compact_revision() > 0 {
                return Ok(Watch::Compacted(resp.compact_revision()));
            }
            if resp.canceled() {
                let why = match resp.cancel_reason() {
                    "" => "etcd cancelled the watch",
                    r => r,
                };
                return Err(err(&what, &self.url, why));
            }
            for event in resp.events() {
                heard = true;
                let Some(kv) = event.kv() else { continue };
                let sent = match event.event_type() {
                    EventType::Put => match kv.value_str() {
                        Ok(v) => tx.send(Followed::Value(Versioned {
                            value: v.to_string(),
                            mod_revision: kv.mod_revision(),
                        })),
                        Err(e) => tx.send(Followed::Down(err("reading", &self.url, e))),
                    },
                    EventType::Delete => tx.send(Followed::Down(err(
                        "reading",
                        &self.url,
                        format!("{key} was deleted"),
                    ))),
                };
                if sent.is_err() {
                    return Ok(Watch::Closed);
                }
            }
        }
    }

    /// Each endpoint's own view: its member id, the leader it knows, its raft term, or why
    /// it does not answer.
    pub fn members(&self) -> Vec<(String, Result<MemberStatus, Error>)> {
        self.url
            .endpoints
            .iter()
            .map(|e| {
                let one = EtcdUrl {
                    endpoints: vec![e.clone()],
                    ..self.url.clone()
                };
                let status = Etcd::connect(&one).and_then(|etcd| {
                    let status = etcd.call("asking for its status".into(), |mut c| async move {
                        c.status().await
                    });
                    etcd.block(status).map(|s| MemberStatus {
                        id: s.header().map(|h| h.member_id()).unwrap_or_default(),
                        leader: s.leader(),
                        raft_term: s.raft_term(),
                        version: s.version().to_string(),
                    })
                });
                (e.clone(), status)
            })
            .collect()
    }
}

/// One etcd member's answer to a status request.
#[derive(Clone, Debug)]
pub struct MemberStatus {
    pub id: u64,
    pub leader: u64,
    pub raft_term: u64,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_their_options_and_refuse_what_is_malformed() {
        let u: EtcdUrl = "etcd://127.0.0.1:2379,127.0.0.1:2479/fjord/prod/"
            .parse()
            .unwrap();
        assert_eq!(u.endpoints, ["127.0.0.1:2379", "127.0.0.1:2479"]);
        assert_eq!(u.prefix, "/fjord/prod");
        assert_eq!(u.topology_key(), "/fjord/prod/topology");
        assert_eq!(
            u.to_string(),
            "etcd://127.0.0.1:2379,127.0.0.1:2479/fjord/prod"
        );
        let u: EtcdUrl = "etcd://ops@h:1/p?ca=/c.pem&cert=/x.pem&key=/k.pem"
            .parse()
            .unwrap();
        assert_eq!(u.user.as_deref(), Some("ops"));
        assert_eq!(u.ca, Some(PathBuf::from("/c.pem")));
        assert_eq!(u.scheme(), "https");
        for bad in [
            "http://h:1/p",
            "etcd://h:1",
            "etcd://h:1/",
            "etcd://h/p",
            "etcd://h:x/p",
            "etcd://@h:1/p",
            "etcd://h:1/p?cert=/x.pem",
            "etcd://h:1/p?cert=/x.pem&key=/k.pem",
            "etcd://h:1/p?tls=1",
        ] {
            assert!(bad.parse::<EtcdUrl>().is_err(), "{bad}");
        }
    }
}
