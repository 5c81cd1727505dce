//! Moving slots with their data (issue 15): `fjord-admin reshard` under load, through a proxy
//! that reloads and one held on the old topology, with no client error; `fix` after the mover
//! is killed; bad requests refused with nothing changed. The interrupted moves also run with the
//! topology in etcd.

use fjord_tests::{eventually, start_proxy, words, Cluster, ClusterOptions, RawClient};
use std::collections::BTreeMap;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `fjord-admin` on the cluster's topology store.
fn admin(c: &Cluster, args: &[&str]) -> Output {
    c.store.admin().args(args).output().unwrap()
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn reshard(c: &Cluster, from: &str, to: &str, range: &str) {
    let out = admin(
        c,
        &[
            "reshard",
            "--from",
            from,
            "--to",
            to,
            "--slot-range",
            range,
            "--yes",
            "--batch",
            "700",
        ],
    );
    assert!(
        out.status.success(),
        "reshard {from}→{to} {range}: {}",
        said(&out)
    );
    eprintln!("{}", said(&out).trim());
}

/// A second proxy on a copy of the cluster file, which no move rewrites: it routes by the
/// topology from before the moves throughout. Returns it and its standalone listener.
fn stale_proxy(c: &Cluster) -> (std::process::Child, String) {
    let stale_config = c.config.with_file_name("stale.yaml");
    std::fs::copy(&c.config, &stale_config).unwrap();
    let (proxy, lines) = start_proxy(&stale_config, &[]).unwrap();
    let addr = lines
        .iter()
        .find_map(|l| l.strip_prefix("fjord-proxy listening on standalone "))
        .unwrap()
        .to_string();
    (proxy, addr)
}

/// Sets `pre:<i>` to `<i>` for `i` below `n`, pipelined.
fn preload(c: &Cluster, n: usize) {
    let mut client = c.standalone_client().unwrap();
    for i in 0..n {
        client.send(&words(&format!("SET pre:{i} {i}"))).unwrap();
    }
    for _ in 0..n {
        assert_eq!(client.read_reply().unwrap(), b"+OK\r\n");
    }
}

fn call(c: &mut RawClient, line: &str) -> String {
    c.call_str(&words(line)).unwrap()
}

/// What the clients were told, by key: the acknowledged value of each unique key, and each
/// counter's acknowledged increments.
#[derive(Default)]
struct Acked {
    values: BTreeMap<String, String>,
    counters: BTreeMap<String, i64>,
    errors: Vec<String>,
}

/// A client that writes unique keys and increments counters through `addr` until `stop`,
/// reading back each write after its ack; every error is recorded.
fn writer(
    addr: String,
    name: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut conn = RawClient::tcp(&addr).unwrap();
        // An op slower than the proxy's command_timeout_ms (5 s) counts as an error: a move
        // may pause writes briefly, never hang them.
        let mut call = |line: String| {
            let started = std::time::Instant::now();
            let reply = conn
                .call_str(&words(&line))
                .unwrap_or_else(|e| format!("-io {e}"));
            if started.elapsed() > Duration::from_secs(5) {
                let took = started.elapsed();
                acked
                    .lock()
                    .unwrap()
                    .errors
                    .push(format!("{line} took {took:?}"));
            }
            reply
        };
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let key = format!("{name}:{n}");
            let value = format!("v{n}");
            let reply = call(format!("SET {key} {value}"));
            let mut a = acked.lock().unwrap();
            if reply != "+OK\r\n" {
                a.errors.push(format!("SET {key}: {reply}"));
                continue;
            }
            a.values.insert(key.clone(), value.clone());
            drop(a);
            let counter = format!("{name}:counter:{}", n % 50);
            let reply = call(format!("INCR {counter}"));
            let mut a = acked.lock().unwrap();
            if reply.starts_with(':') {
                *a.counters.entry(counter).or_default() += 1;
            } else {
                a.errors.push(format!("INCR {counter}: {reply}"));
            }
            drop(a);
            // A read that starts after the ack sees the write.
            let read = call(format!("GET {key}"));
            if read != format!("${}\r\n{value}\r\n", value.len()) {
                acked
                    .lock()
                    .unwrap()
                    .errors
                    .push(format!("GET {key} after its ack: {read:?}"));
            }
        }
    })
}

/// Each shard holds keys only of the slots the store gives it, and its states agree.
fn each_key_on_its_owner(c: &Cluster) {
    let text = c.store.text().unwrap();
    let topology = fjord_common::topology::Topology::parse(&text, None).unwrap();
    assert!(
        topology.moving.is_none(),
        "a move is still recorded:\n{text}"
    );
    for (shard, entry) in c.shards.iter().zip(&topology.shards) {
        let others = entry.slots.complement();
        let mut s = shard.client().unwrap();
        if !others.is_empty() {
            assert_eq!(
                call(&mut s, &format!("FJORD DBSIZE {others}")),
                ":0\r\n",
                "{} holds others' keys",
                entry.id
            );
        }
    }
    let check = admin(c, &["check"]);
    assert!(check.status.success(), "{}", said(&check));
}

#[test]
fn slots_move_with_their_data_under_load_and_back_with_no_client_error() {
    let c = Cluster::start_with(ClusterOptions {
        shards: 2,
        ..ClusterOptions::default()
    })
    .unwrap();
    // A proxy that never reloads: its topology stays the one before any move.
    let (mut stale, stale_addr) = stale_proxy(&c);

    // Data of every type in the slots that move, some with a TTL.
    let mut client = c.standalone_client().unwrap();
    for i in 0..3000 {
        client
            .send(&words(&format!("SET pre:{i} value-{i}")))
            .unwrap();
    }
    for i in 0..300 {
        client
            .send(&words(&format!("HSET hash:{i} a {i} b x")))
            .unwrap();
        client
            .send(&words(&format!("ZADD zset:{i} 1 one {i} two")))
            .unwrap();
        client
            .send(&words(&format!("SADD set:{i} m1 m2 m{i}")))
            .unwrap();
        client
            .send(&words(&format!("SET ttl:{i} t EX 1000")))
            .unwrap();
        client
            .send(&words(&format!("RPUSH list:{i} a {i} c")))
            .unwrap();
    }
    for _ in 0..(3000 + 5 * 300) {
        let r = client.read_reply().unwrap();
        assert!(!r.starts_with(b"-"), "{}", String::from_utf8_lossy(&r));
    }
    // Values bigger than a snapshot chunk, which a move sends in pieces: a string and a
    // hash field, in slots that move three times.
    let big: Vec<String> = (0..)
        .map(|n| format!("big:{n}"))
        .filter(|k| (100..2000).contains(&fjord_common::slot::slot_of(k.as_bytes())))
        .take(2)
        .collect();
    let big_value = |n: usize| format!("{n}{}", "B".repeat(2 << 20));
    call(&mut client, &format!("SET {} {}", big[0], big_value(0)));
    call(
        &mut client,
        &format!("HSET {} f {} g 1", big[1], big_value(1)),
    );
    let before = call(&mut client, "DBSIZE");

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let writers: Vec<_> = [
        (c.standalone.clone(), "fresh"),
        (stale_addr.clone(), "stale"),
    ]
    .into_iter()
    .map(|(addr, name)| {
        writer(
            addr,
            name.to_string(),
            Arc::clone(&stop),
            Arc::clone(&acked),
        )
    })
    .collect();
    std::thread::sleep(Duration::from_millis(300));
    reshard(&c, "s1", "s2", "0-1999");
    each_key_on_its_owner(&c);
    reshard(&c, "s2", "s1", "0-1999");
    reshard(&c, "s1", "s2", "100-5000");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap();
    assert!(
        acked.errors.is_empty(),
        "client errors: {:?}",
        &acked.errors[..acked.errors.len().min(10)]
    );
    assert!(
        acked.values.len() > 100,
        "only {} writes",
        acked.values.len()
    );

    each_key_on_its_owner(&c);
    let mut fresh = c.standalone_client().unwrap();
    let mut old = RawClient::tcp(&stale_addr).unwrap();
    for (key, value) in &acked.values {
        let want = format!("${}\r\n{value}\r\n", value.len());
        assert_eq!(call(&mut fresh, &format!("GET {key}")), want, "{key}");
    }
    for (key, n) in &acked.counters {
        assert_eq!(
            call(&mut old, &format!("GET {key}")),
            format!("${}\r\n{n}\r\n", n.to_string().len()),
            "{key} through the stale proxy"
        );
    }
    for i in [0, 7, 299] {
        assert_eq!(
            call(&mut fresh, &format!("HGET hash:{i} a")),
            format!("${}\r\n{i}\r\n", i.to_string().len())
        );
        assert_eq!(call(&mut fresh, &format!("HLEN hash:{i}")), ":2\r\n");
        assert_eq!(
            call(&mut fresh, &format!("ZSCORE zset:{i} two")),
            format!("${}\r\n{i}\r\n", i.to_string().len())
        );
        assert_eq!(call(&mut old, &format!("SCARD set:{i}")), ":3\r\n");
        assert_eq!(
            call(&mut fresh, &format!("LRANGE list:{i} 0 -1")),
            format!(
                "*3\r\n$1\r\na\r\n${}\r\n{i}\r\n$1\r\nc\r\n",
                i.to_string().len()
            )
        );
        let ttl = call(&mut fresh, &format!("TTL ttl:{i}"));
        assert!(
            ttl.starts_with(':') && ttl != ":-1\r\n" && ttl != ":-2\r\n",
            "{ttl}"
        );
    }
    let bulk = |v: String| format!("${}\r\n{v}\r\n", v.len());
    assert!(call(&mut fresh, &format!("GET {}", big[0])) == bulk(big_value(0)));
    assert!(call(&mut old, &format!("HGET {} f", big[1])) == bulk(big_value(1)));
    let expected = before
        .trim_start_matches(':')
        .trim()
        .parse::<usize>()
        .unwrap()
        + acked.values.len()
        + acked.counters.len();
    assert_eq!(call(&mut fresh, "DBSIZE"), format!(":{expected}\r\n"));
    let _ = stale.kill();
    let _ = stale.wait();
}

#[test]
fn bad_reshard_requests_are_refused_and_change_nothing() {
    let c = Cluster::start_with(ClusterOptions {
        shards: 2,
        ..ClusterOptions::default()
    })
    .unwrap();
    let file = std::fs::read_to_string(&c.config).unwrap();
    for (args, wanted) in [
        (
            vec!["--from", "s1", "--to", "s9", "--slots", "10"],
            "no shard \"s9\"",
        ),
        (
            vec!["--from", "s1", "--to", "s1", "--slots", "10"],
            "the same shard",
        ),
        (
            vec!["--from", "s1", "--to", "s2", "--slot-range", "8000-9000"],
            "does not own slots 8192-9000",
        ),
        (
            vec!["--from", "s1", "--to", "s2", "--slot-range", "16000-16384"],
            "--slot-range",
        ),
        (
            vec!["--from", "s1", "--to", "s2", "--slots", "9000"],
            "owns 8192 slots",
        ),
    ] {
        let mut all = vec!["reshard", "--yes"];
        all.extend(args);
        let out = admin(&c, &all);
        assert!(!out.status.success(), "{all:?}");
        assert!(said(&out).contains(wanted), "{all:?}: {}", said(&out));
    }
    assert_eq!(
        std::fs::read_to_string(&c.config).unwrap(),
        file,
        "nothing changed"
    );
    // Importing into a slot that holds keys is refused by the target itself.
    let mut s2 = c.shards[1].client().unwrap();
    let key = (0..)
        .map(|n| format!("k{n}"))
        .find(|k| fjord_common::slot_of(k.as_bytes()) < 100)
        .unwrap();
    let mut s1 = c.shards[0].client().unwrap();
    assert_eq!(
        call(&mut s2, &format!("SET {key} 1")),
        "+OK\r\n",
        "s2 still owns every slot in its own table"
    );
    let refused = call(
        &mut s2,
        &format!("FJORD IMPORT 9 {} 0-99", c.shards[0].addr),
    );
    assert!(
        refused.contains("keys here: refusing to import into it"),
        "{refused}"
    );
    assert_eq!(call(&mut s1, "FJORD IMPORTS"), "*0\r\n");
    // A recorded move blocks a second one until it is fixed.
    assert_eq!(call(&mut s2, &format!("DEL {key}")), ":1\r\n");
    let text = file.replace("version: 1", "version: 2")
        + "moving: { from: s1, to: s2, slots: [0-99], epoch: 2 }\n";
    fjord_tests::write_atomically(&c.config, &text).unwrap();
    let out = admin(
        &c,
        &[
            "reshard", "--yes", "--from", "s1", "--to", "s2", "--slots", "5",
        ],
    );
    assert!(
        !out.status.success() && said(&out).contains("is under way or was interrupted"),
        "{}",
        said(&out)
    );
    let check = admin(&c, &["check"]);
    assert!(
        !check.status.success() && said(&check).contains("(epoch 2) is recorded"),
        "{}",
        said(&check)
    );
    let out = admin(&c, &["fix"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("slots 0-99 stay s1's"),
        "{}",
        said(&out)
    );
    assert!(
        eventually(Duration::from_secs(5), || admin(&c, &["check"])
            .status
            .success()),
        "{}",
        said(&admin(&c, &["check"]))
    );
}

/// What a client saw of each write while shards and the mover were killed: acknowledged,
/// failed (an error reply: certainly not applied… or not known), unknown (no reply).
#[derive(Default)]
struct Outcomes {
    acked: BTreeMap<String, String>,
    failed: u64,
    unknown: u64,
    /// The first error replies of each kind.
    errors: BTreeMap<String, u64>,
}

/// `fjord-admin reshard` of a [`next_move`], at 6,000 keys/s, in batches of 1,000 slots.
fn start_mover(c: &Cluster, (from, to, slots): (String, String, String)) -> std::process::Child {
    c.store
        .admin()
        .args([
            "reshard",
            "--yes",
            "--from",
            &from,
            "--to",
            &to,
            "--slot-range",
            &slots,
        ])
        .args(["--max-rate", "6000", "--batch", "1000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A writer of unique keys `<prefix>:<n>` through `addr` that logs each SET as acknowledged,
/// failed or unknown and reconnects after a broken connection.
fn fault_load(
    addr: String,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut conn: Option<RawClient> = None;
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let Some(c) = conn.as_mut() else {
                conn = RawClient::tcp(&addr).ok();
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let (key, value) = (format!("{prefix}:{n}"), format!("v{n}"));
            match c.call_str(&words(&format!("SET {key} {value}"))) {
                Ok(r) if r == "+OK\r\n" => {
                    outcomes.lock().unwrap().acked.insert(key, value);
                }
                Ok(r) => {
                    let mut o = outcomes.lock().unwrap();
                    o.failed += 1;
                    let kind: String = r.split(' ').take(3).collect::<Vec<_>>().join(" ");
                    *o.errors.entry(kind).or_default() += 1;
                }
                Err(_) => {
                    outcomes.lock().unwrap().unknown += 1;
                    conn = None;
                }
            }
        }
    })
}

/// The owner of slot 0 as the store says, the other shard, and the slots of 0-3000 the
/// owner has (an interrupted move may have split them).
fn next_move(c: &Cluster) -> (String, String, String) {
    let t = c.store.topology().unwrap();
    let from = &t.shards[t.owner(0)];
    let to = t.shards.iter().find(|s| s.id != from.id).unwrap();
    let range = fjord_common::slotset::SlotSet::parse("0-3000").unwrap();
    (
        from.id.clone(),
        to.id.clone(),
        from.slots.intersect(&range).to_string(),
    )
}

#[test]
fn moves_interrupted_by_kill_9_of_the_mover_the_source_or_the_target_end_consistent() {
    // The long run (tests/bench/run-migration-proof.sh) sets more rounds.
    moves_interrupted_by_kill_9(false, fjord_tests::env_count("FJORD_MOVE_ROUNDS", 4));
}

/// The same with the topology in etcd (issue 16), shortened: the move's record, which `fix`
/// and the controller finish from, is in etcd.
#[test]
fn moves_interrupted_by_kill_9_with_the_topology_in_etcd_end_consistent() {
    moves_interrupted_by_kill_9(true, fjord_tests::env_count("FJORD_ETCD_MOVE_ROUNDS", 3));
}

/// Moves back and forth under writers through a proxy that follows the store and one held
/// on the first topology, each interrupted by kill -9 of the mover (then `fjord-admin fix`),
/// of the target or of the source; then a mover killed with nobody to run `fix`, which the
/// controller finishes. Every acknowledged write is there and each key only on its owner.
fn moves_interrupted_by_kill_9(in_etcd: bool, rounds: usize) {
    let mut c = Cluster::start_with(ClusterOptions {
        shards: 2,
        shard: fjord_tests::ShardOptions {
            fsync: "always",
            ..fjord_tests::ShardOptions::default()
        },
        etcd: in_etcd,
        ..ClusterOptions::default()
    })
    .unwrap();
    preload(&c, 40_000);
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    // Through the proxy that reloads, and through one that stays on the first topology.
    let (mut stale, stale_addr) = stale_proxy(&c);
    let loads = [(c.standalone.clone(), "w"), (stale_addr, "s")]
        .map(|(addr, prefix)| fault_load(addr, prefix, Arc::clone(&stop), Arc::clone(&outcomes)));
    let mut graveyard = Vec::new();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for fault in ["mover", "target", "source", "mover"]
        .into_iter()
        .cycle()
        .take(rounds)
    {
        let (from, to, slots) = next_move(&c);
        let mover = start_mover(&c, (from.clone(), to.clone(), slots));
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after = Duration::from_millis(100 + (seed >> 33) % 900);
        std::thread::sleep(after);
        let mut mover = mover;
        match fault {
            "mover" => {
                let _ = mover.kill();
            }
            end => {
                let t = c.store.topology().unwrap();
                let id = if end == "source" { &from } else { &to };
                let i = t.shards.iter().position(|s| &s.id == id).unwrap();
                c.shards[i].kill9();
                std::thread::sleep(Duration::from_millis(300));
                let restarted = fjord_tests::Shard::start_with(fjord_tests::ShardOptions {
                    fsync: "always",
                    data_dir: Some(c.shards[i].data_dir.clone()),
                    listen: Some(c.shards[i].addr.clone()),
                    ..fjord_tests::ShardOptions::default()
                })
                .unwrap();
                graveyard.push(std::mem::replace(&mut c.shards[i], restarted));
            }
        }
        let out = mover.wait_with_output().unwrap();
        eprintln!(
            "{fault} killed after {after:?}: reshard {from}→{to} exited {:?}: {}",
            out.status.code(),
            said(&out).trim()
        );
        if !out.status.success() {
            let fixed = admin(&c, &["fix"]);
            assert!(fixed.status.success(), "{}", said(&fixed));
            eprintln!("{}", said(&fixed).trim());
        }
        each_key_on_its_owner(&c);
    }
    // A mover killed with nobody to run fix: the controller notices its lease is no longer
    // renewed and fixes the move itself.
    let mut mover = start_mover(&c, next_move(&c));
    std::thread::sleep(Duration::from_millis(400));
    let _ = mover.kill();
    let _ = mover.wait();
    let mut controller = c
        .store
        .admin()
        .args([
            "controller",
            "--probe-ms",
            "100",
            "--abandoned-move-secs",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let recorded = || c.store.topology().unwrap().moving.is_some();
    let fixed = eventually(Duration::from_secs(30), || !recorded());
    let _ = controller.kill();
    let _ = controller.wait();
    assert!(fixed, "the controller never fixed the abandoned move");
    each_key_on_its_owner(&c);
    stop.store(true, Ordering::Relaxed);
    for load in loads {
        load.join().unwrap();
    }
    let _ = stale.kill();
    let _ = stale.wait();
    let outcomes = outcomes.lock().unwrap();
    eprintln!(
        "writes: {} acknowledged, {} failed ({:?}), {} unknown",
        outcomes.acked.len(),
        outcomes.failed,
        outcomes.errors,
        outcomes.unknown
    );
    let mut fresh = c.standalone_client().unwrap();
    for (key, value) in &outcomes.acked {
        let want = format!("${}\r\n{value}\r\n", value.len());
        assert_eq!(
            call(&mut fresh, &format!("GET {key}")),
            want,
            "{key} was acknowledged"
        );
    }
    for i in (0..40_000).step_by(97) {
        let want = format!("${}\r\n{i}\r\n", i.to_string().len());
        assert_eq!(call(&mut fresh, &format!("GET pre:{i}")), want);
    }
    drop(graveyard);
}

#[test]
fn a_fourth_shard_is_added_and_balanced_in_under_load_then_drained_and_removed() {
    let c = Cluster::start_with(ClusterOptions::default()).unwrap();
    let fourth = fjord_tests::Shard::start().unwrap();
    preload(&c, 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let load = writer(
        c.standalone.clone(),
        "w".into(),
        Arc::clone(&stop),
        Arc::clone(&acked),
    );

    let out = admin(&c, &["add-shard", "--id", "s4", "--addr", &fourth.addr]);
    assert!(out.status.success(), "{}", said(&out));
    // The new shard refuses every slot, naming its owner; the others refuse each other's.
    let mut s4 = fourth.client().unwrap();
    let refused = call(&mut s4, "GET pre:1");
    assert!(
        refused.starts_with("-NOTOWNER ") && refused.contains(" gone 127.0.0.1:"),
        "{refused}"
    );
    let mut s1 = c.shards[0].client().unwrap();
    let foreign = (0..)
        .map(|i| format!("pre:{i}"))
        .find(|k| fjord_common::slot_of(k.as_bytes()) > 5461)
        .unwrap();
    let refused = call(&mut s1, &format!("GET {foreign}"));
    assert!(refused.starts_with("-NOTOWNER "), "{refused}");
    let out = admin(&c, &["rebalance", "--yes"]);
    assert!(out.status.success(), "{}", said(&out));
    eprintln!("{}", said(&out).trim());
    let info = admin(&c, &["info", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let slots: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slots"].as_u64().unwrap())
        .collect();
    assert_eq!(slots, vec![4096, 4096, 4096, 4096], "{rows}");
    let keys: u64 = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["keys"].as_u64().unwrap())
        .sum();
    assert!(rows[3]["keys"].as_u64().unwrap() > 3000, "{rows}");
    let out = admin(&c, &["rebalance", "--yes"]);
    assert!(said(&out).contains("balanced"), "{}", said(&out));
    let refused = admin(&c, &["del-shard", "s4"]);
    assert!(
        !refused.status.success() && said(&refused).contains("owns 4096 slots"),
        "{}",
        said(&refused)
    );

    let out = admin(&c, &["del-shard", "s4", "--move-slots", "--yes"]);
    assert!(out.status.success(), "{}", said(&out));
    eprintln!("{}", said(&out).trim());
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let text = std::fs::read_to_string(&c.config).unwrap();
    assert!(!text.contains(&fourth.addr), "{text}");
    let acked = acked.lock().unwrap();
    assert!(
        acked.errors.is_empty(),
        "client errors: {:?}",
        &acked.errors[..acked.errors.len().min(10)]
    );
    each_key_on_its_owner(&c);
    let mut s4 = fourth.client().unwrap();
    assert_eq!(
        call(&mut s4, "DBSIZE"),
        ":0\r\n",
        "the removed shard was emptied"
    );
    let mut fresh = c.standalone_client().unwrap();
    for (key, value) in &acked.values {
        assert_eq!(
            call(&mut fresh, &format!("GET {key}")),
            format!("${}\r\n{value}\r\n", value.len())
        );
    }
    let total = 20_000 + acked.values.len() + acked.counters.len();
    assert_eq!(call(&mut fresh, "DBSIZE"), format!(":{total}\r\n"));
    assert!(keys as usize <= total);
}
