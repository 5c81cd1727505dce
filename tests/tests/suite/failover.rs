//! Failover under `fjord-admin controller`: a primary killed or stopped under load is
//! replaced by its in-sync replica, the proxy follows the published topology, and no
//! acknowledged write is lost; the old primary comes back as a replica. Also the
//! controller's recovery of a failover that a previous controller left half done. The fault
//! cycles and the slot moves under kill -9 also run, shortened, with the topology in etcd.

use fjord_common::topology::Topology;
use fjord_tests::faults::{verify, Writers};
use fjord_tests::metrics::Scrape;
use fjord_tests::{
    dataset, eventually, info_field, pause_process, start_proxy, Controller, RawClient, Shard,
    ShardOptions, TopologyStore,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Shards (each a primary and its replica), controllers, a proxy, on one topology store.
/// Shard processes are numbered 0, 1, … across the shards: shard k starts with process 2k
/// as its primary and 2k+1 as its replica.
struct Rig {
    dir: tempfile::TempDir,
    /// The cluster file the proxy starts on.
    file: PathBuf,
    store: TopologyStore,
    fsync: &'static str,
    shards: Vec<Option<Shard>>,
    addrs: Vec<String>,
    controllers: Vec<Controller>,
    /// Controllers started so far (each logs to `controllerN.log`).
    started_controllers: usize,
    proxy: Child,
    standalone: String,
}

impl Rig {
    /// One shard and `controllers` controllers (0: none yet, see [`Rig::start_controller`]).
    fn start(fsync: &'static str, controllers: usize) -> Self {
        Self::start_with(fsync, controllers, 1)
    }

    /// `shards` shards splitting the slots evenly.
    fn start_with(fsync: &'static str, controllers: usize, shards: usize) -> Self {
        Self::start_on(false, fsync, controllers, shards, &[])
    }

    /// The same with the topology in etcd if `in_etcd`, each primary started with
    /// `primary_args`.
    fn start_on(
        in_etcd: bool,
        fsync: &'static str,
        controllers: usize,
        shards: usize,
        primary_args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = |n: usize| dir.path().join(format!("shard{n}"));
        let mut procs = Vec::new();
        let mut text = "version: 1\nproxies: [{listen: 127.0.0.1:0}]\nstandalone: 127.0.0.1:0\nadmin: 127.0.0.1:0\nsettings: {command_timeout_ms: 3000}\nshards:\n".to_string();
        for k in 0..shards {
            let a = start_shard(fsync, None, data(2 * k), primary_args);
            let b = start_shard(fsync, None, data(2 * k + 1), &["--replica-of", &a.addr]);
            let (first, last) = (16384 * k / shards, 16384 * (k + 1) / shards - 1);
            text.push_str(&format!(
                "  - id: s{}\n    addr: \"{}\"\n    slots: [{first}-{last}]\n    replicas:\n      - addr: \"{}\"\n",
                k + 1,
                a.addr,
                b.addr
            ));
            procs.extend([a, b]);
        }
        let file = dir.path().join("cluster.yaml");
        let store = TopologyStore::create(in_etcd, &file, &text).unwrap();
        let (proxy, lines) = start_proxy(&file, &store.proxy_args()).unwrap();
        let standalone = lines
            .iter()
            .find_map(|l| l.strip_prefix("fjord-proxy listening on standalone "))
            .unwrap()
            .to_string();
        let addrs = procs.iter().map(|p| p.addr.clone()).collect();
        let mut rig = Self {
            dir,
            file,
            store,
            fsync,
            shards: procs.into_iter().map(Some).collect(),
            addrs,
            controllers: Vec::new(),
            started_controllers: 0,
            proxy,
            standalone,
        };
        for _ in 0..controllers {
            rig.start_controller();
        }
        rig
    }

    fn start_controller(&mut self) {
        self.started_controllers += 1;
        let n = self.started_controllers;
        let log =
            std::fs::File::create(self.dir.path().join(format!("controller{n}.log"))).unwrap();
        let controller = Controller::start_on(&self.store.args(), 100, Stdio::from(log)).unwrap();
        self.controllers.push(controller);
    }

    /// Failovers the running controllers made, by outcome, from their metrics.
    fn failovers(&self, outcome: &str) -> f64 {
        self.controllers
            .iter()
            .map(|c| &c.admin)
            .map(|a| {
                Scrape::of(a)
                    .unwrap()
                    .sum("fjord_admin_failovers_total", &[("outcome", outcome)])
            })
            .sum()
    }

    /// The topology as the store holds it.
    fn topology(&self) -> Topology {
        self.store
            .topology()
            .expect("the controller keeps the topology valid")
    }

    /// Waits until the file names process `primary` its shard's primary and records
    /// `replica` in sync.
    fn wait_layout(&self, primary: usize, replica: usize) {
        let ok = eventually(Duration::from_secs(30), || {
            let t = self.topology();
            let s = &t.shards[primary / 2];
            s.addr == self.addrs[primary]
                && s.replicas
                    .iter()
                    .any(|r| r.addr == self.addrs[replica] && r.in_sync)
        });
        assert!(
            ok,
            "the file never showed {primary} primary with {replica} in sync ({}):\n{}",
            self.processes(),
            self.logs()
        );
    }

    /// A managed shard (with key `before` written) whose controller died midway through a
    /// failover: it had taken term 2 in the file and fenced the replica (returned: a
    /// connection to it), and got no further.
    fn failover_left_after_fencing() -> (Self, RawClient) {
        let mut rig = Rig::start("everysec", 1);
        rig.wait_layout(0, 1);
        rig.controllers.pop();
        let mut p = RawClient::tcp(&rig.standalone).unwrap();
        assert_eq!(p.call_str(&["SET", "before", "1"]).unwrap(), "+OK\r\n");
        bump_term(&rig.file, 2);
        let mut b = rig.shard(1).client().unwrap();
        let fenced = b.call_str(&["FJORD", "FENCE", "2"]).unwrap();
        assert!(fenced.starts_with('*'), "{fenced}");
        (rig, b)
    }

    /// Waits until the file names `addr` shard s1's primary (a failover happened).
    fn wait_primary(&self, addr: &str) {
        let ok = eventually(Duration::from_secs(20), || {
            self.topology().shards[0].addr == addr
        });
        assert!(ok, "{addr} never became the primary:\n{}", self.logs());
    }

    /// Waits for `more` further acknowledged ops, stops the writers, and checks that every
    /// acknowledged op is there.
    fn finish(&self, writers: Writers, more: u64) {
        assert!(
            writers.wait_for_acks(more, Duration::from_secs(30)),
            "writes stalled:\n{}",
            self.logs()
        );
        let logs = writers.finish();
        verify(&self.standalone, &logs).unwrap();
    }

    fn shard(&self, n: usize) -> &Shard {
        self.shards[n].as_ref().expect("running")
    }

    fn restart(&mut self, n: usize) {
        let dir = self.dir.path().join(format!("shard{n}"));
        self.shards[n] = Some(start_shard(
            self.fsync,
            Some(self.addrs[n].clone()),
            dir,
            &[],
        ));
    }

    fn pause(&self, n: usize, stop: bool) {
        pause_process(self.shard(n).pid(), stop);
    }

    /// Each shard process's state, for failure messages.
    fn processes(&self) -> String {
        let state = |s: &Option<Shard>| s.as_ref().map_or("not started".into(), Shard::describe);
        let all: Vec<String> = self
            .shards
            .iter()
            .enumerate()
            .map(|(n, s)| format!("process {n}: {}", state(s)))
            .collect();
        all.join(", ")
    }

    fn logs(&self) -> String {
        (1..=self.started_controllers)
            .map(|n| {
                let path = self.dir.path().join(format!("controller{n}.log"));
                format!(
                    "--- controller {n}\n{}",
                    std::fs::read_to_string(path).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Each shard's two processes hold the same data, the replica in step with the primary.
    fn wait_same_data(&self) {
        for k in 0..self.addrs.len() / 2 {
            let ok = eventually(Duration::from_secs(30), || {
                let (a, b) = (dataset(&self.addrs[2 * k]), dataset(&self.addrs[2 * k + 1]));
                matches!((a, b), (Ok(a), Ok(b)) if a == b)
            });
            assert!(
                ok,
                "shard {k}: primary and replica never held the same data"
            );
        }
    }

    /// Runs `fjord-admin --config FILE ARGS…` (or `--store URL`): whether it succeeded, and
    /// what it printed.
    fn admin(&self, args: &[&str]) -> (bool, String) {
        let out = self.store.admin().args(args).output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            said + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn admin_check(&self) -> (bool, String) {
        self.admin(&["check"])
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.controllers.clear();
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        // The logs stay in their files: they outlive the processes.
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

fn start_shard(fsync: &'static str, listen: Option<String>, dir: PathBuf, extra: &[&str]) -> Shard {
    Shard::start_with(ShardOptions {
        fsync,
        listen,
        data_dir: Some(dir),
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ShardOptions::default()
    })
    .unwrap()
}

fn role(addr: &str) -> String {
    info_field(addr, "replication", "role").unwrap_or_default()
}

/// Fault cycles under load, alternating kill -9 and SIGSTOP (past the probes' patience,
/// then SIGCONT) of whichever process is the primary. After each: the replica took over,
/// the old primary came back as its replica and is recorded in sync, every acknowledged
/// write reads back, each counter lies between its acknowledged and acknowledged + unknown
/// INCRs, acknowledged DELs stay deleted, and both hold the same data.
fn fault_cycles(in_etcd: bool, fsync: &'static str, cycles: usize) {
    // Two shards, faults alternating between them (the writers' keys and cross-slot MSETs
    // span both); two controllers on one store: terms (on a file) or the election (in etcd)
    // make sure each fault is failed over once.
    let mut rig = Rig::start_on(in_etcd, fsync, 2, 2, &[]);
    rig.wait_layout(0, 1);
    rig.wait_layout(2, 3);
    // Each shard's current primary process.
    let mut primaries = [0, 2];
    let mut writers_used = 0;
    for cycle in 0..cycles {
        let shard = cycle % 2;
        let primary = primaries[shard];
        let replica = primary ^ 1;
        let writers = Writers::start(&rig.standalone, writers_used, 4);
        writers_used += 4;
        assert!(
            writers.wait_for_acks(1000, Duration::from_secs(30)),
            "cycle {cycle}: no progress before the fault"
        );
        let stop = cycle % 4 >= 2;
        let t0 = Instant::now();
        if stop {
            rig.pause(primary, true);
        } else {
            rig.shards[primary].as_mut().unwrap().kill9();
        }
        let resumed = writers.wait_for_acks(500, Duration::from_secs(30));
        let took = t0.elapsed();
        assert!(
            resumed,
            "cycle {cycle}: writes never resumed after the fault:\n{}",
            rig.logs()
        );
        eprintln!(
            "{fsync} cycle {cycle} ({} of shard {}'s primary): writes resumed {took:?} after the fault",
            if stop { "SIGSTOP" } else { "kill -9" },
            shard + 1
        );
        assert_eq!(
            rig.topology().shards[shard].addr,
            rig.addrs[replica],
            "cycle {cycle}: the replica is the primary now"
        );
        if stop {
            rig.pause(primary, false);
        } else {
            rig.restart(primary);
        }
        // The old primary comes back as the new primary's replica, and is recorded in sync.
        rig.wait_layout(replica, primary);
        assert_eq!(role(&rig.addrs[primary]), "slave");
        assert_eq!(role(&rig.addrs[replica]), "master");
        assert!(writers.wait_for_acks(300, Duration::from_secs(30)));
        let logs = writers.finish();
        let checked =
            verify(&rig.standalone, &logs).unwrap_or_else(|e| panic!("cycle {cycle}: {e:#}"));
        assert!(
            checked > 1000,
            "cycle {cycle}: only {checked} acknowledged ops"
        );
        rig.wait_same_data();
        primaries[shard] = replica;
    }
    let (ok, report) = rig.admin_check();
    assert!(ok, "fjord-admin check:\n{report}");
    // The adoption's term, then one per fault: never two controllers for one fault.
    let t = rig.topology();
    for (shard, s) in t.shards.iter().enumerate() {
        let faults = (cycles + 1 - shard) / 2;
        assert_eq!(s.term, 1 + faults as u64, "shard {shard}:\n{}", rig.logs());
    }
    assert_eq!(rig.failovers("done"), cycles as f64);
    assert_eq!(rig.failovers("failed"), 0.0);
}

/// Cycles per test: ten in the suite; `tests/bench/run-failover-proof.sh` sets more.
fn cycles() -> usize {
    fjord_tests::env_count("FJORD_FAULT_CYCLES", 10)
}

#[test]
fn ten_fault_cycles_lose_nothing_acknowledged_everysec() {
    fault_cycles(false, "everysec", cycles());
}

#[test]
fn ten_fault_cycles_lose_nothing_acknowledged_always() {
    fault_cycles(false, "always", cycles());
}

/// The same with the topology in etcd (issue 16), shortened: each of the four kinds of
/// cycle (kill -9 and SIGSTOP, on either shard) once.
#[test]
fn fault_cycles_with_the_topology_in_etcd_lose_nothing_acknowledged() {
    fault_cycles(
        true,
        "everysec",
        fjord_tests::env_count("FJORD_ETCD_FAULT_CYCLES", 4),
    );
}

/// A primary frozen past its failover, woken with no controller about to fence it, serves
/// neither reads nor writes: its lease ran out, since its replicas were fenced.
#[test]
fn a_primary_frozen_past_its_failover_serves_nothing_when_it_wakes() {
    let mut rig = Rig::start("everysec", 1);
    rig.wait_layout(0, 1);
    let mut old = rig.shard(0).client().unwrap();
    assert_eq!(old.call_str(&["SET", "k", "before"]).unwrap(), "+OK\r\n");
    rig.pause(0, true);
    rig.wait_primary(&rig.addrs[1]);
    let mut p = RawClient::tcp(&rig.standalone).unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        p.call_str(&["SET", "k", "after"])
            .is_ok_and(|r| r == "+OK\r\n")
    }));
    rig.controllers.clear();
    rig.pause(0, false);
    for cmd in [&["GET", "k"][..], &["SET", "k", "stale"], &["DBSIZE"]] {
        let reply = old.call_str(cmd).unwrap();
        assert!(
            reply.starts_with("-TRYAGAIN this primary's lease ran out"),
            "{cmd:?}: {reply}"
        );
    }
    rig.start_controller();
    rig.wait_layout(1, 0);
    assert_eq!(p.call_str(&["GET", "k"]).unwrap(), "$5\r\nafter\r\n");
    rig.wait_same_data();
}

/// Two shards' primaries frozen at once: each shard's failover (its lease wait) runs on its
/// own, so the second shard's starts before the first's is done, and both lose nothing.
#[test]
fn two_shards_frozen_at_once_fail_over_side_by_side() {
    let rig = Rig::start_with("everysec", 1, 2);
    rig.wait_layout(0, 1);
    rig.wait_layout(2, 3);
    let writers = Writers::start(&rig.standalone, 0, 4);
    assert!(writers.wait_for_acks(500, Duration::from_secs(30)));
    rig.pause(0, true);
    rig.pause(2, true);
    let ok = eventually(Duration::from_secs(20), || {
        let t = rig.topology();
        t.shards[0].addr == rig.addrs[1] && t.shards[1].addr == rig.addrs[3]
    });
    assert!(ok, "both shards never failed over:\n{}", rig.logs());
    let line = |logs: &str, what: &str, shard: &str| {
        logs.lines()
            .position(|l| l.contains(what) && l.contains(&format!("shard={shard} ")))
    };
    // The controller logs "failover done" just after it publishes the topology polled above.
    assert!(eventually(Duration::from_secs(5), || {
        let logs = rig.logs();
        line(&logs, "failover done", "s1").is_some() && line(&logs, "failover done", "s2").is_some()
    }));
    let logs = rig.logs();
    let at = |what: &str, shard: &str| {
        line(&logs, what, shard).unwrap_or_else(|| panic!("no `{what}` for {shard}:\n{logs}"))
    };
    let first_done = at("failover done", "s1").min(at("failover done", "s2"));
    assert!(
        at("failing over", "s1") < first_done && at("failing over", "s2") < first_done,
        "one shard's failover waited for the other's:\n{logs}"
    );
    rig.pause(0, false);
    rig.pause(2, false);
    rig.wait_layout(1, 0);
    rig.wait_layout(3, 2);
    rig.finish(writers, 300);
    assert_eq!(rig.failovers("done"), 2.0);
    rig.wait_same_data();
}

/// A replica killed under load: the controller takes it out of the record, writes go on
/// without it; restarted, it catches up and is recorded in sync again.
#[test]
fn a_killed_replica_is_recorded_out_of_sync_and_back_in_once_restarted() {
    let mut rig = Rig::start("everysec", 1);
    rig.wait_layout(0, 1);
    let writers = Writers::start(&rig.standalone, 0, 2);
    assert!(writers.wait_for_acks(500, Duration::from_secs(30)));
    rig.shards[1].as_mut().unwrap().kill9();
    assert!(
        eventually(Duration::from_secs(20), || !rig.topology().shards[0]
            .replicas[0]
            .in_sync),
        "never recorded out of sync:\n{}",
        rig.logs()
    );
    let (ok, report) = rig.admin_check();
    assert!(
        !ok && report.contains("s1 [ERR] DEGRADED: 0 of 1 replicas recorded in sync"),
        "{report}"
    );
    let admin = rig.controllers[0].admin.clone();
    let degraded = || {
        Scrape::of(&admin)
            .unwrap()
            .sum("fjord_admin_shard_degraded", &[("shard", "s1")])
    };
    assert!(eventually(Duration::from_secs(5), || degraded() == 1.0));
    assert!(
        writers.wait_for_acks(500, Duration::from_secs(30)),
        "writes stalled without the replica"
    );
    rig.restart(1);
    rig.wait_layout(0, 1);
    assert!(eventually(Duration::from_secs(5), || degraded() == 0.0));
    assert!(rig.logs().contains("shard no longer degraded"));
    rig.finish(writers, 300);
    rig.wait_same_data();
    assert_eq!(rig.topology().shards[0].term, 1, "no failover");
    assert_eq!(rig.failovers("done") + rig.failovers("failed"), 0.0);
}

/// The file's `replication` section reaches a running primary through the controller: with
/// `min_insync_replicas: 1` (set with `fjord-admin replication`) a primary whose replica died refuses writes with NOREPLICAS, and
/// takes them again once the replica is back; `acks: async` shows in its INFO.
#[test]
fn the_controller_applies_the_replication_section_while_the_shard_serves() {
    let mut rig = Rig::start("everysec", 1);
    rig.wait_layout(0, 1);
    // Through fjord-admin, under the file's lock: a plain rewrite could land between the
    // controller's read and its own write (recording the replica in sync) and be undone.
    let (ok, said) = rig.admin(&[
        "replication",
        "--acks",
        "async",
        "--min-insync-replicas",
        "1",
    ]);
    assert!(
        ok && said.contains("acks async, min_insync_replicas 1"),
        "{said}"
    );
    let (ok, said) = rig.admin(&["replication"]);
    assert!(
        ok && said.contains("acks async, min_insync_replicas 1"),
        "{said}"
    );
    let primary = rig.addrs[0].clone();
    let field = |name: &str| info_field(&primary, "replication", name).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(10), || field("fjord_replica_acks")
            == "async"
            && field("fjord_min_insync_replicas") == "1"),
        "the policy never reached the primary:\n{}",
        rig.logs()
    );
    let mut c = RawClient::tcp(&rig.standalone).unwrap();
    assert_eq!(c.call_str(&["SET", "k", "1"]).unwrap(), "+OK\r\n");
    rig.shards[1].as_mut().unwrap().kill9();
    assert!(
        eventually(Duration::from_secs(10), || c
            .call_str(&["SET", "k", "2"])
            .unwrap()
            == "-NOREPLICAS Not enough good replicas to write.\r\n"),
        "writes went on without the in-sync replica the file asks for"
    );
    rig.restart(1);
    assert!(
        eventually(Duration::from_secs(20), || c
            .call_str(&["SET", "k", "3"])
            .unwrap()
            == "+OK\r\n"),
        "writes never resumed once the replica was back:\n{}",
        rig.logs()
    );
    assert_eq!(c.call_str(&["GET", "k"]).unwrap(), "$1\r\n3\r\n");
    assert_eq!(rig.failovers("done") + rig.failovers("failed"), 0.0);
}

/// A controller that takes over a running shard whose primary needs its replica
/// (`min_insync_replicas: 1`) refuses no write meanwhile: the replica's link carries on under
/// the controller's first term once the primary has shown that term on it. Restarting the
/// link, as a fence must, would take the replica out of the in-sync set and fail writes with
/// NOREPLICAS until it is back.
#[test]
fn a_controller_takes_over_a_shard_that_needs_its_replica_without_refusing_a_write() {
    let mut rig = Rig::start_on(false, "everysec", 0, 1, &["--min-insync-replicas", "1"]);
    let (ok, said) = rig.admin(&["replication", "--min-insync-replicas", "1"]);
    assert!(ok, "{said}");
    let mut c = RawClient::tcp(&rig.standalone).unwrap();
    // Until its replica is in sync the primary refuses writes, as it should.
    assert!(
        eventually(Duration::from_secs(10), || c
            .call_str(&["SET", "k", "0"])
            .unwrap()
            == "+OK\r\n"),
        "the replica never came in sync"
    );
    let replica = rig.addrs[1].clone();
    let syncs = || {
        ["fjord_full_syncs", "fjord_incremental_syncs"]
            .map(|f| info_field(&replica, "replication", f).unwrap_or_default())
    };
    let syncs_before = syncs();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut acked, mut refused) = (0u64, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = (acked + refused.len() as u64).to_string();
                match c.call_str(&["SET", "k", &n]).unwrap().as_str() {
                    "+OK\r\n" => acked += 1,
                    other => refused.push(other.to_string()),
                }
            }
            (acked, refused)
        })
    };
    rig.start_controller();
    rig.wait_layout(0, 1);
    let term = rig.topology().shards[0].term;
    assert!(
        eventually(Duration::from_secs(10), || {
            let status = RawClient::tcp(&replica)
                .and_then(|mut c| c.call_str(&["FJORD", "STATUS"]))
                .unwrap_or_default();
            status.contains(&format!(
                "$4\r\nterm\r\n${}\r\n{term}\r\n",
                term.to_string().len()
            ))
        }),
        "the replica was never attached under term {term}:\n{}",
        rig.logs()
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, refused) = writer.join().unwrap();
    assert!(acked > 0);
    assert!(
        refused.is_empty(),
        "{} of {} writes refused while the controller took over, first: {:?}",
        refused.len(),
        acked + refused.len() as u64,
        refused.first()
    );
    assert_eq!(syncs(), syncs_before, "the replication link restarted");
}

/// A replica refuses to be promoted at a term its primary has already shown on its link:
/// two primaries of one term could each acknowledge writes the other lacks.
#[test]
fn a_replica_refuses_a_promotion_at_its_primarys_term() {
    let dir = tempfile::tempdir().unwrap();
    let primary = start_shard("everysec", None, dir.path().join("p"), &[]);
    let replica = start_shard(
        "everysec",
        None,
        dir.path().join("r"),
        &["--replica-of", &primary.addr],
    );
    let mut p = primary.client().unwrap();
    assert_eq!(p.call_str(&["FJORD", "PROMOTE", "3"]).unwrap(), "+OK\r\n");
    let mut r = replica.client().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || r
            .call_str(&["FJORD", "STATUS"])
            .unwrap()
            .contains("$9\r\nlast_term\r\n$1\r\n3\r\n")),
        "the replica never applied term 3's marker"
    );
    assert_eq!(
        r.call_str(&["FJORD", "PROMOTE", "3"]).unwrap(),
        "-ERR cannot promote at term 3: the primary this shard follows has shown term 3\r\n"
    );
    assert_eq!(role(&replica.addr), "slave");
    assert_eq!(r.call_str(&["FJORD", "PROMOTE", "4"]).unwrap(), "+OK\r\n");
    assert_eq!(role(&replica.addr), "master");
}

/// Leadership terms (`FJORD LEADER`, sent by controllers elected through etcd): a shard
/// refuses the controller commands of a connection that speaks for an older leadership term
/// than one it has seen, and keeps the newest across a restart; a connection that names none
/// (a controller on a file) is judged by the shard's own terms alone.
#[test]
fn a_shard_refuses_the_commands_of_a_deposed_leader() {
    let dir = tempfile::tempdir().unwrap();
    let start = || start_shard("always", None, dir.path().join("shard"), &[]);
    let mut shard = start();
    let mut old = shard.client().unwrap();
    assert_eq!(old.call_str(&["FJORD", "LEADER", "5"]).unwrap(), "+OK\r\n");
    assert_eq!(old.call_str(&["FJORD", "PROMOTE", "1"]).unwrap(), "+OK\r\n");
    let mut new = shard.client().unwrap();
    assert_eq!(new.call_str(&["FJORD", "LEADER", "9"]).unwrap(), "+OK\r\n");
    let deposed = |n: u64| {
        format!("-ERR deposed controller: leadership term {n} is older than 9, which this shard has seen\r\n")
    };
    // The woken old leader can neither fence nor reconfigure the shard, even at its own
    // shard term (the new leader has not moved it yet).
    for cmd in [
        &["FJORD", "FENCE", "2"][..],
        &["FJORD", "PROMOTE", "1"],
        &["FJORD", "FOLLOW", "2", "127.0.0.1:1"],
        &["FJORD", "ISR", "1"],
        &["FJORD", "ACKS", "1", "async", "0"],
    ] {
        assert_eq!(old.call_str(cmd).unwrap(), deposed(5), "{cmd:?}");
    }
    assert_eq!(
        old.call_str(&["SET", "k", "v"]).unwrap(),
        "+OK\r\n",
        "still serving"
    );
    assert_eq!(old.call_str(&["FJORD", "LEADER", "7"]).unwrap(), deposed(7));
    assert_eq!(new.call_str(&["FJORD", "ISR", "1"]).unwrap(), "+OK\r\n");
    let mut unelected = shard.client().unwrap();
    assert_eq!(
        unelected.call_str(&["FJORD", "ISR", "1"]).unwrap(),
        "+OK\r\n"
    );
    assert!(unelected
        .call_str(&["FJORD", "ISR", "0"])
        .unwrap()
        .starts_with("-ERR controller term 0 is not this shard's term 1"));

    assert_eq!(shard.terminate().unwrap(), Some(0));
    let shard = start();
    let mut c = shard.client().unwrap();
    assert!(c
        .call_str(&["FJORD", "STATUS"])
        .unwrap()
        .contains("$6\r\nleader\r\n$1\r\n9\r\n"));
    assert_eq!(c.call_str(&["FJORD", "LEADER", "5"]).unwrap(), deposed(5));
    assert_eq!(c.call_str(&["FJORD", "LEADER", "10"]).unwrap(), "+OK\r\n");
    assert_eq!(c.call_str(&["FJORD", "PROMOTE", "1"]).unwrap(), "+OK\r\n");
    assert_eq!(c.call_str(&["GET", "k"]).unwrap(), "$1\r\nv\r\n");
}

/// `fjord-admin replicate --replace`: a dead replica is replaced by a new, empty shard
/// process under load. It full-syncs, is recorded in sync, and can then take over: the
/// primary is killed and it is promoted, with nothing acknowledged lost.
#[test]
fn a_dead_replica_is_replaced_under_load_and_the_new_one_can_take_over() {
    let mut rig = Rig::start("everysec", 1);
    rig.wait_layout(0, 1);
    let writers = Writers::start(&rig.standalone, 0, 2);
    assert!(writers.wait_for_acks(500, Duration::from_secs(30)));
    let new = start_shard("everysec", None, rig.dir.path().join("shard2"), &[]);
    let old = rig.addrs[1].clone();
    let replicate = |rig: &Rig| {
        rig.admin(&[
            "replicate",
            "s1",
            &new.addr,
            "--replace",
            &old,
            "--timeout-secs",
            "60",
        ])
    };
    let (ok, said) = replicate(&rig);
    assert!(!ok && said.contains("still answers"), "{said}");
    rig.shards[1].as_mut().unwrap().kill9();
    let (ok, said) = replicate(&rig);
    assert!(ok, "{said}\n{}", rig.logs());
    assert!(said.contains("is in sync with"), "{said}");
    let t = rig.topology();
    let replicas: Vec<(&str, bool)> = t.shards[0]
        .replicas
        .iter()
        .map(|r| (r.addr.as_str(), r.in_sync))
        .collect();
    assert_eq!(replicas, [(new.addr.as_str(), true)]);
    assert_eq!(
        info_field(&new.addr, "replication", "fjord_last_sync").as_deref(),
        Some("full")
    );
    assert!(writers.wait_for_acks(300, Duration::from_secs(30)));
    rig.shards[0].as_mut().unwrap().kill9();
    rig.wait_primary(&new.addr);
    rig.finish(writers, 300);
}

/// `fjord-admin failover s1` under load: the replica takes over, the old primary follows it,
/// nothing acknowledged is lost, and the controller (running all along) makes no failover of
/// its own.
#[test]
fn a_graceful_failover_hands_over_under_load_and_loses_nothing() {
    let rig = Rig::start("everysec", 1);
    rig.wait_layout(0, 1);
    let writers = Writers::start(&rig.standalone, 0, 4);
    assert!(writers.wait_for_acks(1000, Duration::from_secs(30)));
    let (ok, said) = rig.admin(&["failover", "s1"]);
    assert!(ok, "{said}");
    eprintln!("{said}");
    assert!(
        said.contains(&format!("{} is the primary at term 2", rig.addrs[1])),
        "{said}"
    );
    rig.wait_layout(1, 0);
    rig.finish(writers, 1000);
    rig.wait_same_data();
    assert_eq!(role(&rig.addrs[0]), "slave");
    assert_eq!(rig.failovers("done") + rig.failovers("failed"), 0.0);
    assert_eq!(rig.topology().shards[0].term, 2);
}

/// Maintenance mode: a paused controller fails nothing over (the dead primary's slots stay
/// down, nothing is lost); resumed, it does.
#[test]
fn a_paused_controller_fails_nothing_over_until_resumed() {
    let mut rig = Rig::start("everysec", 1);
    rig.wait_layout(0, 1);
    let writers = Writers::start(&rig.standalone, 0, 2);
    assert!(writers.wait_for_acks(300, Duration::from_secs(30)));
    let (ok, said) = rig.admin(&["controller", "pause"]);
    assert!(ok, "{said}");
    let (_, report) = rig.admin_check();
    assert!(report.contains("controllers PAUSED"), "{report}");
    rig.shards[0].as_mut().unwrap().kill9();
    // Well past a failover's time: still the old primary in the file.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        rig.topology().shards[0].addr,
        rig.addrs[0],
        "{}",
        rig.logs()
    );
    let (ok, said) = rig.admin(&["controller", "resume"]);
    assert!(ok, "{said}");
    rig.wait_primary(&rig.addrs[1]);
    rig.finish(writers, 300);
    assert_eq!(rig.failovers("done"), 1.0);
}

/// A controller died after promoting the replica but before publishing: the next one
/// publishes it, and the old primary follows it.
#[test]
fn a_failover_promoted_but_not_published_is_finished_by_the_next_controller() {
    let (mut rig, mut b) = Rig::failover_left_after_fencing();
    let mut p = RawClient::tcp(&rig.standalone).unwrap();
    // It goes on to promote the replica, and dies before publishing.
    assert_eq!(b.call_str(&["FJORD", "PROMOTE", "2"]).unwrap(), "+OK\r\n");
    // The old primary learns nothing yet; the replica refuses an older term.
    assert!(b
        .call_str(&["FJORD", "FOLLOW", "1", &rig.addrs[0]])
        .unwrap()
        .starts_with("-ERR stale controller term 1"));
    rig.start_controller();
    rig.wait_layout(1, 0);
    assert_eq!(role(&rig.addrs[0]), "slave");
    assert!(eventually(Duration::from_secs(10), || p
        .call_str(&["GET", "before"])
        .is_ok_and(|r| r == "$1\r\n1\r\n")));
    rig.wait_same_data();
}

/// A controller died after fencing the replica, before promoting it: the primary is alive,
/// so the next controller rolls back (confirms the primary at the new term, re-attaches the
/// replica).
#[test]
fn a_failover_fenced_but_not_promoted_is_rolled_back_by_the_next_controller() {
    let (mut rig, mut b) = Rig::failover_left_after_fencing();
    // Fenced: it serves no reads.
    assert!(b.call_str(&["GET", "x"]).unwrap().starts_with("-TRYAGAIN"));
    rig.start_controller();
    let writers = Writers::start(&rig.standalone, 0, 2);
    assert!(
        writers.wait_for_acks(500, Duration::from_secs(30)),
        "{}",
        rig.logs()
    );
    rig.wait_layout(0, 1);
    let logs = writers.finish();
    verify(&rig.standalone, &logs).unwrap();
    rig.wait_same_data();
    assert_eq!(rig.topology().shards[0].term, 2);
}

/// A shard a controller manages starts fenced after a restart and serves only once the
/// controller confirms it.
#[test]
fn a_managed_shard_restarts_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_shard("everysec", None, dir.path().to_path_buf(), &[]);
    let mut c = s.client().unwrap();
    assert_eq!(c.call_str(&["SET", "k", "v"]).unwrap(), "+OK\r\n");
    assert_eq!(c.call_str(&["FJORD", "PROMOTE", "3"]).unwrap(), "+OK\r\n");
    assert!(c
        .call_str(&["FJORD", "PROMOTE", "2"])
        .unwrap()
        .starts_with("-ERR stale controller term 2"));
    assert!(c
        .call_str(&["REPLICAOF", "127.0.0.1", "1"])
        .unwrap()
        .starts_with("-ERR this shard's role is set by its controller"));
    let addr = s.addr.clone();
    s.kill9();
    let s = start_shard("everysec", Some(addr), dir.path().to_path_buf(), &[]);
    let mut c = s.client().unwrap();
    assert!(c.call_str(&["GET", "k"]).unwrap().starts_with("-TRYAGAIN"));
    assert!(c
        .call_str(&["SET", "k", "w"])
        .unwrap()
        .starts_with("-TRYAGAIN"));
    assert!(c.call_str(&["PING"]).unwrap() == "+PONG\r\n");
    assert_eq!(c.call_str(&["FJORD", "PROMOTE", "3"]).unwrap(), "+OK\r\n");
    assert_eq!(c.call_str(&["GET", "k"]).unwrap(), "$1\r\nv\r\n");
}

/// Sets the shard's term in the cluster file, as a controller's first step does.
fn bump_term(file: &Path, term: u64) {
    let text = std::fs::read_to_string(file).unwrap();
    fjord_tests::write_atomically(file, &with_term(&text, term)).unwrap();
}

fn with_term(text: &str, term: u64) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.trim_start().strip_prefix("term:") {
            Some(_) => out.push_str(&format!(
                "{}term: {term}",
                &line[..line.len() - line.trim_start().len()]
            )),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    let version: u64 = Topology::parse(text, None).map(|t| t.version).unwrap_or(1);
    out.replacen(
        &format!("version: {version}"),
        &format!("version: {}", version + 1),
        1,
    )
}

/// Slot moves under a failover (issue 15): a move back and forth between two shards with a
/// replica each, under the fault writers, while the current primary of the source, then of
/// the target, is killed with kill -9 and the controller fails it over. The mover carries on
/// (a step that cannot hold is rolled back and tried again on the new primary) or leaves the
/// rest to `fjord-admin fix`; afterwards nothing acknowledged is missing, every key is only
/// on its owner, and `fjord-admin check` finds the shards' slot states as the file says.
#[test]
fn slot_moves_carry_on_through_kill_9_of_the_sources_and_the_targets_primary() {
    // The long run (tests/bench/run-migration-proof.sh) sets more rounds.
    slot_moves_through_kill_9(false, fjord_tests::env_count("FJORD_MOVE_ROUNDS", 3));
}

/// The same with the topology in etcd (issue 16), shortened: the source's primary killed
/// in one move, the target's in the next.
#[test]
fn slot_moves_with_the_topology_in_etcd_carry_on_through_kill_9() {
    slot_moves_through_kill_9(true, fjord_tests::env_count("FJORD_ETCD_MOVE_ROUNDS", 2));
}

fn slot_moves_through_kill_9(in_etcd: bool, rounds: usize) {
    let mut rig = Rig::start_on(in_etcd, "always", 1, 2, &[]);
    rig.wait_layout(0, 1);
    rig.wait_layout(2, 3);
    let writers = Writers::start(&rig.standalone, 0, 3);
    assert!(writers.wait_for_acks(3000, Duration::from_secs(30)));
    let victims = ["source", "target"].into_iter().cycle().take(rounds);
    for (round, victim) in victims.enumerate() {
        let t = rig.topology();
        let from = &t.shards[t.owner(0)];
        let to = t.shards.iter().find(|s| s.id != from.id).unwrap();
        let range = fjord_common::slotset::SlotSet::parse("0-4000").unwrap();
        let slots = from.slots.intersect(&range).to_string();
        let mover = rig
            .store
            .admin()
            .args([
                "reshard",
                "--yes",
                "--from",
                &from.id,
                "--to",
                &to.id,
                "--slot-range",
                &slots,
            ])
            .args(["--max-rate", "4000", "--batch", "1500"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + 200 * (round % 4) as u64));
        let addr = if victim == "source" {
            &from.addr
        } else {
            &to.addr
        };
        let process = rig.addrs.iter().position(|a| a == addr).unwrap();
        rig.shards[process].as_mut().unwrap().kill9();
        let out = mover.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "round {round}, {victim}'s primary killed: reshard {} → {} exited {:?}: {}",
            from.id,
            to.id,
            out.status.code(),
            said.lines()
                .filter(|l| !l.contains(" WARN "))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        if !out.status.success() {
            let (ok, fixed) = rig.admin(&["fix"]);
            assert!(ok, "fix: {fixed}");
            eprintln!("{}", fixed.trim());
        }
        rig.restart(process);
        rig.wait_layout(process ^ 1, process);
        let t = rig.topology();
        assert!(t.moving.is_none());
        for s in &t.shards {
            let others = s.slots.complement();
            let mut c = RawClient::tcp(&s.addr).unwrap();
            let held = c
                .call_str(&["FJORD", "DBSIZE", &others.to_string()])
                .unwrap();
            assert_eq!(
                held, ":0\r\n",
                "round {round}: {} holds keys of others' slots",
                s.id
            );
        }
        let (ok, report) = rig.admin_check();
        assert!(ok, "round {round}: fjord-admin check:\n{report}");
    }
    rig.finish(writers, 500);
}
