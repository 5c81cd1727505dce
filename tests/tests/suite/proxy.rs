//! fjord-proxy end to end: a cluster shaped like the default (three shards, three cluster
//! listeners, a standalone listener) on free ports, spoken to byte for byte.

use fjord_tests::{pause_process, words, Cluster, RawClient, RedisServer};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn text(reply: Vec<u8>) -> String {
    String::from_utf8_lossy(&reply).into_owned()
}

/// The bulk strings of a flat RESP array reply.
fn bulks(reply: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(reply);
    let lines: Vec<&str> = s.split("\r\n").collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('$') && lines[i] != "$-1" {
            out.push(lines[i + 1].to_string());
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn cluster_replies_have_redis_shapes_in_resp2_and_resp3() {
    let c = Cluster::start().unwrap();
    let mut cl = RawClient::tcp(&c.nodes[1]).unwrap();
    let port = |i: usize| c.nodes[i].rsplit_once(':').unwrap().1.to_string();

    let slots = text(cl.call(&words("CLUSTER SLOTS")).unwrap());
    assert!(
        slots.starts_with("*3\r\n*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n"),
        "{slots}"
    );
    assert!(slots.contains(&format!(":{}\r\n$40\r\n", port(0))));
    assert!(slots.contains(":5461\r\n:10922\r\n") && slots.contains(":10923\r\n:16383\r\n"));
    assert_eq!(
        slots.matches("*0\r\n").count(),
        3,
        "empty metadata per node: {slots}"
    );

    let nodes = text(cl.call(&words("CLUSTER NODES")).unwrap());
    let myself: Vec<&str> = nodes
        .lines()
        .filter(|l| l.contains("myself,master"))
        .collect();
    assert_eq!(myself.len(), 1, "{nodes}");
    assert!(
        myself[0].contains(&format!("127.0.0.1:{}@", port(1))),
        "myself is the listener reached: {nodes}"
    );
    assert!(myself[0].ends_with("connected 5461-10922"), "{nodes}");
    let myid = text(cl.call(&words("CLUSTER MYID")).unwrap());
    assert!(
        myid.starts_with("$40\r\n") && myself[0].starts_with(&myid[5..45]),
        "{myid}"
    );

    let info = text(cl.call(&words("CLUSTER INFO")).unwrap());
    for field in [
        "cluster_state:ok",
        "cluster_slots_assigned:16384",
        "cluster_known_nodes:3",
        "cluster_size:3",
        "cluster_current_epoch:1",
    ] {
        assert!(info.contains(field), "{field} missing from {info}");
    }
    let shards = text(cl.call(&words("CLUSTER SHARDS")).unwrap());
    assert!(shards.starts_with("*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n"), "{shards}");

    for (key, slot) in [
        ("foo", 12182),
        ("bar", 5061),
        ("{user1}:a", 8106),
        ("123456789", 12739),
        ("{}foo", 9500),
        ("foo{}{bar}", 8363),
        ("foo{{bar}}zap", 4015),
        ("foo{bar}{zap}", 5061),
    ] {
        assert_eq!(
            text(cl.call(&["CLUSTER", "KEYSLOT", key]).unwrap()),
            format!(":{slot}\r\n")
        );
    }
    assert_eq!(
        text(cl.call(&["CLUSTER", "KEYSLOT", ""]).unwrap()),
        ":0\r\n"
    );
    for cmd in ["READONLY", "READWRITE", "ASKING"] {
        assert_eq!(text(cl.call(&[cmd]).unwrap()), "+OK\r\n");
    }
    assert_eq!(
        text(cl.call(&words("SELECT 1")).unwrap()),
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(
        text(cl.call(&words("CLUSTER foo")).unwrap()),
        "-ERR unknown subcommand 'foo'. Try CLUSTER HELP.\r\n"
    );
    let meet = text(cl.call(&words("CLUSTER MEET 127.0.0.1 7009")).unwrap());
    assert!(meet.starts_with("-ERR CLUSTER MEET is not supported by fjord: the topology is owned by the cluster file"), "{meet}");
    let info = text(cl.call(&words("INFO")).unwrap());
    assert!(
        info.contains("redis_mode:cluster")
            && info.contains("loading:0")
            && info.contains("cluster_enabled:1"),
        "{info}"
    );
    let cfg = text(
        cl.call(&words("CONFIG GET cluster-require-full-coverage"))
            .unwrap(),
    );
    assert_eq!(
        cfg,
        "*2\r\n$29\r\ncluster-require-full-coverage\r\n$3\r\nyes\r\n"
    );
    // COMMAND lists what clients may send, not the shard-internal FJORD commands.
    let listed = text(cl.call(&words("COMMAND LIST")).unwrap());
    assert!(
        listed.contains("\r\ncluster\r\n") && !listed.contains("\r\nfjord\r\n"),
        "{listed}"
    );
    assert!(text(cl.call(&words("FJORD DBSIZE 0-16383")).unwrap())
        .starts_with("-ERR unknown command 'FJORD'"));
    assert_eq!(
        text(cl.call(&words("CLIENT SETINFO LIB-NAME redis-py")).unwrap()),
        "+OK\r\n"
    );
    assert!(text(cl.call(&words("CLIENT NOSUCH")).unwrap()).starts_with("-ERR unknown subcommand"));

    // RESP3: HELLO says cluster mode; SLOTS metadata is an empty map; NODES/INFO verbatim.
    let hello = text(cl.call(&words("HELLO 3")).unwrap());
    assert!(
        hello.starts_with("%7\r\n")
            && hello.contains("$4\r\nmode\r\n$7\r\ncluster\r\n")
            && hello.contains("$5\r\nproto\r\n:3\r\n"),
        "{hello}"
    );
    let slots3 = text(cl.call(&words("CLUSTER SLOTS")).unwrap());
    assert_eq!(slots3.matches("%0\r\n").count(), 3, "{slots3}");
    assert!(text(cl.call(&words("CLUSTER NODES")).unwrap()).starts_with("="));
    assert!(text(cl.call(&words("CLUSTER INFO")).unwrap()).starts_with("="));
    assert!(
        text(cl.call(&words("CLUSTER SHARDS")).unwrap()).starts_with("*3\r\n%2\r\n$5\r\nslots\r\n")
    );
    assert_eq!(text(cl.call(&words("GET nothing")).unwrap()), "_\r\n");

    // The standalone listener is not in cluster mode but still answers CLUSTER.
    let mut sa = c.standalone_client().unwrap();
    assert_eq!(text(sa.call(&words("SELECT 0")).unwrap()), "+OK\r\n");
    assert!(text(sa.call(&words("INFO server")).unwrap()).contains("redis_mode:standalone"));
    assert!(text(sa.call(&words("CLUSTER SLOTS")).unwrap()).starts_with("*3\r\n"));
}

/// Cross-slot MGET/MSET/DEL/EXISTS/TOUCH/UNLINK through a cluster listener answer what one
/// Redis answers, byte for byte; commands that need their keys together still need one slot.
#[test]
fn multi_key_commands_across_slots_answer_like_one_redis() {
    let c = Cluster::start().unwrap();
    let redis = RedisServer::start(&[]).unwrap();
    let mut ours = c.client().unwrap();
    let mut theirs = redis.client().unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("key:{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for k in &keys {
        mset.push(k.clone());
        mset.push(format!("value of {k}"));
    }
    let mut script: Vec<Vec<String>> = vec![mset];
    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys.iter().rev().cloned());
    mget.push("missing".into());
    mget.push("key:3".into());
    script.push(mget.clone());
    for cmd in ["EXISTS", "TOUCH"] {
        let mut c = vec![cmd.to_string()];
        c.extend(keys[..10].iter().cloned());
        c.push("key:1".into());
        c.push("nope".into());
        script.push(c);
    }
    for cmd in ["DEL", "UNLINK"] {
        let mut c = vec![cmd.to_string()];
        c.extend(
            keys[(if cmd == "DEL" { 0 } else { 10 })..(if cmd == "DEL" { 10 } else { 20 })]
                .iter()
                .cloned(),
        );
        c.push("nope".into());
        script.push(c);
    }
    script.push(mget);
    for args in &script {
        let a = ours.call(args).unwrap();
        let b = theirs.call(args).unwrap();
        assert_eq!(text(a), text(b), "for {:?}", &args[..2]);
    }
    for line in [
        "RENAME key:30 key:31",
        "MSETNX a 1 b 2",
        "RENAMENX key:30 x",
    ] {
        assert_eq!(
            text(ours.call(&words(line)).unwrap()),
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
        );
    }
    assert_eq!(
        text(ours.call(&words("RENAME {t}a {t}b")).unwrap()),
        "-ERR no such key\r\n"
    );
    assert_eq!(
        text(ours.call(&words("MSETNX {t}a 1 {t}b 2")).unwrap()),
        ":1\r\n"
    );
    // A pipeline over all shards comes back in request order.
    for i in 0..200 {
        ours.send(&["SET".to_string(), format!("p{i}"), i.to_string()])
            .unwrap();
        ours.send(&["GET".to_string(), format!("p{i}")]).unwrap();
    }
    for i in 0..200 {
        assert_eq!(ours.read_reply().unwrap(), b"+OK\r\n");
        assert_eq!(
            text(ours.read_reply().unwrap()),
            format!("${}\r\n{i}\r\n", i.to_string().len())
        );
    }
}

/// One client write holding single-shard commands (batched per shard by the proxy) mixed
/// with split and whole-cluster commands on the same keys: every reply must be what one Redis
/// gives for the same pipeline, so nothing overtook an earlier command of the client.
#[test]
fn one_write_mixing_batched_and_split_commands_keeps_the_clients_order() {
    use rand::{Rng, SeedableRng};
    let c = Cluster::start().unwrap();
    let redis = RedisServer::start(&[]).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let key = |rng: &mut rand::rngs::StdRng| format!("k{}", rng.gen_range(0..12));
    let mut script: Vec<Vec<String>> = Vec::new();
    for i in 0..600 {
        let k = key(&mut rng);
        let cmd: Vec<String> = match rng.gen_range(0..9) {
            0 | 1 => vec!["SET".into(), k, i.to_string()],
            2 => vec!["INCR".into(), format!("n{}", rng.gen_range(0..4))],
            3 | 4 => vec!["GET".into(), k],
            5 => {
                let mut m = vec!["MGET".to_string()];
                m.extend((0..4).map(|_| key(&mut rng)));
                m
            }
            6 => {
                let mut m = vec!["MSET".to_string()];
                for _ in 0..3 {
                    m.push(key(&mut rng));
                    m.push(format!("m{i}"));
                }
                m
            }
            7 => vec!["DEL".into(), k, key(&mut rng)],
            _ => vec!["DBSIZE".into()],
        };
        script.push(cmd);
    }
    let mut pipeline = Vec::new();
    for cmd in &script {
        pipeline.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for a in cmd {
            pipeline.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    let run = |client: &mut RawClient| -> Vec<String> {
        client.send_raw(&pipeline).unwrap();
        (0..script.len())
            .map(|_| text(client.read_reply().unwrap()))
            .collect()
    };
    // The standalone listener: DBSIZE covers the whole cluster, as on the one Redis.
    let ours = run(&mut c.standalone_client().unwrap());
    let theirs = run(&mut redis.client().unwrap());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "reply {i} to {:?}", script[i]);
    }
}

#[test]
fn node_scoped_commands_cover_the_listeners_slots() {
    let c = Cluster::start().unwrap();
    let mut sa = c.standalone_client().unwrap();
    let all: BTreeSet<String> = (0..300).map(|i| format!("k{i}")).collect();
    for k in &all {
        assert_eq!(sa.call(&["SET", k, "v"]).unwrap(), b"+OK\r\n");
    }
    assert_eq!(text(sa.call(&words("DBSIZE")).unwrap()), ":300\r\n");
    let mut sum = 0;
    let mut keys_seen = BTreeSet::new();
    let mut scanned = Vec::new();
    for node in &c.nodes {
        let mut cl = RawClient::tcp(node).unwrap();
        let n: i64 = text(cl.call(&words("DBSIZE")).unwrap())[1..]
            .trim()
            .parse()
            .unwrap();
        assert!(n > 0 && n < 300);
        sum += n;
        let keys = bulks(&cl.call(&words("KEYS *")).unwrap());
        assert_eq!(keys.len() as i64, n);
        keys_seen.extend(keys);
        let mut cursor = "0".to_string();
        loop {
            let reply = cl.call(&["SCAN", &cursor, "COUNT", "7"]).unwrap();
            let mut items = bulks(&reply);
            cursor = items.remove(0);
            scanned.extend(items);
            if cursor == "0" {
                break;
            }
        }
        let info = text(cl.call(&words("INFO keyspace")).unwrap());
        assert!(info.contains(&format!("db0:keys={n},")), "{info}");
        assert!(text(cl.call(&words("RANDOMKEY")).unwrap()).starts_with("$"));
    }
    assert_eq!(sum, 300);
    assert_eq!(keys_seen, all);
    let unique: BTreeSet<String> = scanned.iter().cloned().collect();
    assert_eq!(unique, all, "SCAN over every listener returns every key");
    assert_eq!(scanned.len(), 300, "and none twice");
    // FLUSHALL on one listener empties only the slots it advertises.
    let mut first = c.client().unwrap();
    let n0: i64 = text(first.call(&words("DBSIZE")).unwrap())[1..]
        .trim()
        .parse()
        .unwrap();
    assert_eq!(first.call(&words("FLUSHALL")).unwrap(), b"+OK\r\n");
    assert_eq!(first.call(&words("DBSIZE")).unwrap(), b":0\r\n");
    assert_eq!(
        text(sa.call(&words("DBSIZE")).unwrap()),
        format!(":{}\r\n", 300 - n0)
    );
    assert_eq!(sa.call(&words("FLUSHALL SYNC")).unwrap(), b"+OK\r\n");
    assert_eq!(sa.call(&words("DBSIZE")).unwrap(), b":0\r\n");
    assert_eq!(sa.call(&words("RANDOMKEY")).unwrap(), b"$-1\r\n");
    assert_eq!(
        text(sa.call(&words("SCAN 0")).unwrap()),
        "*2\r\n$1\r\n0\r\n*0\r\n"
    );
}

/// What Jedis 5 sends when it connects (Connection.initializeFromClientConfig: CLIENT SETINFO
/// LIB-NAME and LIB-VER pipelined, READONLY when reading from replicas is on) and when it
/// builds or refreshes its slot cache (CLUSTER SLOTS), then a command on the slot's node.
#[test]
fn jedis_start_up_and_refresh_sequence_succeeds() {
    let c = Cluster::start().unwrap();
    let mut cl = c.client().unwrap();
    cl.send(&words("CLIENT SETINFO LIB-NAME jedis")).unwrap();
    cl.send(&words("CLIENT SETINFO LIB-VER 5.1.0")).unwrap();
    cl.send(&words("READONLY")).unwrap();
    for _ in 0..3 {
        assert_eq!(cl.read_reply().unwrap(), b"+OK\r\n");
    }
    let slots = text(cl.call(&words("CLUSTER SLOTS")).unwrap());
    assert!(slots.starts_with("*3\r\n"));
    // foo is slot 12182: the third listener advertises it.
    let mut owner = RawClient::tcp(&c.nodes[2]).unwrap();
    for line in [
        "CLIENT SETINFO LIB-NAME jedis",
        "CLIENT SETINFO LIB-VER 5.1.0",
        "SET foo bar",
    ] {
        assert_eq!(owner.call(&words(line)).unwrap(), b"+OK\r\n");
    }
    assert_eq!(owner.call(&words("GET foo")).unwrap(), b"$3\r\nbar\r\n");
    assert!(text(owner.call(&words("CLUSTER SLOTS")).unwrap()).starts_with("*3\r\n"));
    // RESP3 configuration: HELLO 3 first.
    let mut r3 = RawClient::tcp(&c.nodes[0]).unwrap();
    assert!(text(r3.call(&words("HELLO 3")).unwrap()).starts_with("%7"));
    assert!(text(r3.call(&words("CLUSTER SLOTS")).unwrap()).contains("%0\r\n"));
}

#[test]
fn passwords_are_checked_before_anything_and_given_to_shards() {
    let c = Cluster::start_with(fjord_tests::ClusterOptions {
        settings: vec![
            "  requirepass: s3cret".into(),
            "  shard_password: inner".into(),
        ],
        shard: fjord_tests::ShardOptions {
            extra_args: vec!["--requirepass".into(), "inner".into()],
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let mut cl = c.client().unwrap();
    assert_eq!(
        text(cl.call(&words("GET a")).unwrap()),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        text(cl.call(&words("CLUSTER SLOTS")).unwrap()),
        "-NOAUTH Authentication required.\r\n"
    );
    assert!(text(cl.call(&words("AUTH wrong")).unwrap()).starts_with("-WRONGPASS"));
    assert_eq!(cl.call(&words("AUTH s3cret")).unwrap(), b"+OK\r\n");
    assert_eq!(cl.call(&words("MSET a 1 b 2 c 3")).unwrap(), b"+OK\r\n");
    let mut r3 = c.client().unwrap();
    assert!(text(r3.call(&words("HELLO 3 AUTH default s3cret")).unwrap()).starts_with("%7"));
    assert_eq!(
        text(r3.call(&words("MGET a b c")).unwrap()),
        "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
}

/// Kill one shard under load: only its slots fail, with CLUSTERDOWN; restart it on the same
/// address and data: they recover without touching the proxy.
#[test]
fn a_dead_shard_fails_only_its_slots_and_recovers() {
    let mut c = Cluster::start().unwrap();
    let mut sa = c.standalone_client().unwrap();
    // Slots 0-5460 are shard 0's: "bar" (5061) lives there, "foo" (12182) on shard 2.
    assert_eq!(sa.call(&words("MSET foo 1 bar 2")).unwrap(), b"+OK\r\n");
    let addr = c.shards[0].addr.clone();
    let dir = c.shards[0].data_dir.clone();
    c.shards[0].kill9();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = text(sa.call(&words("GET bar")).unwrap());
        if r.starts_with("-CLUSTERDOWN") {
            assert!(r.contains("shard s1"), "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "GET bar kept answering {r}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sa.call(&words("GET foo")).unwrap(), b"$1\r\n1\r\n");
    assert_eq!(sa.call(&words("SET foo 3")).unwrap(), b"+OK\r\n");
    assert!(
        text(sa.call(&words("MGET foo bar")).unwrap()).starts_with("-CLUSTERDOWN"),
        "a merged reply never hides a dead shard behind a nil"
    );
    assert!(text(sa.call(&words("DBSIZE")).unwrap()).starts_with("-CLUSTERDOWN"));
    let info = text(sa.call(&words("CLUSTER INFO")).unwrap());
    assert!(info.contains("cluster_slots_pfail:5461"), "{info}");

    let restarted = fjord_tests::Shard::start_with(fjord_tests::ShardOptions {
        data_dir: Some(dir),
        listen: Some(addr),
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    loop {
        if sa.call(&words("GET bar")).unwrap() == b"$1\r\n2\r\n" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "shard s1 did not come back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "slots of the restarted shard answered again after {:?}",
        started.elapsed()
    );
    assert_eq!(
        text(sa.call(&words("MGET foo bar")).unwrap()),
        "*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
    );
    c.shards[0] = restarted;
}

/// Garbage or a vanished client mid-pipeline affects nobody else.
#[test]
fn bad_clients_affect_no_one_else() {
    let c = Cluster::start().unwrap();
    let mut good = c.client().unwrap();
    assert_eq!(good.call(&words("SET k v")).unwrap(), b"+OK\r\n");
    let mut bad = c.client().unwrap();
    bad.send_raw(b"*1\r\n$4294967296\r\n").unwrap();
    assert_eq!(
        text(bad.read_reply().unwrap()),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(bad.is_closed());
    let mut gone = c.client().unwrap();
    for i in 0..500 {
        gone.send(&["SET".to_string(), format!("g{i}"), "x".repeat(1000)])
            .unwrap();
    }
    drop(gone);
    assert_eq!(good.call(&words("GET k")).unwrap(), b"$1\r\nv\r\n");
    assert_eq!(good.call(&words("PING")).unwrap(), b"+PONG\r\n");
}

/// An equivalent file, a file moving slots, and a broken file, each reloaded under traffic.
#[test]
fn topology_reloads_take_effect_without_a_restart() {
    let c = Cluster::start().unwrap();
    let mut sa = c.standalone_client().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let addr = c.standalone.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut cl = RawClient::tcp(&addr).unwrap();
            let mut errors = Vec::new();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = text(
                    cl.call(&[
                        "SET".to_string(),
                        format!("load{}", n % 1000),
                        n.to_string(),
                    ])
                    .unwrap(),
                );
                if r != "+OK\r\n" {
                    errors.push(r);
                }
                n += 1;
            }
            (n, errors)
        })
    };
    let epoch = |cl: &mut RawClient| {
        let info = text(cl.call(&words("CLUSTER INFO")).unwrap());
        info.lines()
            .find_map(|l| {
                l.strip_prefix("cluster_current_epoch:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap()
    };
    let wait_for_epoch = |cl: &mut RawClient, want: &str| {
        let started = Instant::now();
        while epoch(cl) != want {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "epoch never became {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    };
    let same = vec![vec![(0, 5460)], vec![(5461, 10921)], vec![(10922, 16383)]];
    // 1. Equivalent file with a new version: picked up by the watcher, no client error.
    c.write_topology(2, &same).unwrap();
    println!(
        "equivalent file took effect after {:?}",
        wait_for_epoch(&mut sa, "2")
    );

    // 2. Move slot 12182 ("foo") from the third shard to the first.
    let moved = vec![
        vec![(0, 5460), (12182, 12182)],
        vec![(5461, 10921)],
        vec![(10922, 12181), (12183, 16383)],
    ];
    c.write_topology(3, &moved).unwrap();
    println!(
        "moved slot took effect after {:?}",
        wait_for_epoch(&mut sa, "3")
    );
    assert_eq!(sa.call(&words("SET foo moved")).unwrap(), b"+OK\r\n");
    let mut first = c.shards[0].client().unwrap();
    assert_eq!(
        first.call(&words("GET foo")).unwrap(),
        b"$5\r\nmoved\r\n",
        "new writes land on the new owner"
    );
    let mut third = c.shards[2].client().unwrap();
    assert_eq!(third.call(&words("GET foo")).unwrap(), b"$-1\r\n");

    // 3. A broken file (slot 0 owned twice) changes nothing, also on SIGHUP.
    let broken = vec![
        vec![(0, 5460), (12182, 12182)],
        vec![(0, 10921)],
        vec![(10922, 12181), (12183, 16383)],
    ];
    c.write_topology(4, &broken).unwrap();
    c.sighup();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(epoch(&mut sa), "3");
    assert_eq!(sa.call(&words("GET foo")).unwrap(), b"$5\r\nmoved\r\n");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, errors) = load.join().unwrap();
    assert!(n > 0);
    assert!(
        errors.is_empty(),
        "clients saw errors during reloads: {errors:?}"
    );
}

#[test]
fn redis_cli_and_redis_benchmark_in_cluster_mode_work() {
    let c = Cluster::start().unwrap();
    let (host, port) = c.nodes[0].rsplit_once(':').unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-c", "-h", host, "-p", port])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "foo", "bar"]), "OK");
    assert_eq!(cli(&["GET", "foo"]), "bar");
    assert_eq!(cli(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(cli(&["MGET", "a", "b", "foo"]), "1\n2\nbar");
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "--cluster",
            "-h",
            host,
            "-p",
            port,
            "-t",
            "set,get",
            "-n",
            "2000",
            "-r",
            "1000",
            "-q",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SET:") && stdout.contains("GET:"),
        "{stdout}"
    );
    let dbsize: i64 = text(
        RawClient::tcp(&c.standalone)
            .unwrap()
            .call(&words("DBSIZE"))
            .unwrap(),
    )[1..]
        .trim()
        .parse()
        .unwrap();
    assert!(dbsize > 3, "benchmark keys are in the cluster: {dbsize}");
}

#[test]
fn admin_endpoints_show_and_reload_the_topology() {
    let c = Cluster::start().unwrap();
    let (status, body) = fjord_tests::http(&c.admin, "GET", "/healthz").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(
        fjord_tests::http(&c.admin, "GET", "/readyz").unwrap().0,
        200
    );
    let (status, body) = fjord_tests::http(&c.admin, "GET", "/topology").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("\"version\":1")
            && body.contains("\"slots\":\"0-5460\"")
            && body.contains("\"up\":true"),
        "{body}"
    );

    let ranges = vec![vec![(0, 5460)], vec![(5461, 10921)], vec![(10922, 16383)]];
    c.write_topology(7, &ranges).unwrap();
    let (status, body) = fjord_tests::http(&c.admin, "POST", "/topology/reload").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"version\":7"), "{body}");

    let broken = vec![vec![(0, 5460)], vec![(5000, 10921)], vec![(10922, 16383)]];
    c.write_topology(8, &broken).unwrap();
    let (status, body) = fjord_tests::http(&c.admin, "POST", "/topology/reload").unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("\"result\":\"refused\"")
            && body.contains("shards[1].slots[0]: slot 5000 is already owned by shards[0]"),
        "{body}"
    );
    assert!(
        body.contains("\"version\":7"),
        "the old topology stays: {body}"
    );
}

/// A shard that stops answering (SIGSTOP) fails its slots after command_timeout_ms instead of
/// hanging clients, and serves again once it continues.
#[test]
fn a_frozen_shard_times_out_and_recovers() {
    let c = Cluster::start_with(fjord_tests::ClusterOptions {
        settings: vec!["  command_timeout_ms: 500".into()],
        ..Default::default()
    })
    .unwrap();
    let mut sa = c.standalone_client().unwrap();
    assert_eq!(sa.call(&words("MSET foo 1 bar 2")).unwrap(), b"+OK\r\n");
    let pid = c.shards[0].pid();
    pause_process(pid, true);
    let started = Instant::now();
    let r = text(sa.call(&words("GET bar")).unwrap());
    let waited = started.elapsed();
    assert!(
        r.starts_with("-CLUSTERDOWN shard s1") && r.contains("no reply within 500 ms"),
        "{r}"
    );
    println!("a frozen shard's request failed after {waited:?}");
    // The metrics say which shard was slow, and how.
    let m = fjord_tests::metrics::Scrape::of(&c.admin).unwrap();
    let timeouts = [("shard", "s1"), ("result", "timeout")];
    assert_eq!(m.sum("fjord_proxy_backend_requests_total", &timeouts), 1.0);
    assert_eq!(
        m.sum("fjord_proxy_backend_inflight", &[("shard", "s1")]),
        0.0
    );
    assert_eq!(m.sum("fjord_proxy_clusterdown_replies_total", &[]), 1.0);
    assert_eq!(sa.call(&words("GET foo")).unwrap(), b"$1\r\n1\r\n");
    pause_process(pid, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sa.call(&words("GET bar")).unwrap() != b"$1\r\n2\r\n" {
        assert!(Instant::now() < deadline, "the shard did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Thousands of clients at once, each served; the proxy's memory for them is printed.
#[test]
fn thousands_of_client_connections_are_cheap() {
    fjord_common::process::raise_fd_limit();
    let c = Cluster::start().unwrap();
    let mut clients: Vec<RawClient> = (0..2000)
        .map(|i| RawClient::tcp(&c.nodes[i % 3]).unwrap())
        .collect();
    for (i, cl) in clients.iter_mut().enumerate() {
        cl.send(&["SET".to_string(), format!("conn{i}"), i.to_string()])
            .unwrap();
    }
    for cl in clients.iter_mut() {
        assert_eq!(cl.read_reply().unwrap(), b"+OK\r\n");
    }
    let mut probe = c.standalone_client().unwrap();
    let info = text(probe.call(&words("INFO")).unwrap());
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    assert!(field("connected_clients:") >= 2001, "{info}");
    println!(
        "proxy resident memory with 2001 clients: {} MiB",
        field("used_memory_rss:") / (1024 * 1024)
    );
    assert_eq!(text(probe.call(&words("DBSIZE")).unwrap()), ":2000\r\n");
}

/// Every command of the table with random arguments: the proxy answers each one on the same
/// connection (an error is fine; a dropped connection or a dead proxy is not). A malformed
/// MSET once killed a connection task this way.
#[test]
fn random_arguments_to_every_command_never_break_the_connection() {
    use rand::{Rng, SeedableRng};
    let c = Cluster::start().unwrap();
    let mut names: Vec<Vec<String>> = Vec::new();
    for spec in fjord_common::command::all() {
        names.push(vec![spec.name.to_string()]);
        for sub in spec.subcommands {
            names.push(vec![spec.name.to_string(), sub.name.to_string()]);
        }
    }
    let pool: Vec<Vec<u8>> = [
        &b"k"[..],
        b"{t}a",
        b"",
        b"0",
        b"-1",
        b"16383",
        b"16384",
        b"0-16383",
        b"5-3",
        b"99999999999999999999",
        b"NX",
        b"XX",
        b"EX",
        b"PX",
        b"GET",
        b"COUNT",
        b"MATCH",
        b"*",
        b"TYPE",
        b"\x00\xff",
        b"1.5",
        b"inf",
    ]
    .iter()
    .map(|a| a.to_vec())
    .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Commands that end or change the connection on purpose are left out.
    let skip = [
        "quit",
        "hello",
        "auth",
        "multi",
        "subscribe",
        "psubscribe",
        "ssubscribe",
        "monitor",
        "flushall",
        "flushdb",
    ];
    let mut cl = c.client().unwrap();
    for _ in 0..4000 {
        let name = &names[rng.gen_range(0..names.len())];
        if skip.contains(&name[0].as_str()) {
            continue;
        }
        let mut args: Vec<Vec<u8>> = name.iter().map(|n| n.as_bytes().to_vec()).collect();
        for _ in 0..rng.gen_range(0..6) {
            args.push(pool[rng.gen_range(0..pool.len())].clone());
        }
        let reply = cl.call(&args);
        assert!(
            reply.is_ok(),
            "no reply to {:?}: {reply:?}",
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(cl.call(&words("PING")).unwrap(), b"+PONG\r\n");
}

/// A client whose reply outgrows `client_output_buffer_limit` is closed; the proxy, the
/// shard holding the collection and the other clients carry on.
#[test]
fn a_reply_beyond_the_output_buffer_limit_closes_that_client_only() {
    let c = Cluster::start_with(fjord_tests::ClusterOptions {
        settings: vec!["  client_output_buffer_limit: 1048576".into()],
        ..Default::default()
    })
    .unwrap();
    let mut writer = c.standalone_client().unwrap();
    // 3000 fields of 1 KB: about 3 MB of HGETALL reply.
    let value = "v".repeat(1024);
    for chunk in 0..10 {
        let mut args = vec!["HSET".to_string(), "big".to_string()];
        for i in 0..300 {
            args.push(format!("field:{chunk}:{i}"));
            args.push(value.clone());
        }
        assert_eq!(text(writer.call(&args).unwrap()), ":300\r\n");
    }
    let mut bystander = c.client().unwrap();
    assert_eq!(
        text(bystander.call(&words("SET small 1")).unwrap()),
        "+OK\r\n"
    );

    let mut reader = c.standalone_client().unwrap();
    assert!(
        reader.call(&words("HGETALL big")).is_err(),
        "the reader's connection should be closed"
    );
    // A reply within the limit on a new connection, and the others, are served.
    let mut again = c.standalone_client().unwrap();
    assert_eq!(text(again.call(&words("HLEN big")).unwrap()), ":3000\r\n");
    let scan = again.call(&words("HSCAN big 0 COUNT 10")).unwrap();
    assert!(bulks(&scan).len() > 10, "{}", text(scan));
    assert_eq!(
        text(writer.call(&words("HSTRLEN big field:0:0")).unwrap()),
        ":1024\r\n"
    );
    assert_eq!(
        text(bystander.call(&words("GET small")).unwrap()),
        "$1\r\n1\r\n"
    );
}
