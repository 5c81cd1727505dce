//! Replica listeners: each cluster listener's replica, advertised as in a Redis Cluster of
//! three masters and three replicas, serves READONLY reads from the shards' replicas, and
//! falls back to the primary when a replica is too stale to serve them.

use fjord_tests::metrics::Scrape;
use fjord_tests::{eventually, pause_process, Cluster, ClusterOptions, RawClient};
use redis::AsyncCommands;
use std::time::Duration;

fn six_nodes() -> Cluster {
    Cluster::start_with(ClusterOptions {
        replicas: true,
        settings: vec!["  replica_max_lag_ms: 300".into()],
        ..ClusterOptions::default()
    })
    .unwrap()
}

fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').unwrap().1
}

fn replica_reads(c: &Cluster, outcome: &str) -> f64 {
    Scrape::of(&c.admin)
        .unwrap()
        .sum("fjord_proxy_replica_reads_total", &[("outcome", outcome)])
}

#[test]
fn replica_listeners_are_advertised_as_the_masters_replicas() {
    let c = six_nodes();
    assert_eq!(c.replica_nodes.len(), 3);
    let mut client = c.client().unwrap();

    // CLUSTER SLOTS: each range lists its master, then its replica.
    let mut con = redis::Client::open(format!("redis://{}", c.nodes[0]))
        .unwrap()
        .get_connection()
        .unwrap();
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).unwrap();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    for (range, (master, replica)) in ranges.iter().zip(c.nodes.iter().zip(&c.replica_nodes)) {
        let redis::Value::Array(parts) = range else {
            panic!("{range:?}")
        };
        let port = |node: &redis::Value| match node {
            redis::Value::Array(fields) => fields[1].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(parts.len(), 4, "{range:?}");
        assert_eq!(
            port(&parts[2]),
            redis::Value::Int(port_of(master).parse().unwrap())
        );
        assert_eq!(
            port(&parts[3]),
            redis::Value::Int(port_of(replica).parse().unwrap())
        );
    }

    // CLUSTER NODES: three masters, three slaves of them; myself where it was asked.
    let mut on_replica = RawClient::tcp(&c.replica_nodes[1]).unwrap();
    let text = on_replica.call_str(&["CLUSTER", "NODES"]).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains('@')).collect();
    assert_eq!(lines.len(), 6, "{text}");
    let masters: Vec<&str> = lines
        .iter()
        .filter(|l| l.split(' ').nth(2).unwrap().ends_with("master"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(masters.len(), 3, "{text}");
    for l in lines.iter().filter(|l| l.contains("slave")) {
        let of = l.split(' ').nth(3).unwrap();
        assert!(masters.contains(&of), "a replica of no master: {l}");
    }
    let myself: Vec<&&str> = lines.iter().filter(|l| l.contains("myself")).collect();
    assert_eq!(myself.len(), 1, "{text}");
    assert!(myself[0].contains("myself,slave"), "{text}");
    assert!(
        myself[0].contains(&format!(":{}@", port_of(&c.replica_nodes[1]))),
        "{text}"
    );
    let myid = on_replica.call_str(&["CLUSTER", "MYID"]).unwrap();
    assert!(
        myid.contains(myself[0].split(' ').next().unwrap()),
        "{myid}"
    );

    // CLUSTER REPLICAS of a master: its replica's line; of a replica: an error.
    let replicas = client
        .call_str(&["CLUSTER", "REPLICAS", masters[0]])
        .unwrap();
    assert!(replicas.contains(" slave "), "{replicas}");
    let replica_id = myself[0].split(' ').next().unwrap();
    let refused = client
        .call_str(&["CLUSTER", "REPLICAS", replica_id])
        .unwrap();
    assert!(refused.starts_with("-ERR"), "{refused}");

    // CLUSTER SHARDS: a master and a replica per shard.
    let shards = client.call_str(&["CLUSTER", "SHARDS"]).unwrap();
    assert_eq!(shards.matches("$7\r\nreplica\r\n").count(), 3, "{shards}");
    assert_eq!(shards.matches("$6\r\nmaster\r\n").count(), 3, "{shards}");

    // redis-cli --cluster check: three masters with a replica each, every slot covered.
    let out = std::process::Command::new("redis-cli")
        .args(["--cluster", "check", &c.nodes[0]])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert_eq!(report.matches("1 slaves.").count(), 3, "{report}");
    assert_eq!(
        report.lines().filter(|l| l.starts_with("S: ")).count(),
        3,
        "{report}"
    );
    assert!(report.contains("[OK] All 16384 slots covered."), "{report}");
}

#[test]
fn readonly_reads_on_a_replica_listener_come_from_replicas_and_fall_back_when_stale() {
    let c = six_nodes();
    let mut primary = c.client().unwrap();
    for i in 0..100 {
        let key = format!("key:{i}");
        assert_eq!(primary.call_str(&["SET", &key, "v"]).unwrap(), "+OK\r\n");
    }
    let mut reader = RawClient::tcp(&c.replica_nodes[0]).unwrap();
    // Without READONLY a replica listener reads from the primaries.
    assert_eq!(reader.call_str(&["GET", "key:1"]).unwrap(), "$1\r\nv\r\n");
    assert_eq!(replica_reads(&c, "served"), 0.0);
    assert_eq!(reader.call_str(&["READONLY"]).unwrap(), "+OK\r\n");
    // The replicas hold every write once acknowledged; a read may go out before a replica
    // heard of its primary's acknowledgement, and then waits for it.
    for i in 0..100 {
        let key = format!("key:{i}");
        assert_eq!(
            reader.call_str(&["GET", &key]).unwrap(),
            "$1\r\nv\r\n",
            "{key}"
        );
    }
    assert!(replica_reads(&c, "served") > 0.0);
    // Split reads too: each shard's part goes to its replica.
    let before = replica_reads(&c, "served");
    assert_eq!(
        reader
            .call_str(&["MGET", "key:1", "key:2", "key:3", "nope"])
            .unwrap(),
        "*4\r\n$1\r\nv\r\n$1\r\nv\r\n$1\r\nv\r\n$-1\r\n"
    );
    assert_eq!(
        reader
            .call_str(&["EXISTS", "key:1", "key:2", "nope"])
            .unwrap(),
        ":2\r\n"
    );
    assert!(replica_reads(&c, "served") >= before + 2.0);
    // Writes reach the primary (a Redis replica would redirect them there).
    assert_eq!(reader.call_str(&["SET", "w", "1"]).unwrap(), "+OK\r\n");
    assert_eq!(primary.call_str(&["GET", "w"]).unwrap(), "$1\r\n1\r\n");
    // READWRITE ends it.
    assert_eq!(reader.call_str(&["READWRITE"]).unwrap(), "+OK\r\n");
    let before = replica_reads(&c, "served");
    assert_eq!(reader.call_str(&["GET", "key:1"]).unwrap(), "$1\r\nv\r\n");
    assert_eq!(replica_reads(&c, "served"), before);
    assert_eq!(reader.call_str(&["READONLY"]).unwrap(), "+OK\r\n");

    // A replica whose primary is silent falls behind the lag bound: its reads go to the
    // primary, which answers once it runs again.
    let stopped = &c.shards[0];
    let pid = fjord_tests::info_field(&stopped.addr, "server", "process_id").unwrap();
    let pause = move |stop| pause_process(pid.parse().unwrap(), stop);
    pause(true);
    std::thread::sleep(Duration::from_millis(800));
    let fell_back = replica_reads(&c, "fell_back");
    let key = (0..100)
        .map(|i| format!("key:{i}"))
        .find(|k| fjord_common::slot_of(k.as_bytes()) <= 5000)
        .unwrap();
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        pause(false);
    });
    let got = reader.call_str(&["GET", &key]).unwrap();
    resume.join().unwrap();
    assert_eq!(got, "$1\r\nv\r\n");
    assert!(replica_reads(&c, "fell_back") > fell_back);
}

#[tokio::test]
async fn the_redis_crate_cluster_client_reads_from_replicas() {
    let c = six_nodes();
    let urls: Vec<String> = c.nodes.iter().map(|n| format!("redis://{n}")).collect();
    let client = redis::cluster::ClusterClientBuilder::new(urls)
        .read_from_replicas()
        .build()
        .unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    for i in 0..50 {
        let _: () = conn.set(format!("k{i}"), i).await.unwrap();
    }
    for i in 0..50 {
        let v: i64 = conn.get(format!("k{i}")).await.unwrap();
        assert_eq!(v, i);
    }
    assert!(
        eventually(Duration::from_secs(5), || replica_reads(&c, "served") > 0.0),
        "no read went to a replica"
    );
}

/// A stopped replica holds its READONLY reads no longer than `replica_max_lag_ms` (not the
/// much longer `command_timeout_ms`): the primary answers them, and the replica gets no more
/// reads for a while.
#[test]
fn reads_a_stopped_replica_holds_go_to_the_primary_after_the_lag_bound() {
    let c = Cluster::start_with(ClusterOptions {
        replicas: true,
        settings: vec![
            "  replica_max_lag_ms: 300".into(),
            "  command_timeout_ms: 120000".into(),
        ],
        ..ClusterOptions::default()
    })
    .unwrap();
    let mut primary = c.client().unwrap();
    let keys: Vec<String> = (0..100)
        .map(|i| format!("key:{i}"))
        .filter(|k| fjord_common::slot_of(k.as_bytes()) <= 5000)
        .collect();
    for k in &keys {
        assert_eq!(primary.call_str(&["SET", k, "v"]).unwrap(), "+OK\r\n");
    }
    let mut reader = RawClient::tcp(&c.replica_nodes[0]).unwrap();
    assert_eq!(reader.call_str(&["READONLY"]).unwrap(), "+OK\r\n");
    assert!(
        eventually(Duration::from_secs(10), || {
            reader.call_str(&["GET", &keys[0]]).unwrap() == "$1\r\nv\r\n"
                && replica_reads(&c, "served") > 0.0
        }),
        "no read was served by the replica"
    );
    let pid = fjord_tests::info_field(&c.replicas[0].addr, "server", "process_id").unwrap();
    let pause = move |stop| pause_process(pid.parse().unwrap(), stop);
    pause(true);
    let fell_back = replica_reads(&c, "fell_back");
    // The client's own read timeout (30 s) is far below command_timeout_ms: only a proxy
    // that gave up on the replica answers in time.
    // A split read first (its part waits for the replica), then single-key ones.
    let mget = reader.call_str(&["MGET", &keys[0], &keys[1]]).unwrap();
    let replies: Vec<String> = keys[..10]
        .iter()
        .map(|k| reader.call_str(&["GET", k]).unwrap())
        .collect();
    pause(false);
    assert_eq!(mget, "*2\r\n$1\r\nv\r\n$1\r\nv\r\n");
    assert!(replies.iter().all(|r| r == "$1\r\nv\r\n"), "{replies:?}");
    assert!(replica_reads(&c, "fell_back") > fell_back);
}
