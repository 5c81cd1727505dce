//! The topology in etcd: a real 3-member etcd cluster (Debian's `etcd-server`), proxies
//! started with `--store etcd://…`, and `fjord-admin --store` writing to it. A change reaches
//! every proxy; the proxies keep serving through the loss of etcd's leader and of its quorum,
//! and say so; `import` and `export` round-trip the default topology; of several controllers
//! one is elected and acts, and the next finishes what a killed one left.

use fjord_common::files::lexically_normal;
use fjord_common::topology::Topology;
use fjord_tests::etcd::{EtcdCluster, TestCa};
use fjord_tests::metrics::Scrape;
use fjord_tests::{
    bin_dir, eventually, http, pause_process, start_proxy_with_env, Controller, RawClient, Shard,
    ShardOptions,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn admin(url: &str, args: &[&str]) -> Output {
    admin_env(url, args, &[])
}

fn admin_env(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin_dir().join("fjord-admin"))
        .args(["--store", url])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running fjord-admin")
}

fn ok(out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fjord-admin failed: {text}");
    text
}

/// A topology document at `version` whose one shard `s1` is the process at `addr`.
fn document(version: u64, addr: &str) -> String {
    format!(
        "version: {version}\nproxies:\n  - listen: 127.0.0.1:7000\nshards:\n  - {{ id: s1, addr: \"{addr}\", slots: [0-16383] }}\n"
    )
}

/// A proxy following the store, with one cluster listener.
struct Proxy {
    child: Child,
    node: String,
    admin: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxies' own cluster file: listeners on free ports, no topology.
fn local_file(dir: &Path) -> PathBuf {
    let path = dir.join("proxy.yaml");
    std::fs::write(
        &path,
        "proxies:\n  - listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nsettings:\n  command_timeout_ms: 2000\n",
    )
    .unwrap();
    path
}

fn start(local: &Path, url: &str, extra: &[&str]) -> anyhow::Result<Proxy> {
    start_env(local, url, extra, &[])
}

fn start_env(
    local: &Path,
    url: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<Proxy> {
    let mut args = vec!["--store", url];
    args.extend_from_slice(extra);
    let (child, lines) = start_proxy_with_env(local, &args, env)?;
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap()
            .to_string()
    };
    Ok(Proxy {
        child,
        node: find("fjord-proxy listening on cluster "),
        admin: find("fjord-proxy listening on admin "),
    })
}

/// The proxy's `GET /topology`.
fn topology_view(p: &Proxy) -> serde_json::Value {
    let (_, body) = http(&p.admin, "GET", "/topology").unwrap();
    serde_json::from_str(&body).unwrap()
}

fn get(p: &Proxy, key: &str) -> String {
    RawClient::tcp(&p.node)
        .and_then(|mut c| c.call_str(&["GET", key]))
        .unwrap_or_else(|e| format!("error: {e}"))
}

/// Writes `text` into the store with `fjord-admin import`; returns when it is stored.
fn import(url: &str, dir: &Path, text: &str) -> Instant {
    import_env(url, dir, text, &[])
}

/// The same, tried again for a while if etcd answers "no leader": members that were stopped
/// may hold an election once they run again, after one of them still said it led.
fn import_env(url: &str, dir: &Path, text: &str, env: &[(&str, &str)]) -> Instant {
    let file = dir.join("import.yaml");
    std::fs::write(&file, text).unwrap();
    let run = || admin_env(url, &["import", file.to_str().unwrap()], env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = run();
    while !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("no leader")
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
        out = run();
    }
    ok(out);
    Instant::now()
}

/// Waits until every proxy answers `want` for GET `key`; prints how long each took after
/// `since`.
fn all_answer(proxies: &[Proxy], key: &str, want: &str, since: Instant, what: &str) {
    let mut delays = Vec::new();
    for (i, p) in proxies.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(20), || get(p, key) == want),
            "proxy {i} does not serve the new topology ({what}): GET {key} = {:?}, /topology {}",
            get(p, key),
            topology_view(p)
        );
        delays.push(since.elapsed().as_millis());
    }
    println!("{what}: each proxy served the new topology after {delays:?} ms (polled in turn)");
}

#[test]
fn import_and_export_round_trip_the_default_topology() {
    let etcd = EtcdCluster::start(1).unwrap();
    let url = etcd.url("fjord/roundtrip");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cluster.yaml");
    let out = admin(&url, &["export"]);
    assert!(
        !out.status.success(),
        "an empty store has nothing to export"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("import"),
        "the error says what to do: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(admin(&url, &["import", config.to_str().unwrap()]));
    let exported = ok(admin(&url, &["export"]));
    let mut from_file = Topology::load(&config).unwrap();
    for s in &mut from_file.shards {
        let plain = |d: &mut Option<PathBuf>| {
            *d = d.as_deref().map(lexically_normal);
        };
        plain(&mut s.data_dir);
        s.replicas.iter_mut().for_each(|r| plain(&mut r.data_dir));
    }
    let from_store = Topology::parse(&exported, None).unwrap();
    assert!(from_store.same_layout(&from_file), "{exported}");
    assert_eq!(from_store.version, from_file.version);
    assert_eq!(from_store.replication, from_file.replication);
    assert_eq!(from_store.settings, from_file.settings);
    assert_eq!(
        (from_store.standalone, from_store.admin),
        (from_file.standalone, from_file.admin)
    );
    for s in &from_store.shards {
        let dir = s.data_dir.as_ref().unwrap();
        assert!(dir.is_absolute(), "import stores absolute paths: {dir:?}");
    }

    // The exported document is a fixed point: stored elsewhere and exported, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let again = etcd.url("fjord/again");
    import(&again, dir.path(), &exported);
    assert_eq!(ok(admin(&again, &["export"])), exported);

    // A second import goes above the stored version, so proxies never see it go down.
    let text = ok(admin(&url, &["import", config.to_str().unwrap()]));
    assert!(
        text.contains(&format!("as version {}", from_file.version + 1)),
        "{text}"
    );
}

/// etcd over TLS, with client certificates required and a user: fjord-admin and a proxy
/// connect with the CA and client certificate the address names and the password from
/// `FJORD_ETCD_PASSWORD`; a wrong or missing password, a prefix the user may not touch and
/// a missing client certificate are refused with errors that say so; a proxy keeps following
/// after its auth token expired while it was idle.
#[test]
fn tls_client_certificates_and_a_user_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::make(dir.path()).unwrap();
    let mut etcd = EtcdCluster::start_tls(1, ca, 2).unwrap();
    // fjord keeps its keys under `/PREFIX/`.
    etcd.enable_auth("fjord", "s3cret", "/fjord/").unwrap();
    let url = etcd
        .url("fjord/tls")
        .replacen("etcd://", "etcd://fjord@", 1);
    let password = [("FJORD_ETCD_PASSWORD", "s3cret")];
    let (x, y) = (Shard::start().unwrap(), Shard::start().unwrap());

    let refused = |url: &str, env: &[(&str, &str)], why: &str| {
        let out = admin_env(url, &["export"], env);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success() && text.contains(why), "{why}: {text}");
    };
    refused(&url, &[], "FJORD_ETCD_PASSWORD");
    refused(
        &url,
        &[("FJORD_ETCD_PASSWORD", "wrong")],
        "authentication failed",
    );
    let elsewhere = etcd
        .url("other/tls")
        .replacen("etcd://", "etcd://fjord@", 1);
    refused(&elsewhere, &password, "permission denied");
    let no_cert = url.split("&cert=").next().unwrap().to_string();
    let out = admin_env(&no_cert, &["export"], &password);
    assert!(
        !out.status.success(),
        "a client without a certificate is refused"
    );

    import_env(&url, dir.path(), &document(1, &x.addr), &password);
    let exported = ok(admin_env(&url, &["export"], &password));
    assert!(exported.contains(&x.addr), "{exported}");
    let check = ok(admin_env(&url, &["check"], &password));
    assert!(check.contains("[OK] etcd"), "{check}");

    let local = local_file(dir.path());
    let proxy = start_env(&local, &url, &[], &password).unwrap();
    let mut c = RawClient::tcp(&proxy.node).unwrap();
    assert_eq!(c.call_str(&["SET", "k", "on-x"]).unwrap(), "+OK\r\n");
    // Idle past the token's 2 s: the proxy must still see the next change.
    std::thread::sleep(Duration::from_secs(4));
    let since = import_env(&url, dir.path(), &document(2, &y.addr), &password);
    all_answer(
        std::slice::from_ref(&proxy),
        "k",
        "$-1\r\n",
        since,
        "TLS, after the auth token expired",
    );
    // etcd restarted forgets every token: the proxy's watch comes back only if it
    // authenticates again.
    etcd.restart(0).unwrap();
    etcd.wait_for_leader(Duration::from_secs(30)).unwrap();
    let since = import_env(&url, dir.path(), &document(3, &x.addr), &password);
    all_answer(
        std::slice::from_ref(&proxy),
        "k",
        "$4\r\non-x\r\n",
        since,
        "TLS, after etcd restarted",
    );
}

#[test]
fn every_proxy_follows_a_change_also_after_etcds_leader_dies() {
    let mut etcd = EtcdCluster::start(3).unwrap();
    let url = etcd.url("fjord/follow");
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (Shard::start().unwrap(), Shard::start().unwrap());
    import(&url, dir.path(), &document(1, &x.addr));
    let local = local_file(dir.path());
    let proxies: Vec<Proxy> = (0..5).map(|_| start(&local, &url, &[]).unwrap()).collect();
    let mut c = RawClient::tcp(&proxies[0].node).unwrap();
    assert_eq!(c.call_str(&["SET", "k", "on-x"]).unwrap(), "+OK\r\n");
    for p in &proxies {
        assert_eq!(get(p, "k"), "$4\r\non-x\r\n");
        let view = topology_view(p);
        assert_eq!(view["version"], 1);
        assert_eq!(view["store"]["up"], true, "{view}");
    }

    // s1 moves to the empty process y: every proxy routes there.
    let since = import(&url, dir.path(), &document(2, &y.addr));
    all_answer(&proxies, "k", "$-1\r\n", since, "version 2");
    let check = ok(admin(&url, &["check"]));
    assert_eq!(check.matches("[OK] etcd").count(), 3, "{check}");

    // kill -9 of etcd's leader: the proxies serve on, and follow the next change through
    // the two members left.
    let leader = etcd.wait_for_leader(Duration::from_secs(10)).unwrap();
    etcd.kill(leader);
    for p in &proxies {
        assert_eq!(get(p, "k"), "$-1\r\n", "serving while etcd elects");
    }
    etcd.wait_for_leader(Duration::from_secs(30)).unwrap();
    let since = import(&url, dir.path(), &document(3, &x.addr));
    all_answer(
        &proxies,
        "k",
        "$4\r\non-x\r\n",
        since,
        "version 3, etcd leader killed",
    );
    let check = admin(&url, &["check"]);
    assert!(!check.status.success(), "check reports the dead member");
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(text.matches("[ERR] etcd").count(), 1, "{text}");
    etcd.restart(leader).unwrap();
}

#[test]
fn without_a_quorum_proxies_keep_the_last_topology_and_controllers_stop_acting() {
    let etcd = EtcdCluster::start(3).unwrap();
    let url = etcd.url("fjord/quorum");
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (Shard::start().unwrap(), Shard::start().unwrap());
    import(&url, dir.path(), &document(1, &x.addr));
    let local = local_file(dir.path());
    let cache = dir.path().join("topology.cache");
    let cache_arg = cache.to_str().unwrap();
    let proxies = [
        start(&local, &url, &[]).unwrap(),
        start(&local, &url, &["--store-cache", cache_arg]).unwrap(),
    ];
    assert!(cache.exists(), "the proxy keeps what it read");
    let mut c = RawClient::tcp(&proxies[0].node).unwrap();
    assert_eq!(c.call_str(&["SET", "k", "v"]).unwrap(), "+OK\r\n");
    // A controller, elected, on a topology of its own under another prefix.
    let z = Shard::start().unwrap();
    let controlled = etcd.url("fjord/quorum-controller");
    import(&controlled, dir.path(), &document(1, &z.addr));
    let log = dir.path().join("controller.log");
    let controller = Some(
        Controller::start_on(
            &["--store", &controlled],
            100,
            Stdio::from(std::fs::File::create(&log).unwrap()),
        )
        .unwrap(),
    );
    let controllers = [controller];
    assert_eq!(one_leader(&controllers), 0);

    // Two of three members stop: no quorum.
    let leader = etcd.wait_for_leader(Duration::from_secs(10)).unwrap();
    let stopped = [leader, (leader + 1) % 3];
    for &i in &stopped {
        etcd.pause(i, true);
    }
    for (i, p) in proxies.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(30), || topology_view(p)["store"]["up"]
                == false),
            "proxy {i} says the store is down: {}",
            topology_view(p)
        );
        let view = topology_view(p);
        assert!(
            view["store"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{view}"
        );
        assert_eq!(view["version"], 1, "the last topology stays in force");
        assert_eq!(get(p, "k"), "$1\r\nv\r\n", "proxy {i} serves on");
        let (_, metrics) = http(&p.admin, "GET", "/metrics").unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l == "fjord_proxy_topology_store_up 0"),
            "the metric says so"
        );
        let (status, ready) = http(&p.admin, "GET", "/readyz").unwrap();
        assert_eq!(status, 200, "stays ready: {ready}");
    }
    let out = admin(&url, &["export"]);
    assert!(!out.status.success(), "nothing to read without a quorum");
    // The controller stops acting once its lease can no longer be renewed, and says why.
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(30), || leaders(&controllers) == [false]
            && said().contains("lost the leadership")),
        "the controller stops acting and says so:\n{}",
        said()
    );

    // A new proxy without a cached copy refuses to start, with the reason; one with the
    // cache starts from it.
    let refused = start(&local, &url, &[]);
    let why = format!(
        "{:#}",
        refused.err().expect("a proxy cannot start on nothing")
    );
    assert!(why.contains("exited"), "{why}");
    let cached = start(&local, &url, &["--store-cache", cache_arg]).unwrap();
    assert_eq!(get(&cached, "k"), "$1\r\nv\r\n");
    assert_eq!(topology_view(&cached)["store"]["up"], false);

    // The quorum comes back: every proxy follows etcd again.
    for &i in &stopped {
        etcd.pause(i, false);
    }
    etcd.wait_for_leader(Duration::from_secs(30)).unwrap();
    let since = import(&url, dir.path(), &document(2, &y.addr));
    let all: Vec<&Proxy> = proxies.iter().chain([&cached]).collect();
    for (i, p) in all.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(30), || get(p, "k") == "$-1\r\n"),
            "proxy {i} follows etcd again: {}",
            topology_view(p)
        );
        assert_eq!(topology_view(p)["store"]["up"], true);
    }
    assert_eq!(one_leader(&controllers), 0, "elected again:\n{}", said());
    println!(
        "after the quorum came back, all proxies served the change within {} ms",
        since.elapsed().as_millis()
    );
}

/// etcd compacts the history behind its current revision (`--auto-compaction-*` in
/// production). A proxy whose watch starts, or starts again after etcd came back, from a key
/// unchanged since before the compaction is not refused as compacted at every attempt (the
/// watch starts from the store's revision at the read), and the store is not reported down.
#[test]
fn a_watch_behind_etcds_compaction_reads_anew_and_follows_on() {
    let mut etcd = EtcdCluster::start(1).unwrap();
    let url = etcd.url("fjord/compacted");
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (Shard::start().unwrap(), Shard::start().unwrap());
    import(&url, dir.path(), &document(1, &x.addr));
    let local = local_file(dir.path());
    let before = start(&local, &url, &[]).unwrap();
    etcd.write_and_compact("elsewhere", 20).unwrap();
    let after = start(&local, &url, &[]).unwrap();
    let mut c = RawClient::tcp(&after.node).unwrap();
    assert_eq!(c.call_str(&["SET", "k", "on-x"]).unwrap(), "+OK\r\n");

    // etcd restarts on its data: the first proxy's watch starts again behind the compaction.
    etcd.kill(0);
    etcd.restart(0).unwrap();
    etcd.wait_for_leader(Duration::from_secs(30)).unwrap();
    for (name, p) in [("started before", &before), ("started after", &after)] {
        assert!(
            eventually(Duration::from_secs(20), || topology_view(p)["store"]["up"]
                == true),
            "the proxy {name} the compaction never finds the store up: {}",
            topology_view(p)
        );
        // And it stays up: a watch refused as compacted at each attempt says down between
        // its retries (every 500 ms), up only for the moment of each read.
        for _ in 0..20 {
            let view = topology_view(p);
            assert_eq!(view["store"]["up"], true, "the proxy {name}: {view}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let since = import(&url, dir.path(), &document(2, &y.addr));
    all_answer(
        &[before, after],
        "k",
        "$-1\r\n",
        since,
        "after a compaction",
    );
}

/// Whether each controller says it is the acting one (`fjord_admin_leader`); a controller
/// that does not answer (stopped) counts as not acting.
fn leaders(controllers: &[Option<Controller>]) -> Vec<bool> {
    controllers
        .iter()
        .map(|c| {
            c.as_ref()
                .and_then(|c| Scrape::of(&c.admin).ok())
                .is_some_and(|s| s.sum("fjord_admin_leader", &[]) == 1.0)
        })
        .collect()
}

fn one_leader(controllers: &[Option<Controller>]) -> usize {
    let mut seen = Vec::new();
    let ok = eventually(Duration::from_secs(30), || {
        seen = leaders(controllers);
        seen.iter().filter(|l| **l).count() == 1
    });
    assert!(ok, "exactly one controller acts: {seen:?}");
    seen.iter().position(|l| *l).unwrap()
}

/// The newest controller leadership term shard `addr` has seen (`FJORD STATUS`'s leader).
fn leadership_seen(addr: &str) -> u64 {
    let status = RawClient::tcp(addr)
        .and_then(|mut c| c.call_str(&["FJORD", "STATUS"]))
        .unwrap_or_default();
    status
        .split_once("$6\r\nleader\r\n")
        .and_then(|(_, rest)| rest.split("\r\n").nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Shard s1 as the store holds it.
fn stored_shard(url: &str) -> fjord_common::topology::Shard {
    let text = ok(admin(url, &["export"]));
    Topology::parse(&text, None).unwrap().shards[0].clone()
}

#[test]
fn one_elected_controller_acts_and_the_next_finishes_its_failover() {
    let etcd = EtcdCluster::start(3).unwrap();
    let url = etcd.url("fjord/controllers");
    let dir = tempfile::tempdir().unwrap();
    let always = ShardOptions {
        fsync: "always",
        ..Default::default()
    };
    let a = Shard::start_with(always.clone()).unwrap();
    let b = Shard::start_with(ShardOptions {
        extra_args: vec!["--replica-of".into(), a.addr.clone()],
        ..always
    })
    .unwrap();
    let doc = format!(
        "version: 1\nproxies:\n  - listen: 127.0.0.1:7000\nshards:\n  - id: s1\n    addr: \"{}\"\n    slots: [0-16383]\n    replicas: [{{ addr: \"{}\" }}]\n",
        a.addr, b.addr
    );
    import(&url, dir.path(), &doc);
    let proxy = start(&local_file(dir.path()), &url, &[]).unwrap();
    let start_controller = |n: usize| {
        let log = std::fs::File::create(dir.path().join(format!("controller{n}.log"))).unwrap();
        Some(Controller::start_on(&["--store", &url], 100, Stdio::from(log)).unwrap())
    };
    let logs = || {
        (1..=3)
            .map(|n| {
                let text = std::fs::read_to_string(dir.path().join(format!("controller{n}.log")))
                    .unwrap_or_default();
                format!("--- controller{n}:\n{text}")
            })
            .collect::<String>()
    };
    let mut controllers = vec![start_controller(1), start_controller(2)];
    let first = one_leader(&controllers);

    // The leader manages the shard: a term, the replica recorded in sync; writes acknowledged.
    assert!(
        eventually(Duration::from_secs(30), || {
            let s = stored_shard(&url);
            s.term > 0 && s.replicas[0].in_sync
        }),
        "the elected controller never managed the shard:\n{}",
        logs()
    );
    let mut c = RawClient::tcp(&proxy.node).unwrap();
    assert_eq!(c.call_str(&["SET", "k", "acked"]).unwrap(), "+OK\r\n");
    let first_leadership = leadership_seen(&b.addr);
    assert!(first_leadership > 0, "the shards know the elected leader");

    // SIGSTOP of the primary; as soon as the leader has taken the failover's term (it then
    // fences, waits out the silent primary's lease, promotes, publishes), kill -9 of the
    // leader.
    let term = stored_shard(&url).term;
    pause_process(a.pid(), true);
    let mut caught = None;
    assert!(
        eventually(Duration::from_secs(20), || {
            let s = stored_shard(&url);
            if s.term > term {
                caught = Some(s);
            }
            caught.is_some()
        }),
        "the leader never started the failover:\n{}",
        logs()
    );
    controllers[first].as_mut().unwrap().kill9();
    controllers[first] = None;
    let caught = caught.unwrap();
    assert_eq!(
        caught.addr, a.addr,
        "the leader was killed in the middle of the failover (term {} taken, not published)",
        caught.term
    );

    // The other is elected once the dead one's lease expires, and finishes the failover.
    let second = one_leader(&controllers);
    assert_ne!(second, first);
    assert!(
        eventually(Duration::from_secs(30), || stored_shard(&url).addr
            == b.addr),
        "the next leader did not finish the failover:\n{}",
        logs()
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            RawClient::tcp(&proxy.node)
                .and_then(|mut c| c.call_str(&["GET", "k"]))
                .is_ok_and(|r| r == "$5\r\nacked\r\n")
        }),
        "the acknowledged write is served by the new primary"
    );

    // SIGSTOP of the leader until its lease expires: a third controller takes over; the
    // stopped one, woken, has lost its leadership and says so, and acts no more.
    controllers.push(start_controller(3));
    let version = Topology::parse(&ok(admin(&url, &["export"])), None)
        .unwrap()
        .version;
    // Out of the list while stopped: its metrics would not answer.
    let stopped = controllers[second].take().unwrap();
    stopped.pause(true);
    let third = one_leader(&controllers);
    assert_eq!(third, 2);
    stopped.pause(false);
    controllers[second] = Some(stopped);
    assert!(
        eventually(Duration::from_secs(20), || logs()
            .contains("lost the leadership")),
        "the woken controller knows it lost:\n{}",
        logs()
    );
    assert_eq!(one_leader(&controllers), 2, "{}", logs());
    // The later leaders' probes told the serving shard of their election: the first one's
    // commands would be refused there (the old primary is still stopped).
    assert!(
        eventually(Duration::from_secs(10), || leadership_seen(&b.addr)
            > first_leadership),
        "the shard never heard of the newer leaders"
    );
    let after = Topology::parse(&ok(admin(&url, &["export"])), None).unwrap();
    assert!(after.version >= version);
    assert_eq!(after.shards[0].addr, b.addr);
}
