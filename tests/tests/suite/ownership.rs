//! Slot ownership on the shard (issue 15's groundwork): the states `FJORD SETSLOTS` sets are
//! enforced, survive kill -9 and a restart, and reach replicas by the oplog (incremental)
//! and by a snapshot (full sync), so a promoted replica refuses what its primary refused.

use fjord_tests::metrics::Scrape;
use fjord_tests::{
    eventually, info_field, words, Cluster, ClusterOptions, RawClient, Shard, ShardOptions,
};
use std::time::Duration;

fn start(extra: &[&str], data_dir: Option<std::path::PathBuf>) -> Shard {
    Shard::start_with(ShardOptions {
        data_dir,
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ShardOptions::default()
    })
    .unwrap()
}

fn call(c: &mut RawClient, line: &str) -> String {
    c.call_str(&words(line)).unwrap()
}

fn in_sync(primary: &Shard, replica: &Shard) -> bool {
    let f = |addr: &str, name: &str| info_field(addr, "replication", name).unwrap_or_default();
    f(&replica.addr, "master_link_status") == "up"
        && f(&replica.addr, "slave_repl_offset") == f(&primary.addr, "master_repl_offset")
}

/// The first `k<n>` whose slot is in `range`.
fn key_in(range: std::ops::RangeInclusive<u16>) -> String {
    (0..)
        .map(|n| format!("k{n}"))
        .find(|k| range.contains(&fjord_common::slot_of(k.as_bytes())))
        .unwrap()
}

#[test]
fn slot_states_are_enforced_survive_kill_9_and_reach_replicas_by_oplog_and_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut primary = start(&[], Some(dir.path().to_path_buf()));
    let replica = start(&["--replica-of", &primary.addr], None);
    let (gone, frozen, owned) = (key_in(0..=99), key_in(100..=199), key_in(200..=16383));
    let mut p = primary.client().unwrap();
    for k in [&gone, &frozen, &owned] {
        assert_eq!(call(&mut p, &format!("SET {k} v")), "+OK\r\n");
    }
    assert_eq!(
        call(&mut p, "FJORD SETSLOTS 5 gone 127.0.0.1:7102 0-99"),
        "+OK\r\n"
    );
    assert_eq!(call(&mut p, "FJORD SETSLOTS 5 frozen - 100-199"), "+OK\r\n");
    let refused = call(&mut p, &format!("SET {gone} w"));
    assert!(
        refused.starts_with("-NOTOWNER ")
            && refused.contains(" 5 gone 127.0.0.1:7102 not applied here"),
        "{refused}"
    );
    assert!(call(&mut p, &format!("GET {gone}")).starts_with("-NOTOWNER "));
    assert_eq!(call(&mut p, &format!("GET {frozen}")), "$1\r\nv\r\n");
    assert!(call(&mut p, &format!("DEL {frozen}")).starts_with("-NOTOWNER "));
    assert!(call(&mut p, &format!("MSET {{{owned}}}x 1 {owned} 2 {gone} 3")).starts_with("-"));
    assert_eq!(call(&mut p, &format!("GET {owned}")), "$1\r\nv\r\n");
    // Counting and the slot primitives still see every key the shard stores.
    assert_eq!(call(&mut p, "DBSIZE"), ":3\r\n");
    let states = call(&mut p, "FJORD SLOTS");

    assert!(
        eventually(Duration::from_secs(20), || in_sync(&primary, &replica)),
        "the replica never caught up"
    );
    let mut r = replica.client().unwrap();
    assert_eq!(call(&mut r, "FJORD SLOTS"), states, "by the oplog");
    // A new replica gets the table in its snapshot.
    let late = start(&["--replica-of", &primary.addr], None);
    assert!(eventually(Duration::from_secs(20), || in_sync(
        &primary, &late
    )));
    assert_eq!(
        info_field(&late.addr, "replication", "fjord_last_sync").as_deref(),
        Some("full")
    );
    assert_eq!(call(&mut late.client().unwrap(), "FJORD SLOTS"), states);

    primary.kill9();
    let primary = start(&[], Some(dir.path().to_path_buf()));
    let mut p = primary.client().unwrap();
    assert_eq!(call(&mut p, "FJORD SLOTS"), states, "after kill -9");
    assert!(call(&mut p, &format!("SET {gone} w")).starts_with("-NOTOWNER "));

    // A promoted replica refuses what its primary refused.
    assert_eq!(call(&mut r, "REPLICAOF NO ONE"), "+OK\r\n");
    assert!(call(&mut r, &format!("SET {frozen} w")).starts_with("-NOTOWNER "));
    assert_eq!(call(&mut r, &format!("SET {owned} w")), "+OK\r\n");
    // Back to owned at a newer epoch: served again; an older epoch is refused.
    assert!(call(&mut r, "FJORD SETSLOTS 4 owned - 0-199").contains("newer than 4"));
    assert_eq!(call(&mut r, "FJORD SETSLOTS 6 owned - 0-199"), "+OK\r\n");
    assert_eq!(call(&mut r, &format!("SET {gone} w")), "+OK\r\n");
    assert_eq!(
        call(&mut r, "FJORD SLOTS"),
        "*2\r\n*5\r\n:0\r\n:199\r\n$5\r\nowned\r\n:6\r\n$0\r\n\r\n\
         *5\r\n:200\r\n:16383\r\n$5\r\nowned\r\n:0\r\n$0\r\n\r\n"
    );
}

fn follows(c: &Cluster) -> (f64, f64) {
    let s = Scrape::of(&c.admin).unwrap();
    (
        s.sum("fjord_proxy_redirects_followed_total", &[]),
        s.sum("fjord_proxy_tryagain_replies_total", &[]),
    )
}

/// The proxy follows a shard's refusal: to the owner a `gone` slot names (a proxy whose
/// topology still says the old owner costs a hop), past a frozen slot once it is handed over
/// (the client sees no error, only a pause), and answers TRYAGAIN for a slot that stays in
/// motion. A split MSET re-sends only the refused part.
#[test]
fn the_proxy_follows_refusals_to_the_slots_owner_and_waits_out_a_hand_over() {
    let c = Cluster::start_with(ClusterOptions {
        shards: 2,
        ..ClusterOptions::default()
    })
    .unwrap();
    let (a, b) = (&c.shards[0], &c.shards[1]);
    // Slots 0-8191 are a's in the file; these keys' slots move to b without the file knowing.
    let (moved, stays) = (key_in(0..=99), key_in(200..=8191));
    let mut client = c.standalone_client().unwrap();
    let mut sa = a.client().unwrap();
    let mut sb = b.client().unwrap();
    // Each shard knows the other's slots, as moving slots sets them up.
    assert_eq!(
        call(
            &mut sa,
            &format!("FJORD SETSLOTS 1 gone {} 0-99,8192-16383", b.addr)
        ),
        "+OK\r\n"
    );
    assert_eq!(
        call(
            &mut sb,
            &format!("FJORD SETSLOTS 1 gone {} 100-8191", a.addr)
        ),
        "+OK\r\n"
    );
    assert_eq!(call(&mut client, &format!("SET {moved} 1")), "+OK\r\n");
    assert_eq!(
        call(&mut sb, &format!("GET {moved}")),
        "$1\r\n1\r\n",
        "on b"
    );
    assert_eq!(call(&mut client, &format!("GET {moved}")), "$1\r\n1\r\n");
    assert_eq!(
        call(&mut client, &format!("MSET {stays} x {moved} y")),
        "+OK\r\n"
    );
    assert_eq!(
        call(&mut client, &format!("MGET {stays} {moved}")),
        "*2\r\n$1\r\nx\r\n$1\r\ny\r\n"
    );
    // Each key on its owner only.
    assert_eq!(call(&mut sa, &format!("GET {stays}")), "$1\r\nx\r\n");
    assert!(call(&mut sb, &format!("GET {stays}")).starts_with("-NOTOWNER "));
    assert!(call(&mut sa, &format!("GET {moved}")).starts_with("-NOTOWNER "));
    assert_eq!(call(&mut client, &format!("DEL {moved}")), ":1\r\n");
    let (followed, _) = follows(&c);
    assert!(followed >= 5.0, "followed {followed}");

    // Frozen on b for 300 ms, then b's again: the write waits and succeeds.
    assert_eq!(call(&mut sb, "FJORD SETSLOTS 2 frozen - 0-99"), "+OK\r\n");
    let thaw = {
        let addr = b.addr.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut sb = RawClient::tcp(&addr).unwrap();
            call(&mut sb, "FJORD SETSLOTS 3 owned - 0-99")
        })
    };
    assert_eq!(call(&mut client, &format!("SET {moved} 2")), "+OK\r\n");
    assert_eq!(thaw.join().unwrap(), "+OK\r\n");
    assert_eq!(call(&mut sb, &format!("GET {moved}")), "$1\r\n2\r\n");

    // Importing for good: TRYAGAIN after the proxy's patience, counted.
    assert_eq!(
        call(&mut sb, "FJORD SETSLOTS 4 importing - 0-99"),
        "+OK\r\n"
    );
    let reply = call(&mut client, &format!("GET {moved}"));
    assert!(reply.starts_with("-TRYAGAIN "), "{reply}");
    assert_eq!(follows(&c).1, 1.0);
    // Pipelined after it, a key of a slot that did not move is answered in order.
    assert_eq!(call(&mut client, &format!("GET {stays}")), "$1\r\nx\r\n");

    // fjord-admin check compares the shards' states and keys with the file.
    let (ok, said) = admin_check(&c);
    assert!(!ok, "{said}");
    for problem in [
        "refuses its own slots 0-99 (gone at epoch 1)",
        "holds 1 keys of slots the topology gives other shards",
        "slots 0-99 are importing (epoch 4): a move is under way or was interrupted",
    ] {
        assert!(said.contains(problem), "{problem}:\n{said}");
    }
    // The move finished and published: the file agrees with both shards.
    assert_eq!(call(&mut sb, "FJORD SETSLOTS 5 owned - 0-99"), "+OK\r\n");
    let text = std::fs::read_to_string(&c.config).unwrap();
    let text = text
        .replace("version: 1", "version: 2")
        .replace("slots: [0-8191]", "slots: [100-8191]")
        .replace("slots: [8192-16383]", "slots: [0-99, 8192-16383]");
    fjord_tests::write_atomically(&c.config, &text).unwrap();
    let (ok, said) = admin_check(&c);
    assert!(ok, "{said}");
}

fn admin_check(c: &Cluster) -> (bool, String) {
    let out = std::process::Command::new(fjord_tests::bin_dir().join("fjord-admin"))
        .arg("--config")
        .arg(&c.config)
        .arg("check")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `FJORD FLUSH … MAXRATE` (the source's delete after a move, `reshard --max-rate`) deletes
/// slots given away a turn at a time at that pace: its progress shows part way through, and
/// it ends with every key gone. Its arguments are checked.
#[test]
fn a_paced_flush_of_slots_given_away_deletes_them_turn_by_turn() {
    let shard = start(&[], None);
    let mut c = shard.client().unwrap();
    let slot = fjord_common::slot_of(b"a");
    for chunk in 0..6 {
        let mut mset = vec!["MSET".to_string()];
        for n in chunk * 500..(chunk + 1) * 500 {
            mset.extend([format!("{{a}}:{n}"), "v".into()]);
        }
        let args: Vec<&str> = mset.iter().map(String::as_str).collect();
        assert_eq!(c.call_str(&args).unwrap(), "+OK\r\n");
    }
    // A key in another slot, or the flush would clear the whole store at once.
    assert_eq!(call(&mut c, "SET b kept"), "+OK\r\n");
    let dbsize = format!("FJORD DBSIZE {slot}");
    assert_eq!(call(&mut c, &dbsize), ":3000\r\n");
    for (args, error) in [
        ("MAXRATE 0", "-ERR value is not an integer"),
        ("MAXRATE x", "-ERR value is not an integer"),
        ("MAXRATE", "-ERR syntax error"),
        ("FAST 1", "-ERR syntax error"),
    ] {
        let reply = call(&mut c, &format!("FJORD FLUSH {slot} {args}"));
        assert!(reply.starts_with(error), "{args}: {reply}");
    }
    assert_eq!(call(&mut c, &dbsize), ":3000\r\n");
    assert_eq!(
        call(
            &mut c,
            &format!("FJORD SETSLOTS 1 gone 127.0.0.1:7102 {slot}")
        ),
        "+OK\r\n"
    );
    let flush = format!("FJORD FLUSH {slot} MAXRATE 2000");
    let flusher = std::thread::spawn(move || call(&mut c, &flush));
    let mut watcher = shard.client().unwrap();
    let mut seen = Vec::new();
    while !flusher.is_finished() {
        seen.push(call(&mut watcher, &dbsize));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(flusher.join().unwrap(), "+OK\r\n");
    assert_eq!(call(&mut watcher, &dbsize), ":0\r\n");
    assert_eq!(call(&mut watcher, "GET b"), "$4\r\nkept\r\n");
    assert!(
        seen.iter()
            .any(|s| s != ":0\r\n" && s != ":3000\r\n" && s.starts_with(':')),
        "no turn seen part way: {seen:?}"
    );
}
