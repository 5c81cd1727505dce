//! Writers for fault tests: each op is logged as acknowledged, failed (certainly not
//! applied) or unknown, so that a test can check that nothing acknowledged went missing.
//!
//! Each writer thread owns keys `w{n}:{seq}` (SET with an increasing sequence number) and a
//! counter `c{n}` (INCR), DELs one of its older keys now and then, sends a cross-slot MSET
//! every fourth round and reads back the key it wrote last (logging the values it saw); it
//! reconnects after any connection failure, as an application would.

use crate::RawClient;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How an op ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    /// Refused before it was applied (`TRYAGAIN`, `READONLY`, `NOREPLICAS`).
    Failed,
    /// The connection broke or the proxy gave up waiting: it may or may not have applied.
    Unknown,
}

impl Outcome {
    fn of(reply: &std::io::Result<String>) -> Self {
        match reply {
            Ok(r) if !r.starts_with('-') => Outcome::Acked,
            Ok(r)
                if ["-TRYAGAIN", "-READONLY", "-NOREPLICAS"]
                    .iter()
                    .any(|p| r.starts_with(p)) =>
            {
                Outcome::Failed
            }
            _ => Outcome::Unknown,
        }
    }
}

/// What one writer thread did.
#[derive(Default, Debug)]
pub struct Log {
    pub sets: BTreeMap<u64, Outcome>,
    /// DELs of earlier keys (by sequence number), and how they ended.
    pub deletes: BTreeMap<u64, Outcome>,
    pub incr_acked: u64,
    pub incr_unknown: u64,
    /// Cross-slot MSETs of `m{n}:{seq}:{a,b,c}` (value seq), by sequence number.
    pub msets: BTreeMap<u64, Outcome>,
    /// Keys `w{n}:{seq}` a GET found holding their value, whatever their SET's outcome: a
    /// value once read must never be lost (reads see only acknowledged writes).
    pub seen: Vec<u64>,
}

/// The keys of writer `n`'s cross-slot MSET number `seq`.
fn mset_keys(n: usize, seq: u64) -> [String; 3] {
    ["a", "b", "c"].map(|part| format!("m{n}:{seq}:{part}"))
}

/// Writer threads against one address.
pub struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<Log>>,
    first: usize,
}

impl Writers {
    /// `count` threads, numbered from `first` (so that writers of another round use keys
    /// of their own).
    pub fn start(addr: &str, first: usize, count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let threads = (first..first + count)
            .map(|n| {
                let (stop, acked, addr) = (Arc::clone(&stop), Arc::clone(&acked), addr.to_string());
                thread::spawn(move || write(n, &addr, &stop, &acked))
            })
            .collect();
        Self {
            stop,
            acked,
            threads,
            first,
        }
    }

    /// Ops acknowledged so far, by all threads.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits until `more` further ops are acknowledged (false if not within `within`).
    pub fn wait_for_acks(&self, more: u64, within: Duration) -> bool {
        let target = self.acked() + more;
        crate::eventually(within, || self.acked() >= target)
    }

    /// Stops the threads and returns their logs, with their numbers.
    pub fn finish(self) -> Vec<(usize, Log)> {
        self.stop.store(true, Ordering::Relaxed);
        let first = self.first;
        self.threads
            .into_iter()
            .enumerate()
            .map(|(i, t)| (first + i, t.join().expect("writer thread")))
            .collect()
    }
}

fn call(conn: &mut Option<RawClient>, addr: &str, args: &[&str]) -> std::io::Result<String> {
    if conn.is_none() {
        *conn = Some(RawClient::tcp(addr).map_err(std::io::Error::other)?);
    }
    let c = conn.as_mut().expect("connected");
    let r = c.call_str(args).map_err(std::io::Error::other);
    if r.is_err() {
        *conn = None;
    }
    r
}

fn write(n: usize, addr: &str, stop: &AtomicBool, acked: &AtomicU64) -> Log {
    let mut log = Log::default();
    let mut conn = None;
    let counter = format!("c{n}");
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("w{n}:{seq}");
        let outcome = Outcome::of(&call(&mut conn, addr, &["SET", &key, &seq.to_string()]));
        log.sets.insert(seq, outcome);
        let incr = Outcome::of(&call(&mut conn, addr, &["INCR", &counter]));
        match incr {
            Outcome::Acked => log.incr_acked += 1,
            Outcome::Unknown => log.incr_unknown += 1,
            Outcome::Failed => {}
        }
        if seq % 10 == 9 {
            let victim = seq - 5;
            if log.sets.get(&victim) == Some(&Outcome::Acked) {
                let del = Outcome::of(&call(&mut conn, addr, &["DEL", &format!("w{n}:{victim}")]));
                log.deletes.insert(victim, del);
            }
        }
        let mut outcomes = vec![outcome, incr];
        if seq % 4 == 3 {
            let keys = mset_keys(n, seq);
            let value = seq.to_string();
            let mut args = vec!["MSET"];
            for k in &keys {
                args.extend([k.as_str(), value.as_str()]);
            }
            let mset = Outcome::of(&call(&mut conn, addr, &args));
            log.msets.insert(seq, mset);
            outcomes.push(mset);
        }
        if let Some(prev) = seq.checked_sub(1) {
            if log.sets.get(&prev) != Some(&Outcome::Failed) {
                let want = format!("${}\r\n{prev}\r\n", prev.to_string().len());
                if call(&mut conn, addr, &["GET", &format!("w{n}:{prev}")]).ok() == Some(want) {
                    log.seen.push(prev);
                }
            }
        }
        for o in outcomes {
            if o == Outcome::Acked {
                acked.fetch_add(1, Ordering::Relaxed);
            } else {
                // Do not spin while the cluster fails over.
                thread::sleep(Duration::from_millis(5));
            }
        }
        seq += 1;
    }
    log
}

/// Checks every writer's log against what `addr` holds: each acknowledged SET reads back
/// (unless its acknowledged DEL came after), each acknowledged DEL stays deleted, each
/// counter lies between its acknowledged INCRs and those plus the unknown ones, every key of
/// an acknowledged cross-slot MSET reads back, and every value a GET saw is still there
/// (unless a DEL of its key was tried). Returns the number of acknowledged ops and reads
/// checked.
pub fn verify(addr: &str, logs: &[(usize, Log)]) -> anyhow::Result<u64> {
    let mut c = RawClient::tcp(addr)?;
    let mut checked = 0;
    for (n, log) in logs {
        let mut gets = Gets::default();
        for (seq, outcome) in &log.sets {
            let key = format!("w{n}:{seq}");
            match (log.deletes.get(seq), outcome) {
                (Some(Outcome::Acked), _) => gets.nil(key, "acknowledged DEL"),
                // It may be gone or not.
                (Some(Outcome::Unknown), _) => {}
                (_, Outcome::Acked) => {
                    gets.value(key, *seq, "acknowledged SET");
                    checked += 1;
                }
                (_, Outcome::Failed) => gets.nil(key, "refused SET"),
                (_, Outcome::Unknown) => {}
            }
        }
        for (seq, outcome) in &log.msets {
            if *outcome == Outcome::Acked {
                for key in mset_keys(*n, *seq) {
                    gets.value(key, *seq, "acknowledged MSET");
                }
                checked += 1;
            }
        }
        for seq in &log.seen {
            if !log.deletes.contains_key(seq) {
                let why = "a GET saw its value (a read saw a write that was lost)";
                gets.value(format!("w{n}:{seq}"), *seq, why);
                checked += 1;
            }
        }
        gets.check(&mut c)?;
        let reply = c.call_str(&["GET", &format!("c{n}")])?;
        let value: u64 = reply
            .lines()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        anyhow::ensure!(
            (log.incr_acked..=log.incr_acked + log.incr_unknown).contains(&value),
            "c{n} is {value}: {} INCRs acknowledged, {} unknown",
            log.incr_acked,
            log.incr_unknown
        );
        checked += log.incr_acked;
    }
    Ok(checked)
}

/// The GETs [`verify`] makes, each with what it must read and why, sent in pipelined
/// rounds: the long runs check millions of keys after every cycle.
#[derive(Default)]
struct Gets(Vec<(String, Option<u64>, &'static str)>);

impl Gets {
    /// Keys per round.
    const ROUND: usize = 512;

    fn nil(&mut self, key: String, why: &'static str) {
        self.0.push((key, None, why));
    }

    /// `key` must read `seq` (as its decimal text).
    fn value(&mut self, key: String, seq: u64, why: &'static str) {
        self.0.push((key, Some(seq), why));
    }

    fn check(self, c: &mut RawClient) -> anyhow::Result<()> {
        for round in self.0.chunks(Self::ROUND) {
            for (key, ..) in round {
                c.send(&["GET", key.as_str()])?;
            }
            for (key, want, why) in round {
                let got = c.read_str()?;
                let want = match want {
                    Some(seq) => format!("${}\r\n{seq}\r\n", seq.to_string().len()),
                    None => "$-1\r\n".to_string(),
                };
                anyhow::ensure!(got == want, "{key}: {why}, yet it reads {got:?}");
            }
        }
        Ok(())
    }
}
