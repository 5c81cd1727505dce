//! Metrics end to end: counters move by exactly the traffic sent, health follows a shard, and
//! the Grafana dashboard's every expression runs in a real Prometheus scraping a cluster.

use fjord_common::resp::encode_request;
use fjord_common::slot_of;
use fjord_tests::metrics::{grafana_dir, Prometheus, Scrape};
use fjord_tests::{http, words, Cluster, ClusterOptions, RawClient, Shard, ShardOptions};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cluster_with_shard_admin() -> Cluster {
    Cluster::start_with(ClusterOptions {
        shard: ShardOptions {
            admin: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap()
}

/// The test cluster's slot ranges (`Cluster` divides 16384 slots evenly among 3 shards).
const RANGES: [(usize, usize); 3] = [(0, 5460), (5461, 10921), (10922, 16383)];

fn shard_of(key: &str) -> usize {
    let slot = slot_of(key.as_bytes()) as usize;
    RANGES
        .iter()
        .position(|&(a, b)| (a..=b).contains(&slot))
        .unwrap()
}

/// Everything the cluster exports, proxy and shards, at one moment.
struct Snapshot {
    proxy: Scrape,
    shards: Vec<Scrape>,
}

impl Snapshot {
    fn of(c: &Cluster) -> Self {
        Self {
            proxy: Scrape::of(&c.admin).unwrap(),
            shards: c
                .shards
                .iter()
                .map(|s| Scrape::of(s.admin.as_deref().unwrap()).unwrap())
                .collect(),
        }
    }

    fn proxy(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.proxy.sum(name, labels)
    }

    /// Summed over every shard.
    fn shards(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.shards.iter().map(|s| s.sum(name, labels)).sum()
    }
}

/// A client that counts the bytes it sends and receives, as the proxy should.
struct Counted {
    client: RawClient,
    sent: usize,
    received: usize,
}

impl Counted {
    fn call(&mut self, line: &str) -> String {
        let args = words(line);
        let mut encoded = bytes::BytesMut::new();
        encode_request(&args, &mut encoded);
        self.sent += encoded.len();
        let reply = self.client.call(&args).unwrap();
        self.received += reply.len();
        String::from_utf8_lossy(&reply).into_owned()
    }
}

#[test]
fn counters_move_by_exactly_the_traffic_sent() {
    let c = cluster_with_shard_admin();
    let before = Snapshot::of(&c);
    let mut client = Counted {
        client: c.standalone_client().unwrap(),
        sent: 0,
        received: 0,
    };
    let n = 40;
    for i in 0..n {
        assert_eq!(client.call(&format!("SET key:{i} v{i}")), "+OK\r\n");
    }
    for i in 0..n {
        assert!(client.call(&format!("GET key:{i}")).starts_with('$'));
    }
    let mget_keys: Vec<String> = (0..37).map(|i| format!("key:{}", i * 3)).collect();
    let fanout = mget_keys
        .iter()
        .map(|k| shard_of(k))
        .collect::<BTreeSet<_>>();
    assert!(fanout.len() > 1, "the MGET must span shards");
    assert!(client
        .call(&format!("MGET {}", mget_keys.join(" ")))
        .starts_with("*37\r\n"));
    assert!(client
        .call("GET")
        .starts_with("-ERR wrong number of arguments"));
    assert!(client
        .call("NOSUCHCOMMAND x")
        .starts_with("-ERR unknown command"));
    let after = Snapshot::of(&c);

    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.proxy(name, labels) - before.proxy(name, labels)
    };
    let n = n as f64;
    let total = "fjord_proxy_commands_total";
    assert_eq!(moved(total, &[("command", "set"), ("result", "ok")]), n);
    assert_eq!(moved(total, &[("command", "get"), ("result", "ok")]), n);
    assert_eq!(moved(total, &[("command", "get"), ("result", "err")]), 1.0);
    assert_eq!(moved(total, &[("command", "mget"), ("result", "ok")]), 1.0);
    assert_eq!(
        moved(total, &[("command", "unknown"), ("result", "err")]),
        1.0
    );
    assert_eq!(moved(total, &[]), 2.0 * n + 3.0);
    let duration_count = "fjord_proxy_command_duration_seconds_count";
    assert_eq!(moved(duration_count, &[("command", "get")]), n + 1.0);
    assert_eq!(
        moved("fjord_proxy_multikey_keys_sum", &[("command", "mget")]),
        37.0
    );
    assert_eq!(
        moved("fjord_proxy_multikey_keys_count", &[("command", "mget")]),
        1.0
    );
    let shards_touched = fanout.len() as f64;
    assert_eq!(
        moved("fjord_proxy_fanout_shards_sum", &[("command", "mget")]),
        shards_touched
    );
    // One backend request per SET and GET, one per shard for the MGET; errors never left.
    let backend = "fjord_proxy_backend_requests_total";
    assert_eq!(
        moved(backend, &[("result", "ok")]),
        2.0 * n + shards_touched
    );
    assert_eq!(moved(backend, &[]), 2.0 * n + shards_touched);
    assert_eq!(
        moved("fjord_proxy_backend_duration_seconds_count", &[]),
        2.0 * n + shards_touched
    );
    for i in 0..3 {
        let shard = format!("s{}", i + 1);
        let here = (0..40)
            .filter(|k| shard_of(&format!("key:{k}")) == i)
            .count() as f64;
        let mget_here = f64::from(u8::from(fanout.contains(&i)));
        assert_eq!(
            moved(backend, &[("shard", &shard)]),
            2.0 * here + mget_here,
            "{shard}"
        );
        assert_eq!(
            after.proxy("fjord_proxy_backend_up", &[("shard", &shard)]),
            1.0
        );
        assert_eq!(
            after.proxy("fjord_proxy_backend_inflight", &[("shard", &shard)]),
            0.0
        );
    }
    assert_eq!(
        moved("fjord_proxy_bytes_total", &[("direction", "in")]),
        client.sent as f64
    );
    assert_eq!(
        moved("fjord_proxy_bytes_total", &[("direction", "out")]),
        client.received as f64
    );
    assert_eq!(
        moved(
            "fjord_proxy_client_connections_total",
            &[("result", "accepted")]
        ),
        1.0
    );
    assert_eq!(after.proxy("fjord_proxy_client_connections", &[]), 1.0);
    assert_eq!(after.proxy("fjord_proxy_topology_version", &[]), 1.0);
    assert_eq!(moved("fjord_proxy_clusterdown_replies_total", &[]), 0.0);

    // The shards saw the same commands, the MGET once per shard it touched.
    let on_shards = |name: &str, labels: &[(&str, &str)]| {
        after.shards(name, labels) - before.shards(name, labels)
    };
    let shard_total = "fjord_shard_commands_total";
    assert_eq!(
        on_shards(shard_total, &[("command", "set"), ("result", "ok")]),
        n
    );
    assert_eq!(
        on_shards(shard_total, &[("command", "get"), ("result", "ok")]),
        n
    );
    assert_eq!(
        on_shards(shard_total, &[("command", "mget")]),
        shards_touched
    );
    assert_eq!(after.shards("fjord_shard_keys", &[]), n);
    assert_eq!(on_shards("fjord_shard_writes_total", &[]), n);
    assert_eq!(on_shards("fjord_shard_group_commit_writes_sum", &[]), n);
    let mget_hits = (0..37).filter(|i| i * 3 < 40).count() as f64;
    assert_eq!(
        on_shards("fjord_shard_keyspace_hits_total", &[]),
        n + mget_hits
    );
    assert_eq!(after.shards("fjord_shard_writable", &[]), 3.0);
    assert!(after.shards("fjord_shard_disk_bytes", &[]) > 0.0);
    // The proxy's connections to the shards are the shards' clients.
    assert!(after.shards("fjord_shard_client_connections", &[]) >= 3.0);
}

#[test]
fn recording_off_keeps_per_request_series_still() {
    let c = Cluster::start_with(ClusterOptions {
        settings: vec!["  record_metrics: false".into()],
        ..Default::default()
    })
    .unwrap();
    let mut client = c.standalone_client().unwrap();
    for i in 0..20 {
        client.call(&words(&format!("SET k{i} v"))).unwrap();
    }
    let s = Scrape::of(&c.admin).unwrap();
    assert!(!s.has("fjord_proxy_commands_total", &[]));
    assert_eq!(s.sum("fjord_proxy_backend_requests_total", &[]), 0.0);
    // What INFO and operators need regardless still moves.
    assert!(s.sum("fjord_proxy_bytes_total", &[("direction", "in")]) > 0.0);
    assert_eq!(s.sum("fjord_proxy_backend_up", &[]), 3.0);
}

#[test]
fn readiness_and_backend_up_follow_a_shard_stopped_and_restarted() {
    let mut c = cluster_with_shard_admin();
    let mut client = c.standalone_client().unwrap();
    assert_eq!(http(&c.admin, "GET", "/readyz").unwrap().0, 200);
    for s in &c.shards {
        let admin = s.admin.as_deref().unwrap();
        assert_eq!(
            http(admin, "GET", "/readyz").unwrap(),
            (200, "ready\n".into())
        );
        assert_eq!(http(admin, "GET", "/healthz").unwrap().0, 200);
    }
    // "bar" (slot 5061) lives on s1.
    assert_eq!(client.call(&words("SET bar 1")).unwrap(), b"+OK\r\n");
    let up = |c: &Cluster| {
        Scrape::of(&c.admin)
            .unwrap()
            .sum("fjord_proxy_backend_up", &[("shard", "s1")])
    };
    assert_eq!(up(&c), 1.0);

    let addr = c.shards[0].addr.clone();
    let dir = c.shards[0].data_dir.clone();
    c.shards[0].kill9();
    wait_for("backend_up{shard=s1} to drop to 0", || up(&c) == 0.0);
    // One shard down leaves the proxy ready: a load balancer must not drop every proxy.
    assert_eq!(http(&c.admin, "GET", "/readyz").unwrap().0, 200);
    let before = Scrape::of(&c.admin).unwrap();
    let reply = String::from_utf8(client.call(&words("GET bar")).unwrap()).unwrap();
    assert!(reply.starts_with("-CLUSTERDOWN"), "{reply}");
    let after = Scrape::of(&c.admin).unwrap();
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    assert_eq!(moved("fjord_proxy_clusterdown_replies_total", &[]), 1.0);
    assert_eq!(
        moved(
            "fjord_proxy_commands_total",
            &[("command", "get"), ("result", "clusterdown")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "fjord_proxy_backend_requests_total",
            &[("shard", "s1"), ("result", "unavailable")]
        ),
        1.0
    );
    for other in ["s2", "s3"] {
        assert_eq!(
            after.sum("fjord_proxy_backend_up", &[("shard", other)]),
            1.0
        );
    }

    let restarted = fjord_tests::Shard::start_with(ShardOptions {
        data_dir: Some(dir),
        listen: Some(addr),
        admin: true,
        ..Default::default()
    })
    .unwrap();
    wait_for("backend_up{shard=s1} to come back to 1", || up(&c) == 1.0);
    assert_eq!(client.call(&words("GET bar")).unwrap(), b"$1\r\n1\r\n");
    let admin = restarted.admin.as_deref().unwrap();
    assert_eq!(http(admin, "GET", "/readyz").unwrap().0, 200);
    assert_eq!(Scrape::of(admin).unwrap().sum("fjord_shard_keys", &[]), 1.0);
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every PromQL expression in the dashboard: panel targets, annotations, and the queries
/// behind template variables (`label_values(m, l)` as the query Grafana runs for it).
fn dashboard_expressions(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default();
            out.push((
                format!("panel {title:?}"),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = a["expr"].as_str() {
            out.push((format!("annotation {:?}", a["name"]), expr.to_string()));
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .expect("variables are label_values(metric, label)");
            let (metric, label) = inner.split_once(',').unwrap();
            out.push((
                format!("variable {:?}", v["name"]),
                format!("count by ({}) ({metric})", label.trim()),
            ));
        }
    }
    out
}

/// Grafana's variables, as the dashboard at its defaults would expand them.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "10s")
        .replace("$__range", "1m")
        .replace("$shard", ".*")
        .replace("$command", ".*")
}

fn read_dashboard() -> serde_json::Value {
    let path = grafana_dir().join("dashboards/fjord.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn dashboard_and_provisioning_files_are_well_formed() {
    let d = read_dashboard();
    assert!(d["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty() && u.len() <= 40));
    assert!(d["title"].as_str().is_some());
    assert!(d["schemaVersion"].as_u64().is_some());
    let variables: BTreeSet<String> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id at {title}"
        );
        let g = &p["gridPos"];
        let (x, w, h) = (
            g["x"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: gridPos {g}");
        assert!(g["y"].as_u64().is_some());
        if p["type"] == "row" {
            continue;
        }
        assert!(
            ["timeseries", "stat", "gauge", "table", "state-timeline"]
                .contains(&p["type"].as_str().unwrap()),
            "{title}: type {}",
            p["type"]
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                refs.insert(t["refId"].as_str().unwrap()),
                "{title}: duplicate refId"
            );
            let expr = t["expr"].as_str().unwrap();
            for var in ["shard", "command", "datasource"] {
                if expr.contains(&format!("${var}")) {
                    assert!(variables.contains(var), "{title} uses undefined ${var}");
                }
            }
        }
    }
    // Provisioning: a Prometheus datasource and a file provider, as grafana-server reads them.
    let read = |p: &str| std::fs::read_to_string(grafana_dir().join(p)).unwrap();
    let datasources = read("provisioning/datasources/fjord.yaml");
    assert!(datasources.contains("apiVersion: 1") && datasources.contains("type: prometheus"));
    let providers = read("provisioning/dashboards/fjord.yaml");
    assert!(providers.contains("apiVersion: 1") && providers.contains("type: file"));
    assert!(providers.contains("path: ${FJORD_DASHBOARDS}"));
}

#[test]
fn every_dashboard_expression_returns_data_in_a_real_prometheus() {
    let c = cluster_with_shard_admin();
    // The example prometheus.yml, pointed at this cluster's ports and scraping every second.
    let mut config = std::fs::read_to_string(grafana_dir().join("prometheus.yml"))
        .unwrap()
        .replace("127.0.0.1:9000", &c.admin)
        .replace("15s", "1s");
    // A replica of each shard, as the default local cluster has, scraped where the example
    // file lists the replicas.
    let replicas: Vec<Shard> = c
        .shards
        .iter()
        .map(|s| {
            Shard::start_with(ShardOptions {
                admin: true,
                extra_args: vec!["--replica-of".into(), s.addr.clone()],
                ..Default::default()
            })
            .unwrap()
        })
        .collect();
    for (i, s) in c.shards.iter().enumerate() {
        config = config.replace(
            &format!("127.0.0.1:910{}", i + 1),
            s.admin.as_deref().unwrap(),
        );
        config = config.replace(
            &format!("127.0.0.1:910{}", i + 4),
            replicas[i].admin.as_deref().unwrap(),
        );
    }
    // The controller, managing the cluster's shards on a copy of the file (its writes do not
    // disturb the topology change below; the replicas are not in it).
    let controller_file = c.config.with_extension("controller.yaml");
    std::fs::copy(&c.config, &controller_file).unwrap();
    let controller =
        fjord_tests::Controller::start(&controller_file, 300, std::process::Stdio::inherit())
            .unwrap();
    config = config.replace("127.0.0.1:9100", &controller.admin);
    let prometheus = Prometheus::start(&config).unwrap();

    // Traffic of every kind the dashboard shows, until the test ends.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = Arc::clone(&stop);
        let addr = c.standalone.clone();
        std::thread::spawn(move || {
            let mut client = RawClient::tcp(&addr).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for line in [
                    format!("SET k{i} v PX 200"),
                    format!("GET k{i}"),
                    format!("MSET a{i} 1 b{i} 2 c{i} 3"),
                    format!("MGET a{i} b{i} c{i} nope{i}"),
                    format!("DEL a{i} b{i}"),
                    "GET".to_string(),
                ] {
                    client.call(&words(&line)).unwrap();
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    prometheus
        .wait_until(Duration::from_secs(30), "scraping all 8 targets", |p| {
            let targets = p.targets()?;
            Ok(targets.len() == 8 && targets.iter().all(|(_, _, health)| health == "up"))
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}", prometheus.targets()));
    // The annotation marks topology changes: make one, with samples on both sides of it.
    std::thread::sleep(Duration::from_secs(3));
    let ranges: Vec<Vec<(usize, usize)>> = RANGES.iter().map(|&r| vec![r]).collect();
    c.write_topology(2, &ranges).unwrap();
    let version = || {
        let v = prometheus
            .query("max(fjord_proxy_topology_version)")
            .unwrap();
        v["result"][0]["value"][1].as_str() == Some("2")
    };
    prometheus
        .wait_until(Duration::from_secs(30), "seeing topology version 2", |_| {
            Ok(version())
        })
        .unwrap();
    // Enough samples after the change for every rate window (10 s at 1 s scrapes).
    std::thread::sleep(Duration::from_secs(4));

    let dashboard = read_dashboard();
    let expressions = dashboard_expressions(&dashboard);
    assert!(
        expressions.len() > 30,
        "only {} expressions",
        expressions.len()
    );
    let mut empty = Vec::new();
    for (place, expr) in &expressions {
        let promql = substitute(expr);
        let data = prometheus.query(&promql).unwrap();
        let series = data["result"].as_array().map_or(0, |r| r.len());
        println!("{series:>3} series  {place}: {promql}");
        if series == 0 {
            empty.push(format!("{place}: {promql}"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    // Nothing failed here: the controller, running all along, must not have failed over.
    let failovers = fjord_tests::metrics::Scrape::of(&controller.admin)
        .unwrap()
        .sum("fjord_admin_failovers_total", &[]);
    assert_eq!(failovers, 0.0, "a fault-free run made failovers");
    drop(controller);
    assert!(
        empty.is_empty(),
        "expressions without data:\n{}",
        empty.join("\n")
    );
}
