//! `fjord-load`: a split-and-merge MGET/MSET load generator that checks every reply.
//!
//! It loads the key space (each key version 1, with a progress bar), then runs workers for a
//! duration or an operation count: each operation is one MGET (reads) or MSET (writes) of
//! `--keys` keys, sent as one command (`--mode proxy`) or split per slot and grouped per node
//! as a cluster client does (`--mode cluster`, which also works against a real Redis Cluster).
//! Every MGET reply is checked ([`check`]); the report gives ops/s, keys/s, latency
//! percentiles, errors and violations, as text and as JSON.

pub mod check;
pub mod net;

use anyhow::{bail, Context};
use bytes::Bytes;
use check::{check_mget, key_name, value, Versions};
use hdrhistogram::Histogram;
use net::{Client, SlotMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Distribution;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One MGET/MSET per operation to one address (fjord's proxy, twemproxy).
    Proxy,
    /// Split per slot and grouped per node from CLUSTER SLOTS, as cluster clients do.
    Cluster,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Spread {
    Uniform,
    /// Zipf with exponent 0.99 over the key space (hot keys scattered over the slots).
    Zipfian,
}

/// What to run.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct Options {
    /// host:port of the proxy, or of any node of a cluster (`--mode cluster`).
    #[arg(long, default_value = "127.0.0.1:6380")]
    pub target: String,
    #[arg(long, value_enum, default_value = "proxy")]
    pub mode: Mode,
    /// Keys per operation (MGET/MSET).
    #[arg(long, default_value_t = 10)]
    pub keys: usize,
    /// Value size in bytes (at least the 47-byte header naming key and version).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000)]
    pub keyspace: usize,
    #[arg(long, value_enum, default_value = "uniform")]
    pub distribution: Spread,
    /// Share of operations that are reads (MGET), 0.0 to 1.0; the rest are MSETs.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Client connections (each with a connection to every node in cluster mode).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Operations in flight per connection (pipelined).
    #[arg(long, default_value_t = 4)]
    pub inflight: usize,
    /// Seconds to measure (ignored when --ops is given).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Operations to measure instead of a duration.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Write the JSON report here ("-" for stdout).
    #[arg(long)]
    pub json: Option<String>,
    /// Exit 0 even if some operations got errors (violations always fail the run).
    #[arg(long)]
    pub allow_errors: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Load the key space, report how fast, and stop.
    #[arg(long)]
    pub load_only: bool,
    /// Skip loading: every key holds version 1 from an earlier `--load-only` run with the
    /// same key space and value size. Reads only (`--read-ratio 1`), so that stays true.
    #[arg(long)]
    pub assume_loaded: bool,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub options: Options,
    pub seconds: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub keys_per_sec: f64,
    pub errors: u64,
    pub violations: u64,
    /// The first few errors and violations, as text.
    pub examples: Vec<String>,
    pub latency_us: Latency,
    pub reads: Latency,
    pub writes: Latency,
}

impl Report {
    pub fn text(&self) -> String {
        let o = &self.options;
        let line = |name: &str, l: &Latency| {
            format!(
                "  {name:<6} {:>9} ops  mean {:>8.1}  p50 {:>7}  p90 {:>7}  p99 {:>7}  p99.9 {:>7}  max {:>8}  (µs)\n",
                l.count, l.mean, l.p50, l.p90, l.p99, l.p999, l.max
            )
        };
        let mut s = format!(
            "fjord-load {} ({:?}): {} keys/op, {} B values, {} keys {:?}, {:.0}% reads, {}x{} in flight\n\
             {:.1} s: {:.0} ops/s, {:.0} keys/s, {} errors, {} violations\n",
            o.target,
            o.mode,
            o.keys,
            o.value_size,
            o.keyspace,
            o.distribution,
            o.read_ratio * 100.0,
            o.connections,
            o.inflight,
            self.seconds,
            self.ops_per_sec,
            self.keys_per_sec,
            self.errors,
            self.violations
        );
        s += &line("all", &self.latency_us);
        s += &line("mget", &self.reads);
        s += &line("mset", &self.writes);
        for e in &self.examples {
            s += &format!("  ! {e}\n");
        }
        s
    }

    /// Whether the run is a pass: no violation, and no error unless allowed.
    pub fn passed(&self) -> bool {
        self.violations == 0 && (self.errors == 0 || self.options.allow_errors)
    }
}

/// What the workers share.
struct Shared {
    options: Options,
    versions: Versions,
    /// Set after the warm-up: latencies are recorded from then on.
    measuring: AtomicBool,
    stop: AtomicBool,
    ops_left: Option<AtomicU64>,
    errors: AtomicU64,
    violations: AtomicU64,
    examples: Mutex<Vec<String>>,
    workers: usize,
    zipf: Option<rand_distr::Zipf<f64>>,
}

impl Shared {
    fn note(&self, what: String) {
        let mut ex = self.examples.lock().unwrap_or_else(|e| e.into_inner());
        if ex.len() < 10 {
            eprintln!("fjord-load: {what}");
            ex.push(what);
        }
    }

    /// A key number from the distribution (or uniformly).
    fn pick(&self, rng: &mut StdRng, uniform: bool) -> usize {
        let n = self.options.keyspace;
        match &self.zipf {
            _ if uniform => rng.gen_range(0..n),
            None => rng.gen_range(0..n),
            // Ranks scattered over the key space so hot keys fall in many slots.
            Some(z) => {
                ((z.sample(rng) as u64 - 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) % n as u64) as usize
            }
        }
    }

    /// A key this worker owns (writes to a key come from one worker only).
    fn pick_owned(&self, rng: &mut StdRng, worker: usize, uniform: bool) -> usize {
        let k = self.pick(rng, uniform);
        let owned = k - k % self.workers + worker;
        if owned < self.options.keyspace {
            owned
        } else {
            owned - self.workers
        }
    }
}

/// Loads the key space, runs the workload, and reports.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    if options.keys == 0 || options.connections == 0 || options.inflight == 0 {
        bail!("--keys, --connections and --inflight must be at least 1");
    }
    let workers = options.connections * options.inflight;
    if options.keyspace < workers.max(options.keys) * 2 {
        bail!("--keyspace must be at least twice connections x inflight and twice --keys");
    }
    // Each worker writes only its own keys (keyspace / workers of them), distinct per MSET.
    if options.read_ratio < 1.0 && options.keyspace / workers < options.keys * 2 {
        bail!(
            "with writes, --keyspace must be at least 2 x --keys x connections x inflight \
             ({} here): each worker writes only its own share of the keys",
            options.keys * 2 * workers
        );
    }
    if !(0.0..=1.0).contains(&options.read_ratio) {
        bail!("--read-ratio must be between 0 and 1");
    }
    if options.assume_loaded && (options.read_ratio < 1.0 || options.load_only) {
        bail!("--assume-loaded needs --read-ratio 1 and no --load-only");
    }
    let map = match options.mode {
        Mode::Cluster => Some(Arc::new(SlotMap::fetch(&options.target).await?)),
        Mode::Proxy => None,
    };
    let mut clients = Vec::new();
    for _ in 0..options.connections {
        let client = match &map {
            Some(map) => Client::cluster(Arc::clone(map)).await,
            None => Client::single(&options.target).await,
        };
        clients.push(Arc::new(
            client.with_context(|| format!("connecting to {}", options.target))?,
        ));
    }
    let zipf = match options.distribution {
        Spread::Uniform => None,
        Spread::Zipfian => Some(rand_distr::Zipf::new(options.keyspace as u64, 0.99)?),
    };
    let shared = Arc::new(Shared {
        versions: Versions::new(options.keyspace, u64::from(options.assume_loaded)),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        ops_left: options.ops.map(AtomicU64::new),
        errors: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        examples: Mutex::new(Vec::new()),
        workers,
        zipf,
        options: options.clone(),
    });
    if !options.assume_loaded {
        let started = Instant::now();
        let batches = load(&shared, &clients).await?;
        if options.load_only {
            let seconds = started.elapsed().as_secs_f64();
            return Ok(Report {
                seconds,
                ops: batches.len(),
                ops_per_sec: batches.len() as f64 / seconds,
                keys_per_sec: options.keyspace as f64 / seconds,
                errors: 0,
                violations: 0,
                examples: Vec::new(),
                latency_us: Latency::of(&batches),
                reads: Latency::of(&new_histogram()),
                writes: Latency::of(&batches),
                options,
            });
        }
    }

    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = Arc::clone(&clients[w % clients.len()]);
        tasks.push(tokio::spawn(worker(w, Arc::clone(&shared), client)));
    }
    tokio::time::sleep(Duration::from_secs_f64(options.warmup)).await;
    shared.measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    if options.ops.is_none() {
        tokio::time::sleep(Duration::from_secs_f64(options.duration)).await;
        shared.stop.store(true, Ordering::SeqCst);
    }
    let mut reads = new_histogram();
    let mut writes = new_histogram();
    for t in tasks {
        let (r, w) = t.await?;
        reads.add(&r)?;
        writes.add(&w)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut all = reads.clone();
    all.add(&writes)?;
    let ops = all.len();
    let examples = shared
        .examples
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    Ok(Report {
        seconds,
        ops,
        ops_per_sec: ops as f64 / seconds,
        keys_per_sec: (ops * options.keys as u64) as f64 / seconds,
        errors: shared.errors.load(Ordering::SeqCst),
        violations: shared.violations.load(Ordering::SeqCst),
        examples,
        latency_us: Latency::of(&all),
        reads: Latency::of(&reads),
        writes: Latency::of(&writes),
        options,
    })
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Writes version 1 of every key, in MSETs of up to 100 keys over all connections; returns
/// the MSETs' latencies (µs).
async fn load(shared: &Arc<Shared>, clients: &[Arc<Client>]) -> anyhow::Result<Histogram<u64>> {
    let n = shared.options.keyspace;
    let bar = indicatif::ProgressBar::new(n as u64).with_message("loading the key space");
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:40} {pos}/{len} keys ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Histogram<u64>>>> = Vec::new();
    for client in clients {
        for _ in 0..shared.options.inflight {
            let (client, next, shared, bar) = (
                Arc::clone(client),
                Arc::clone(&next),
                Arc::clone(shared),
                bar.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = new_histogram();
                loop {
                    let start = next.fetch_add(100, Ordering::SeqCst) as usize;
                    if start >= n {
                        return Ok(latencies);
                    }
                    let keys: Vec<usize> = (start..(start + 100).min(n)).collect();
                    let pairs: Vec<(Bytes, Bytes)> = keys
                        .iter()
                        .map(|&k| {
                            let version = shared.versions.next(k);
                            (
                                Bytes::from(key_name(k)),
                                value(k, version, shared.options.value_size),
                            )
                        })
                        .collect();
                    let sent = Instant::now();
                    client
                        .mset(&pairs)
                        .await
                        .map_err(|e| anyhow::anyhow!("loading: {e}"))?;
                    let _ = latencies.record((sent.elapsed().as_micros() as u64).max(1));
                    for &k in &keys {
                        shared.versions.ack(k, 1);
                    }
                    bar.inc(keys.len() as u64);
                }
            }));
        }
    }
    let mut latencies = new_histogram();
    for t in tasks {
        latencies.add(t.await??)?;
    }
    bar.finish_and_clear();
    eprintln!("fjord-load: loaded {n} keys");
    Ok(latencies)
}

/// One worker: one operation at a time, until told to stop. Returns its read and write
/// latency histograms (µs), measured after the warm-up.
async fn worker(
    id: usize,
    shared: Arc<Shared>,
    client: Arc<Client>,
) -> (Histogram<u64>, Histogram<u64>) {
    let o = &shared.options;
    let mut rng = StdRng::seed_from_u64(o.seed.wrapping_mul(1_000_003).wrapping_add(id as u64));
    let (mut reads, mut writes) = (new_histogram(), new_histogram());
    let mut keys: Vec<usize> = Vec::with_capacity(o.keys);
    while !shared.stop.load(Ordering::Relaxed) {
        let measuring = shared.measuring.load(Ordering::Relaxed);
        if measuring {
            if let Some(left) = &shared.ops_left {
                if left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_err()
                {
                    break;
                }
            }
        }
        let read = rng.gen_bool(o.read_ratio);
        keys.clear();
        let mut attempts = 0;
        while keys.len() < o.keys {
            attempts += 1;
            // A skewed distribution can take long to give many distinct keys: after a while
            // the rest are drawn uniformly.
            let uniform = attempts > 4 * o.keys;
            let k = if read {
                shared.pick(&mut rng, false)
            } else {
                shared.pick_owned(&mut rng, id, uniform)
            };
            // Distinct keys, so one MSET never holds two versions of a key.
            if read || !keys.contains(&k) {
                keys.push(k);
            }
        }
        let names: Vec<Bytes> = keys.iter().map(|&k| Bytes::from(key_name(k))).collect();
        let started = Instant::now();
        let outcome = if read {
            let floors: Vec<u64> = keys.iter().map(|&k| shared.versions.acked(k)).collect();
            client
                .mget(&names)
                .await
                .map(|values| check_mget(&keys, &floors, &values, |k| shared.versions.sent(k)))
        } else {
            let versions: Vec<u64> = keys.iter().map(|&k| shared.versions.next(k)).collect();
            let pairs: Vec<(Bytes, Bytes)> = names
                .iter()
                .zip(keys.iter().zip(&versions))
                .map(|(name, (&k, &v))| (name.clone(), value(k, v, o.value_size)))
                .collect();
            client.mset(&pairs).await.map(|()| {
                for (&k, &v) in keys.iter().zip(&versions) {
                    shared.versions.ack(k, v);
                }
                Vec::new()
            })
        };
        let micros = started.elapsed().as_micros() as u64;
        match outcome {
            Ok(found) if found.is_empty() => {}
            Ok(found) => {
                shared
                    .violations
                    .fetch_add(found.len() as u64, Ordering::SeqCst);
                for v in found.iter().take(3) {
                    shared.note(format!("violation: {v}"));
                }
            }
            Err(e) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
                shared.note(format!("error: {e}"));
            }
        }
        if measuring {
            let h = if read { &mut reads } else { &mut writes };
            let _ = h.record(micros.max(1));
        }
    }
    (reads, writes)
}
