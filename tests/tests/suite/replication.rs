//! Replicas: a shard started with `--replica-of` (or told `REPLICAOF`) pulls its primary's
//! oplog, by a full sync when it cannot resume, and ends up holding exactly the primary's
//! data, whatever happened to it or to the link on the way.

use fjord_tests::{dataset, eventually, info_field, pause_process, RawClient, Shard, ShardOptions};
use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

fn start(extra: &[&str], data_dir: Option<PathBuf>) -> Shard {
    Shard::start_with(ShardOptions {
        data_dir,
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ShardOptions::default()
    })
    .unwrap()
}

fn replica_of(primary: &str, data_dir: Option<PathBuf>) -> Shard {
    start(&["--replica-of", primary], data_dir)
}

fn field(addr: &str, name: &str) -> String {
    info_field(addr, "replication", name).unwrap_or_default()
}

/// The replica is connected and holds every op the primary has committed.
fn in_sync(primary: &Shard, replica: &Shard) -> bool {
    field(&replica.addr, "master_link_status") == "up"
        && field(&replica.addr, "slave_repl_offset") == field(&primary.addr, "master_repl_offset")
}

fn wait_in_sync(primary: &Shard, replica: &Shard) {
    assert!(
        eventually(Duration::from_secs(30), || in_sync(primary, replica)),
        "replica never caught up: primary at {}, replica at {} ({})",
        field(&primary.addr, "master_repl_offset"),
        field(&replica.addr, "slave_repl_offset"),
        field(&replica.addr, "master_link_status"),
    );
}

fn same_data(primary: &Shard, replica: &Shard) {
    let (p, r) = (
        dataset(&primary.addr).unwrap(),
        dataset(&replica.addr).unwrap(),
    );
    assert_eq!(p.len(), r.len(), "key counts differ");
    assert!(p == r, "the replica's data differs from its primary's");
}

fn run(c: &mut RawClient, line: &str) -> String {
    let reply = c.call_str(&fjord_tests::words(line)).unwrap();
    assert!(!reply.starts_with('-'), "{line}: {reply}");
    reply
}

/// Writes of every kind: strings, counters, TTLs, each collection type, deletes of big
/// collections (swept in the background), renames, copies.
fn mixed_writes(c: &mut RawClient, round: usize) {
    for i in 0..50 {
        run(c, &format!("SET s{round}:{i} v{i}"));
        run(c, &format!("INCRBY counter{} {i}", i % 5));
        run(c, &format!("HSET h{round} f{i} {i}"));
        run(c, &format!("SADD set{} m{i}", i % 3));
        run(c, &format!("ZADD z{round} {i}.5 m{i}"));
        run(c, &format!("RPUSH l{round} e{i}"));
        run(c, &format!("LPUSH l{} e{i}", i % 2));
    }
    // Values bigger than a snapshot chunk, which a full sync sends in pieces.
    run(c, &format!("SET big{round} {}", "b".repeat(3 << 20)));
    run(
        c,
        &format!("HSET bigh{round} f {} g 1", "h".repeat(1 << 20)),
    );
    run(c, &format!("SET ttl{round} x EX 1000"));
    run(c, &format!("SET gone{round} x PX 1"));
    run(c, &format!("HDEL h{round} f1 f2"));
    run(c, &format!("ZINCRBY z{round} 100 m3"));
    run(c, &format!("RENAME h{round} {{h}}renamed{round}"));
    run(c, &format!("COPY z{round} zcopy{round}"));
    run(c, "DEL set0");
    run(c, "SPOP set1 3");
    // Lists: pops, a trim, and inserts and removals that shift elements either way.
    run(c, &format!("LPOP l{round} 2"));
    run(c, &format!("LTRIM l{round} 1 -2"));
    run(c, &format!("LINSERT l{round} BEFORE e10 x"));
    run(c, &format!("LINSERT l{round} AFTER e40 y"));
    run(c, &format!("LREM l{round} 0 e20"));
    run(c, &format!("LSET l{round} 5 z"));
    run(c, "LMOVE l0 l1 LEFT RIGHT");
}

#[test]
fn a_new_replica_full_syncs_then_follows_every_kind_of_write() {
    let primary = start(&[], None);
    let mut p = primary.client().unwrap();
    mixed_writes(&mut p, 0);
    let replica = replica_of(&primary.addr, None);
    wait_in_sync(&primary, &replica);
    assert_eq!(field(&replica.addr, "fjord_last_sync"), "full");
    same_data(&primary, &replica);

    mixed_writes(&mut p, 1);
    wait_in_sync(&primary, &replica);
    same_data(&primary, &replica);
    // A FLUSHALL travels as a marker; what comes after it too.
    run(&mut p, "FLUSHALL");
    mixed_writes(&mut p, 2);
    wait_in_sync(&primary, &replica);
    same_data(&primary, &replica);

    // The replica serves reads and refuses writes, as a Redis replica does.
    let mut r = replica.client().unwrap();
    assert_eq!(r.call_str(&["GET", "s2:7"]).unwrap(), "$2\r\nv7\r\n");
    for write in [&["SET", "k", "v"][..], &["FLUSHALL"], &["DEL", "s2:7"]] {
        assert_eq!(
            r.call_str(write).unwrap(),
            "-READONLY You can't write against a read only replica.\r\n"
        );
    }
    // ROLE and INFO as scripts read them; the replica's port is the one it serves on.
    let replica_port = replica.addr.rsplit_once(':').unwrap().1;
    let primary_port = primary.addr.rsplit_once(':').unwrap().1;
    let offset = field(&primary.addr, "master_repl_offset");
    assert_eq!(
        p.call_str(&["ROLE"]).unwrap(),
        format!(
            "*3\r\n$6\r\nmaster\r\n:{offset}\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n${}\r\n{replica_port}\r\n${}\r\n{offset}\r\n",
            replica_port.len(),
            offset.len()
        )
    );
    assert_eq!(
        r.call_str(&["ROLE"]).unwrap(),
        format!("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:{primary_port}\r\n$9\r\nconnected\r\n:{offset}\r\n")
    );
    assert_eq!(
        field(&primary.addr, "slave0"),
        format!("ip=127.0.0.1,port={replica_port},state=online,offset={offset},lag=0")
    );
    assert_eq!(field(&replica.addr, "role"), "slave");
    assert_eq!(
        field(&replica.addr, "master_replid"),
        field(&primary.addr, "master_replid")
    );
    // WAIT counts the replica once it holds the connection's last write.
    run(&mut p, "SET waited 1");
    assert_eq!(p.call_str(&["WAIT", "1", "5000"]).unwrap(), ":1\r\n");
    assert_eq!(p.call_str(&["WAIT", "2", "100"]).unwrap(), ":1\r\n");
}

/// Writes unique keys to `addr` until stopped, recording those acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeSet<u64>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Writer {
    fn start(addr: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let (s, a, addr) = (Arc::clone(&stop), Arc::clone(&acked), addr.to_string());
        let handle = thread::spawn(move || {
            let mut c = RawClient::tcp(&addr).unwrap();
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let key = format!("w{i}");
                match c.call_str(&["SET", key.as_str(), "x"]) {
                    Ok(reply) if reply == "+OK\r\n" => {
                        a.lock().unwrap().insert(i);
                    }
                    Ok(_) => {}
                    // The server went away: this write's outcome is unknown.
                    Err(_) => return,
                }
                i += 1;
            }
        });
        Self {
            stop,
            acked,
            handle: Some(handle),
        }
    }

    /// The keys acknowledged once the server went away (the writer ends on its own).
    fn finish_after_failure(mut self) -> BTreeSet<u64> {
        self.handle.take().unwrap().join().ok();
        std::mem::take(&mut *self.acked.lock().unwrap())
    }

    /// Stops and returns the keys acknowledged.
    fn finish(mut self) -> BTreeSet<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

fn assert_holds(replica: &Shard, acked: &BTreeSet<u64>) {
    let mut c = replica.client().unwrap();
    for i in acked {
        let key = format!("w{i}");
        assert_eq!(
            c.call_str(&["EXISTS", key.as_str()]).unwrap(),
            ":1\r\n",
            "acknowledged {key} is missing on the replica"
        );
    }
}

#[test]
fn a_replica_reclaims_the_members_of_a_deleted_collection_itself_and_logs_nothing() {
    let with_admin = |extra: &[&str]| {
        Shard::start_with(ShardOptions {
            admin: true,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            ..ShardOptions::default()
        })
        .unwrap()
    };
    let metric = |shard: &Shard, name: &str, labels: &[(&str, &str)]| {
        fjord_tests::metrics::Scrape::of(shard.admin.as_ref().unwrap())
            .unwrap()
            .sum(name, labels)
    };
    let primary = with_admin(&[]);
    let replica = with_admin(&["--replica-of", &primary.addr]);
    let mut p = primary.client().unwrap();
    let value = "v".repeat(100);
    for chunk in 0..30 {
        let mut args = vec!["HSET".to_string(), "big".to_string()];
        for i in chunk * 1000..(chunk + 1) * 1000 {
            args.extend([format!("f{i}"), value.clone()]);
        }
        p.send(&args).unwrap();
    }
    for _ in 0..30 {
        p.read_reply().unwrap();
    }
    run(&mut p, "HSET small f v");
    wait_in_sync(&primary, &replica);
    run(&mut p, "DEL big");
    wait_in_sync(&primary, &replica);
    let offset = field(&primary.addr, "master_repl_offset");
    // The replica's marker goes only when its own sweep has removed the members: the
    // primary's removal of its own is not logged.
    let dead = |shard: &Shard| metric(shard, "fjord_shard_dead_collections", &[]);
    assert!(
        eventually(Duration::from_secs(60), || dead(&primary) == 0.0
            && dead(&replica) == 0.0),
        "primary: {} dead, replica: {} dead",
        dead(&primary),
        dead(&replica),
    );
    for (name, shard) in [("primary", &primary), ("replica", &replica)] {
        println!(
            "{name}: {} members deleted one by one, {} bytes of member tables",
            metric(shard, "fjord_shard_members_swept_total", &[]),
            metric(shard, "fjord_shard_table_bytes", &[("keyspace", "members")]),
        );
    }
    // Nothing of the reclaiming went through the oplog: the primary's history did not move,
    // and the replica's is still the same.
    assert_eq!(field(&primary.addr, "master_repl_offset"), offset);
    wait_in_sync(&primary, &replica);
    same_data(&primary, &replica);
    let mut r = replica.client().unwrap();
    assert_eq!(
        r.call_str(&["HGETALL", "small"]).unwrap(),
        "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
}

#[test]
fn a_replica_killed_and_restarted_resumes_from_the_oplog_and_misses_nothing() {
    let primary = start(&[], None);
    let dir = tempfile::tempdir().unwrap();
    let mut replica = replica_of(&primary.addr, Some(dir.path().to_path_buf()));
    wait_in_sync(&primary, &replica);
    let writer = Writer::start(&primary.addr);
    thread::sleep(Duration::from_millis(300));
    replica.kill9();
    // The primary notices the replica is gone.
    assert!(eventually(Duration::from_secs(10), || {
        field(&primary.addr, "connected_slaves") == "0"
    }));
    // No flag this time: the store remembers whom it follows.
    let replica = start(&[], Some(dir.path().to_path_buf()));
    thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(acked.len() > 100, "only {} writes", acked.len());
    wait_in_sync(&primary, &replica);
    assert_eq!(field(&replica.addr, "fjord_last_sync"), "incremental");
    assert_holds(&replica, &acked);
    same_data(&primary, &replica);
}

#[test]
fn a_replica_behind_retention_full_syncs_under_load_and_misses_nothing() {
    // Retention 0: the oplog keeps only its newest entry (and what a reader pins).
    let primary = start(&["--oplog-retention-mb", "0"], None);
    let dir = tempfile::tempdir().unwrap();
    let mut replica = replica_of(&primary.addr, Some(dir.path().to_path_buf()));
    wait_in_sync(&primary, &replica);
    let held: u64 = field(&replica.addr, "slave_repl_offset").parse().unwrap();
    replica.kill9();
    let writer = Writer::start(&primary.addr);
    let mut p = primary.client().unwrap();
    mixed_writes(&mut p, 0);
    // Retention has dropped the op after the last one the replica holds.
    assert!(eventually(Duration::from_secs(10), || {
        let first: u64 = field(&primary.addr, "repl_backlog_first_byte_offset")
            .parse()
            .unwrap();
        first > held + 1
    }));
    let replica = start(&[], Some(dir.path().to_path_buf()));
    thread::sleep(Duration::from_millis(500));
    let acked = writer.finish();
    wait_in_sync(&primary, &replica);
    assert_eq!(field(&replica.addr, "fjord_last_sync"), "full");
    assert_holds(&replica, &acked);
    same_data(&primary, &replica);
}

/// A TCP relay that cuts every connection through it when told to.
struct Relay {
    addr: String,
    generation: Arc<AtomicU64>,
}

impl Relay {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let generation = Arc::new(AtomicU64::new(0));
        let (g, upstream) = (Arc::clone(&generation), upstream.to_string());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let born = g.load(Ordering::Relaxed);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let g = Arc::clone(&g);
                    thread::spawn(move || pump(from, to, &g, born));
                }
            }
        });
        Self { addr, generation }
    }

    fn cut(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either ends or the relay's generation moves on.
fn pump(mut from: TcpStream, mut to: TcpStream, generation: &AtomicU64, born: u64) {
    use std::io::{Read, Write};
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 64 * 1024];
    while generation.load(Ordering::Relaxed) == born {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_flapping_link_loses_nothing_and_ends_in_sync() {
    let primary = start(&[], None);
    let relay = Relay::start(&primary.addr);
    let replica = replica_of(&relay.addr, None);
    wait_in_sync(&primary, &replica);
    let writer = Writer::start(&primary.addr);
    for _ in 0..15 {
        thread::sleep(Duration::from_millis(150));
        relay.cut();
    }
    let acked = writer.finish();
    wait_in_sync(&primary, &replica);
    assert_holds(&replica, &acked);
    same_data(&primary, &replica);
    // The link really broke, and each time the replica resumed rather than starting over.
    let resumed: u64 = field(&replica.addr, "fjord_incremental_syncs")
        .parse()
        .unwrap();
    assert!(resumed >= 3, "only {resumed} resumptions");
    assert_eq!(field(&replica.addr, "fjord_full_syncs"), "1");
}

#[test]
fn a_promoted_replica_takes_writes_and_its_diverged_old_primary_full_syncs_from_it() {
    let old = start(&[], None);
    let new = replica_of(&old.addr, None);
    let (mut o, mut n) = (old.client().unwrap(), new.client().unwrap());
    mixed_writes(&mut o, 0);
    wait_in_sync(&old, &new);
    assert_eq!(run(&mut n, "REPLICAOF NO ONE"), "+OK\r\n");
    assert_eq!(field(&new.addr, "role"), "master");
    run(&mut n, "SET on-new 1");
    // The old primary took a write the new one never saw: its history has diverged.
    run(&mut o, "SET only-on-old 1");
    assert_eq!(
        run(
            &mut o,
            &format!(
                "REPLICAOF 127.0.0.1 {}",
                new.addr.rsplit_once(':').unwrap().1
            )
        ),
        "+OK\r\n"
    );
    wait_in_sync(&new, &old);
    assert_eq!(field(&old.addr, "fjord_last_sync"), "full");
    assert_eq!(o.call_str(&["EXISTS", "only-on-old"]).unwrap(), ":0\r\n");
    assert_eq!(o.call_str(&["GET", "on-new"]).unwrap(), "$1\r\n1\r\n");
    same_data(&new, &old);
}

fn wait_insync(primary: &Shard, n: &str) {
    assert!(
        eventually(Duration::from_secs(20), || field(
            &primary.addr,
            "fjord_insync_replicas"
        ) == n),
        "in-sync replicas never became {n}: {}",
        field(&primary.addr, "fjord_insync_replicas")
    );
}

/// The point of in-sync acknowledgements: whatever a client was told is written is on the
/// replica, however suddenly the primary dies.
#[test]
fn every_write_acknowledged_with_an_in_sync_replica_is_on_it_after_kill_9_of_the_primary() {
    let mut primary = start(&[], None);
    let replica = replica_of(&primary.addr, None);
    wait_insync(&primary, "1");
    let writers: Vec<Writer> = (0..3).map(|_| Writer::start(&primary.addr)).collect();
    thread::sleep(Duration::from_millis(700));
    primary.kill9();
    let mut acked = BTreeSet::new();
    for w in writers {
        acked.extend(w.finish_after_failure());
    }
    assert!(acked.len() > 100, "only {} writes", acked.len());
    assert_holds(&replica, &acked);
}

/// A replica that stops acknowledging leaves the set after the timeout, and writes go on
/// without it; once it runs again it catches up and rejoins.
#[test]
fn a_stopped_replica_leaves_the_in_sync_set_and_rejoins_once_it_has_caught_up() {
    let primary = start(&["--replica-ack-timeout-ms", "300"], None);
    let replica = replica_of(&primary.addr, None);
    wait_insync(&primary, "1");
    let mut p = primary.client().unwrap();
    pause_process(replica.pid(), true);
    // This write waits for the stopped replica until it is dropped from the set.
    run(&mut p, "SET during-stop 1");
    assert_eq!(field(&primary.addr, "fjord_insync_replicas"), "0");
    for i in 0..100 {
        run(&mut p, &format!("SET after-stop{i} 1"));
    }
    pause_process(replica.pid(), false);
    wait_insync(&primary, "1");
    wait_in_sync(&primary, &replica);
    same_data(&primary, &replica);
}

#[test]
fn below_min_insync_replicas_client_writes_fail_with_noreplicas() {
    let primary = start(&["--min-insync-replicas", "1"], None);
    let mut p = primary.client().unwrap();
    assert_eq!(
        p.call_str(&["SET", "k", "v"]).unwrap(),
        "-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    assert_eq!(p.call_str(&["GET", "k"]).unwrap(), "$-1\r\n");
    let _replica = replica_of(&primary.addr, None);
    wait_insync(&primary, "1");
    assert_eq!(p.call_str(&["SET", "k", "v"]).unwrap(), "+OK\r\n");
}

/// Reads see a write only once its in-sync replicas have acknowledged it (AFTER_SYNC): a read
/// that returned an unacknowledged value could tell of one a failover then loses.
#[test]
fn a_read_waits_until_the_write_it_would_see_is_acknowledged() {
    use std::io::{Read, Write};
    let primary = start(&[], None);
    let replica = replica_of(&primary.addr, None);
    wait_insync(&primary, "1");
    let mut ctl = primary.client().unwrap();
    // Managed, with the replica recorded in sync: writes wait for it until told otherwise.
    run(&mut ctl, &format!("FJORD PROMOTE 1 {}", replica.addr));
    run(&mut ctl, "SET k old");
    run(&mut ctl, "SET elsewhere x");
    pause_process(replica.pid(), true);
    let before: u64 = field(&primary.addr, "master_repl_offset").parse().unwrap();
    let mut writer = TcpStream::connect(&primary.addr).unwrap();
    writer.write_all(b"SET k new\r\n").unwrap();
    // Committed on the primary, not acknowledged.
    assert!(eventually(Duration::from_secs(10), || {
        field(&primary.addr, "master_repl_offset")
            .parse::<u64>()
            .unwrap()
            > before
    }));
    let mut reader = TcpStream::connect(&primary.addr).unwrap();
    reader.write_all(b"GET k\r\nDBSIZE\r\n").unwrap();
    reader
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let early = reader.read(&mut buf);
    assert!(
        early.is_err(),
        "a read answered before the write it sees was acknowledged: {:?}",
        early.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
    // The controller drops the replica from the record: the write is acknowledged.
    run(&mut ctl, "FJORD ISR 1");
    writer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = writer.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"+OK\r\n");
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    while got.len() < b"$3\r\nnew\r\n:2\r\n".len() {
        let n = reader.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"$3\r\nnew\r\n:2\r\n");
    pause_process(replica.pid(), false);
}

/// AFTER_SYNC on a replica: it holds a write as soon as its primary sends it, but shows it
/// only once the primary has acknowledged it to its client (every in-sync replica has it).
#[test]
fn a_replica_shows_a_write_only_once_its_primary_acknowledged_it() {
    use std::io::{Read, Write};
    let primary = start(&[], None);
    let fast = replica_of(&primary.addr, None);
    let stopped = replica_of(&primary.addr, None);
    wait_insync(&primary, "2");
    let mut ctl = primary.client().unwrap();
    run(
        &mut ctl,
        &format!("FJORD PROMOTE 1 {} {}", fast.addr, stopped.addr),
    );
    run(&mut ctl, "SET k old");
    wait_in_sync(&primary, &fast);
    pause_process(stopped.pid(), true);
    let before: u64 = field(&fast.addr, "master_repl_offset").parse().unwrap();
    let mut writer = TcpStream::connect(&primary.addr).unwrap();
    writer.write_all(b"SET k new\r\n").unwrap();
    // The running replica has the write; the primary waits for the stopped one.
    assert!(eventually(Duration::from_secs(10), || {
        field(&fast.addr, "master_repl_offset")
            .parse::<u64>()
            .unwrap()
            > before
    }));
    let mut reader = TcpStream::connect(&fast.addr).unwrap();
    let mut buf = [0u8; 64];
    reader.write_all(b"FJORD READLAG 20000\r\n").unwrap();
    let n = reader.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"+OK\r\n");
    reader.write_all(b"GET k\r\n").unwrap();
    reader
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    assert_eq!(
        got,
        b"",
        "the replica answered the read before its primary acknowledged the write it sees: {:?}",
        String::from_utf8_lossy(&got)
    );
    // The controller drops the stopped replica: the write is acknowledged, and shown.
    run(&mut ctl, &format!("FJORD ISR 1 {}", fast.addr));
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while got.len() < b"$3\r\nnew\r\n".len() {
        let n = reader.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"$3\r\nnew\r\n");
    let mut w = writer.try_clone().unwrap();
    w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = w.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"+OK\r\n");
    pause_process(stopped.pid(), false);
}

/// A connection that bounds the lag it accepts (the proxy's replica reads) is refused once
/// the replica has not heard from its primary for longer; other connections still read.
#[test]
fn a_replica_refuses_reads_older_than_the_bound_its_client_set() {
    let primary = start(&[], None);
    let replica = replica_of(&primary.addr, None);
    let mut c = primary.client().unwrap();
    run(&mut c, "SET k v");
    wait_in_sync(&primary, &replica);
    let mut bounded = replica.client().unwrap();
    run(&mut bounded, "FJORD READLAG 300");
    let mut last = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            last = bounded.call_str(&fjord_tests::words("GET k")).unwrap();
            last == "$1\r\nv\r\n"
        }),
        "{last}"
    );
    pause_process(primary.pid(), true);
    std::thread::sleep(Duration::from_millis(700));
    let refused = bounded.call_str(&fjord_tests::words("GET k")).unwrap();
    assert!(
        refused.contains("TRYAGAIN fjord replica is"),
        "a read older than its bound was served: {refused}"
    );
    let mut plain = replica.client().unwrap();
    assert_eq!(run(&mut plain, "GET k"), "$1\r\nv\r\n");
    pause_process(primary.pid(), false);
    assert!(eventually(Duration::from_secs(10), || {
        bounded.call_str(&fjord_tests::words("GET k")).unwrap() == "$1\r\nv\r\n"
    }));
}
