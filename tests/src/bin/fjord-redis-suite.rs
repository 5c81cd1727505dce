//! `fjord-redis-suite`: Redis 7.0.15's own Tcl test suite against fjord's standalone listener.
//!
//! Each unit file runs in its own `tclsh` (so one aborted file does not hide the others)
//! against a fresh cluster, in external-server mode with the flags of a single-db endpoint
//! that accepts cross-slot commands. The results are judged against
//! `tests/redis-suite/expected-failures.txt` (see `fjord_tests::redis_suite`). The last line
//! is `N passed, M failed`, where M counts only what the expectations do not account for.

use anyhow::{bail, Context, Result};
use clap::Parser;
use fjord_tests::redis_suite::{self, Expectations, Verdict};
use fjord_tests::Cluster;
use std::collections::VecDeque;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "fjord-redis-suite",
    about = "Runs Redis's Tcl test suite against fjord and compares with the expected failures"
)]
struct Cli {
    /// Unit files to run (`unit/type/string`); default: every file of the suite's list.
    units: Vec<String>,
    /// The unpacked suite (`tests/redis-suite/fetch.sh` puts it here).
    #[arg(long, default_value = "tests/.redis-suite")]
    suite: PathBuf,
    /// The expected failures.
    #[arg(long, default_value = "tests/redis-suite/expected-failures.txt")]
    expectations: PathBuf,
    /// Run against a real redis-server instead (every file its own), with no expected
    /// failures: shows what Redis itself passes with the same flags.
    #[arg(long)]
    redis: bool,
    /// Files run at once, each against its own server.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// A file still running after this many seconds is killed and counts as aborted (the
    /// files of `redis_suite::SLOW_FILES` get their own limit).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Where each file's output is kept.
    #[arg(long, default_value = "target/redis-suite")]
    logs: PathBuf,
}

/// What the suite is run against: kept alive while its file runs.
enum Target {
    Fjord {
        _cluster: Box<Cluster>,
    },
    Redis {
        child: Child,
        _dir: tempfile::TempDir,
    },
}

impl Target {
    fn start(redis: bool) -> Result<(Self, String)> {
        if !redis {
            let cluster = Cluster::start()?;
            let addr = cluster.standalone.clone();
            return Ok((
                Target::Fjord {
                    _cluster: Box::new(cluster),
                },
                addr,
            ));
        }
        let dir = tempfile::tempdir()?;
        let port = fjord_tests::free_port()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while fjord_tests::RawClient::tcp(&addr).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not come up on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok((Target::Redis { child, _dir: dir }, addr))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Redis { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The unit files of the suite's own list (`test_helper.tcl --list-tests`).
fn all_units(suite: &Path) -> Result<Vec<String>> {
    let out = Command::new("tclsh")
        .args(["tests/test_helper.tcl", "--list-tests"])
        .current_dir(suite)
        .output()
        .context("running tclsh (apt-get install tcl)")?;
    if !out.status.success() {
        bail!(
            "--list-tests failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Runs one unit file against a fresh target; returns its output and exit status (`None`
/// when it was killed on the time limit).
fn run_unit(cli: &Cli, unit: &str) -> Result<(String, Option<i32>, Duration)> {
    let (target, addr) = Target::start(cli.redis)?;
    let (host, port) = addr.rsplit_once(':').context("target address")?;
    let log = cli.logs.join(format!("{}.log", unit.replace('/', "_")));
    let file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let started = Instant::now();
    // The test server listens for its clients on the first free port of the 32 below
    // --baseport, and its probe misses ports other runs of the suite hold on loopback: start
    // it at a port the kernel just handed out (with the +10000 port it also probes in range).
    let baseport = loop {
        let port = fjord_tests::free_port()?;
        if u32::from(port) + 10_032 < 65_535 {
            break port + 32;
        }
    };
    let mut child = Command::new("tclsh")
        .args(["tests/test_helper.tcl", "--host", host, "--port", port])
        .args(["--single", unit, "--clients", "1"])
        .args(["--baseport", &baseport.to_string(), "--portcount", "32"])
        .args([
            "--singledb",
            "--ignore-encoding",
            "--ignore-digest",
            "--durable",
        ])
        .args(["--tags", &redis_suite::tags_argument()])
        .args(redis_suite::skip_arguments(unit))
        .current_dir(&cli.suite)
        // No colours, whatever the caller's terminal.
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .spawn()
        .context("starting tclsh")?;
    let deadline = started + Duration::from_secs(redis_suite::time_limit(unit, cli.timeout));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if Instant::now() > deadline {
            // SAFETY: signalling the process group this function started.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The test server's own clients are in its group; none may outlive it.
    // SAFETY: as above.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    drop(target);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    Ok((output, status, started.elapsed()))
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("fjord-redis-suite: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    if !cli.suite.join("tests/test_helper.tcl").exists() {
        bail!(
            "no suite in {} (bash tests/redis-suite/fetch.sh puts it there)",
            cli.suite.display()
        );
    }
    let expectations = match cli.redis {
        true => Expectations::default(),
        false => Expectations::load(&cli.expectations)?,
    };
    let all = all_units(&cli.suite)?;
    let units = match cli.units.is_empty() {
        true => all.clone(),
        false => cli.units.clone(),
    };
    for unit in expectations.units() {
        if !all.iter().any(|u| u == unit) {
            bail!("the expectations list {unit}, which is not in the suite's list of files");
        }
    }
    std::fs::create_dir_all(&cli.logs)?;
    let target = if cli.redis { "redis-server" } else { "fjord" };
    println!(
        "== Redis {} test suite against {target}: {} files, {} at a time, without tags {}",
        fjord_common::client::REDIS_VERSION,
        units.len(),
        cli.jobs,
        redis_suite::tags_argument()
    );
    let started = Instant::now();
    let queue = Mutex::new(units.iter().cloned().enumerate().collect::<VecDeque<_>>());
    let results: Mutex<Vec<(usize, Verdict)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..cli.jobs.max(1) {
            let (queue, results, failure, cli, expectations) =
                (&queue, &results, &failure, &cli, &expectations);
            let total = units.len();
            s.spawn(move || loop {
                let next = queue.lock().map(|mut q| q.pop_front()).ok().flatten();
                let Some((index, unit)) = next else { return };
                match run_unit(cli, &unit) {
                    Ok((output, status, took)) => {
                        let run = redis_suite::parse_run(&output, status);
                        let verdict = expectations.judge(&unit, &run);
                        println!(
                            "[{:>2}/{total}] {unit}: {} passed, {} expected failures{}, {} problems, {} ignored, {} skipped ({:.1} s)",
                            index + 1,
                            verdict.passed,
                            verdict.expected_failures,
                            if verdict.expected_abort { ", aborts as expected" } else { "" },
                            verdict.problems.len(),
                            run.ignored,
                            run.skipped,
                            took.as_secs_f64()
                        );
                        for p in &verdict.problems {
                            println!("    {p}");
                        }
                        if let Ok(mut r) = results.lock() {
                            r.push((index, verdict));
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e.context(format!("running {unit}")));
                        }
                        if let Ok(mut q) = queue.lock() {
                            q.clear();
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let passed: usize = results.iter().map(|(_, v)| v.passed).sum();
    let failed: usize = results.iter().map(|(_, v)| v.problems.len()).sum();
    let expected: usize = results.iter().map(|(_, v)| v.expected_failures).sum();
    let suggestions: Vec<String> = results
        .iter()
        .flat_map(|(_, v)| v.problems.iter().filter_map(|p| p.suggested_line(&v.unit)))
        .collect();
    if !suggestions.is_empty() {
        println!("\nLines that would list the new failures (write their reasons):");
        for line in suggestions {
            println!("{line}");
        }
    }
    let by_file: Vec<String> = results
        .iter()
        .filter(|(_, v)| v.expected_failures > 0 || v.expected_abort)
        .map(|(_, v)| match v.expected_abort {
            true => format!("{} aborts", v.unit),
            false => format!("{} {}", v.unit, v.expected_failures),
        })
        .collect();
    println!(
        "\nlogs in {}; took {:.0} s",
        cli.logs.display(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "expected failures: {expected} ({})",
        if by_file.is_empty() {
            "none".into()
        } else {
            by_file.join(", ")
        }
    );
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
