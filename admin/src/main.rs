//! `fjord-admin`: the operator's tool for a fjord cluster, after `redis-cli --cluster`.
//!
//! - `check`: every shard process's role, terms and last op against the topology; exits 1 on
//!   a problem.
//! - `failover SHARD`: a graceful hand-over to an in-sync replica ([`failover`]).
//! - `replicate SHARD ADDR [--replace OLD]`: adds a replica, or replaces a dead one
//!   ([`replicate`]).
//! - `replication [--acks sync|async] [--min-insync-replicas N]`: shows or sets the
//!   cluster's `replication` section.
//! - `reshard --from A --to B --slots N`: moves slots with their data while the cluster
//!   serves; `fix` finishes or rolls back a move a crash interrupted ([`reshard`]).
//! - `info`, `add-shard`, `del-shard`, `rebalance`: growing and shrinking the cluster
//!   ([`ops`]).
//! - `import FILE`, `export`: move a topology into or out of etcd (`--store etcd://…`;
//!   every verb works on either store).
//! - `controller`: the daemon that keeps roles as the topology says and fails over dead
//!   primaries ([`controller`]).

mod controller;
mod failover;
mod metrics;
mod node;
mod ops;
mod replicate;
mod reshard;
mod store;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fjord_common::slotset::SlotSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "fjord-admin",
    version,
    about = "Operate a fjord cluster: check it, fail over, add replicas, run its controller"
)]
struct Args {
    /// The cluster file (the topology store).
    #[arg(long, default_value = "data/cluster.yaml")]
    config: PathBuf,
    /// The topology store in etcd instead of the file:
    /// `etcd://[USER@]HOST:PORT[,HOST:PORT…]/PREFIX[?ca=PEM&cert=PEM&key=PEM]` (USER's
    /// password in FJORD_ETCD_PASSWORD).
    #[arg(long, conflicts_with = "config")]
    store: Option<fjord_common::etcd::EtcdUrl>,
    /// The shards' password (their requirepass), if they have one.
    #[arg(long)]
    shard_password: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Compares every shard process with the topology: roles, terms, last ops, in-sync record
    /// (a shard with fewer replicas recorded in sync than listed is degraded), slot states and
    /// keys against the slots each shard owns, a recorded move; exits 1 on any problem.
    Check {
        /// Seconds a replica may take to reach the op its primary was at.
        #[arg(long, default_value_t = 10)]
        wait: u64,
    },
    /// Hands a shard's primary role over to its in-sync replica, losing nothing (for
    /// maintenance, like CLUSTER FAILOVER). Needs the shard managed by a controller.
    Failover {
        /// The shard's id.
        shard: String,
        /// The replica to promote (default: the first recorded in sync).
        #[arg(long)]
        to: Option<String>,
    },
    /// Adds a replica to a shard, or puts one in place of a dead one: records it in the
    /// topology, then shows its progress while the controller attaches it and it syncs (under
    /// load), until it is recorded in sync. Start the replica's fjord-shard first.
    Replicate {
        /// The shard's id.
        shard: String,
        /// The new replica's address (host:port of a running fjord-shard; what it holds is
        /// replaced by the primary's data).
        addr: String,
        /// Its admin address, recorded for metrics and --launch-shards.
        #[arg(long)]
        admin: Option<String>,
        /// Its data folder, recorded for --launch-shards (which starts it from then on).
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// The replica it takes the place of; that one must be down.
        #[arg(long)]
        replace: Option<String>,
        /// Seconds to wait for it to be in sync (the file keeps it either way).
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Shows the cluster's `replication` section, or changes it (under the file's lock, so
    /// that no controller write undoes it); the controller applies it to every primary
    /// within a probe.
    Replication {
        /// `sync`: replies wait for the in-sync replicas; `async`: they do not, as in Redis.
        #[arg(long)]
        acks: Option<fjord_common::topology::ReplicaAcks>,
        /// In-sync replicas client writes need (fewer: NOREPLICAS).
        #[arg(long)]
        min_insync_replicas: Option<usize>,
    },
    /// Moves slots with their data from one shard to another while the cluster serves
    /// (clients see no error), then publishes the topology; exits once the source has
    /// deleted them.
    Reshard {
        /// The shard that gives the slots.
        #[arg(long, required_unless_present = "abort")]
        from: Option<String>,
        /// The shard that gets them.
        #[arg(long, required_unless_present = "abort")]
        to: Option<String>,
        /// How many of the source's slots to move (its first ones).
        #[arg(long, conflicts_with = "slot_range", required_unless_present_any = ["slot_range", "abort"])]
        slots: Option<usize>,
        /// Which slots to move: `A-B[,C-D…]`, all owned by --from.
        #[arg(long)]
        slot_range: Option<String>,
        #[command(flatten)]
        pace: MoveArgs,
        /// Stop the move under way before its next hand-over (rolled back if no mover runs).
        #[arg(long, conflicts_with_all = ["from", "to", "slots", "slot_range"])]
        abort: bool,
    },
    /// Finishes or rolls back an interrupted move: slots the source gave up go to the target,
    /// the rest stay with the source; then no move is recorded.
    Fix,
    /// Keys, slots, memory and disk of each shard.
    Info {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Adds a shard that owns no slot yet (start its fjord-shard first; it must be empty);
    /// `rebalance` or `reshard` then gives it slots.
    AddShard {
        #[arg(long)]
        id: String,
        /// Its primary's address (host:port).
        #[arg(long)]
        addr: String,
        /// Its replicas' addresses (started with --replica-of ADDR, or attached by the
        /// controller).
        #[arg(long)]
        replica: Vec<String>,
        /// Its admin address, recorded for metrics and --launch-shards.
        #[arg(long)]
        admin: Option<String>,
        /// Its data folder, recorded for --launch-shards.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Removes a shard from the topology; refused while it owns slots, unless --move-slots,
    /// which first moves them to the other shards (evening them out).
    DelShard {
        id: String,
        #[arg(long)]
        move_slots: bool,
        #[command(flatten)]
        pace: MoveArgs,
    },
    /// Moves slots so that each shard owns its share (equal, or by --weight), one reshard
    /// at a time.
    Rebalance {
        /// A shard's weight, `ID=W` (default 1; 0 empties it). Repeat for several.
        #[arg(long)]
        weight: Vec<String>,
        /// Do nothing if no shard is further than this many percent from its share.
        #[arg(long, default_value_t = 2.0)]
        threshold: f64,
        #[command(flatten)]
        pace: MoveArgs,
    },
    /// Stores a cluster file as the topology in etcd (`--store`); its relative data_dirs
    /// are made absolute. Over a stored topology, the version goes above the stored one.
    Import {
        /// The cluster file.
        file: PathBuf,
    },
    /// Prints the stored topology (the YAML proxies read).
    Export,
    /// Keeps every shard's roles as the topology says, and fails a dead primary over to an
    /// in-sync replica.
    Controller {
        /// How often each shard process is probed, in ms.
        #[arg(long, default_value_t = 300)]
        probe_ms: u64,
        /// Probes in a row without an answer after which a shard counts as dead (a refused
        /// connection counts at once).
        #[arg(long, default_value_t = 3)]
        misses: u32,
        /// Serve /metrics, /healthz and /readyz here (host:port; port 0 picks one).
        #[arg(long)]
        admin: Option<String>,
        /// Seconds a recorded slot move may go without its mover renewing its lease (the
        /// mover died) before the controller finishes or rolls it back, as `fix` does.
        #[arg(long, default_value_t = 30)]
        abandoned_move_secs: u64,
        /// Instead of running: pause or resume the controllers of this file.
        #[command(subcommand)]
        action: Option<ControllerAction>,
    },
}

/// How slots move: for reshard, rebalance and del-shard.
#[derive(clap::Args, Clone)]
struct MoveArgs {
    /// Keys per second, at most, for the copy written on the target and the delete on the
    /// source (not for the clients' own writes streamed in between); 0 (the default) for no
    /// limit. Unlimited, a move on the 2-core development machine kept the clients' p99
    /// within 1.2-1.8x of before; pacing stretches the move without lowering that. A bound
    /// is for a machine whose disk or cores clients need more than the move.
    #[arg(long, default_value_t = 0)]
    max_rate: u64,
    /// Most slots frozen at once (a batch is frozen for the last few ms of its copy).
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// How many of the source's ops the target may lag by when a batch freezes.
    #[arg(long, default_value_t = 200)]
    max_lag_ops: u64,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ControllerAction {
    /// Maintenance mode: controllers keep probing and keeping the in-sync record, but start
    /// no failover (a dead primary's slots stay down) until `resume`.
    Pause,
    /// Ends maintenance mode.
    Resume,
}

fn main() -> ExitCode {
    fjord_common::process::init_logging();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fjord-admin: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fjord-admin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    let store = match &args.store {
        Some(url) => store::Store::etcd(url)?,
        None => store::Store::file(&args.config),
    };
    match args.verb {
        Verb::Import { file } => {
            let version = store.import(&file)?;
            println!("stored {} in {store} as version {version}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Verb::Export => {
            print!("{}", store.export()?);
            Ok(ExitCode::SUCCESS)
        }
        Verb::Check { wait } => check(&store, Duration::from_secs(wait), args.shard_password).await,
        Verb::Failover { shard, to } => {
            failover::run(&store, &shard, to.as_deref(), args.shard_password).await?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Replicate {
            shard,
            addr,
            admin,
            data_dir,
            replace,
            timeout_secs,
        } => {
            let request = replicate::Request {
                shard,
                addr,
                admin,
                data_dir,
                replace,
                timeout: Duration::from_secs(timeout_secs),
            };
            replicate::run(&store, &request, args.shard_password).await?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Reshard { abort: true, .. } => {
            println!("{}", reshard::abort(&store, args.shard_password).await?);
            Ok(ExitCode::SUCCESS)
        }
        Verb::Reshard {
            from,
            to,
            slots,
            slot_range,
            pace,
            abort: false,
        } => {
            let selection = match (slots, slot_range) {
                (Some(n), _) => reshard::Selection::Count(n),
                (None, Some(text)) => reshard::Selection::Slots(
                    SlotSet::parse(&text).map_err(|e| anyhow::anyhow!("--slot-range: {e}"))?,
                ),
                (None, None) => anyhow::bail!("give --slots N or --slot-range A-B"),
            };
            let moves = vec![(from.unwrap_or_default(), to.unwrap_or_default(), selection)];
            ops::perform(&store, moves, &pace, args.shard_password).await
        }
        Verb::Info { json } => {
            ops::info(&store, json, args.shard_password).await?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::AddShard {
            id,
            addr,
            replica,
            admin,
            data_dir,
        } => {
            let shard = ops::NewShard {
                id,
                addr,
                replicas: replica,
                admin,
                data_dir,
            };
            ops::add_shard(&store, &shard, args.shard_password).await?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::DelShard {
            id,
            move_slots,
            pace,
        } => ops::del_shard(&store, &id, move_slots, &pace, args.shard_password).await,
        Verb::Rebalance {
            weight,
            threshold,
            pace,
        } => ops::rebalance(&store, &weight, threshold, &pace, args.shard_password).await,
        Verb::Fix => {
            match reshard::fix(&store, args.shard_password).await? {
                Some(done) => println!("fixed: {done}"),
                None => println!("no move is recorded in {}: nothing to fix", store),
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Replication {
            acks,
            min_insync_replicas,
        } => {
            let doc = if acks.is_none() && min_insync_replicas.is_none() {
                store.load()?
            } else {
                store
                    .update(|e| {
                        e.set_replication(acks, min_insync_replicas);
                        Ok(store::Change::Write)
                    })?
                    .0
            };
            let policy = doc.topology.replication;
            println!(
                "{}: version {}, acks {}, min_insync_replicas {}",
                store,
                doc.version(),
                policy.acks.name(),
                policy.min_insync_replicas
            );
            Ok(ExitCode::SUCCESS)
        }
        Verb::Controller {
            action: Some(action),
            ..
        } => {
            let paused = matches!(action, ControllerAction::Pause);
            store.set_paused(paused)?;
            println!(
                "controllers of {}: {}",
                store,
                if paused {
                    "paused (no failover until `fjord-admin controller resume`)"
                } else {
                    "resumed"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Verb::Controller {
            probe_ms,
            misses,
            admin,
            abandoned_move_secs,
            action: None,
        } => {
            store
                .load()
                .context("the controller needs a valid cluster file")?;
            let metrics = Arc::new(metrics::AdminMetrics::new());
            let (stop_admin, stopped) = tokio::sync::watch::channel(false);
            if let Some(addr) = admin {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("binding the admin address {addr}"))?;
                // Scripts and tests wait for this line to learn the port.
                println!("fjord-admin admin on {}", listener.local_addr()?);
                let app = fjord_common::admin::router(Arc::clone(&metrics));
                tokio::spawn(fjord_common::admin::serve(listener, app, stopped));
            }
            let opts = controller::Options {
                probe_every: Duration::from_millis(probe_ms.max(10)),
                misses: misses.max(1),
                password: args.shard_password,
                abandoned_move: Duration::from_secs(abandoned_move_secs),
            };
            controller::serve(
                store,
                opts,
                metrics,
                fjord_common::process::shutdown_signal(),
            )
            .await?;
            let _ = stop_admin.send(true);
            tracing::info!("controller stopped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where a primary's own slot states or keys disagree with the slots the topology gives it:
/// keys stored in slots it does not own, slots it owns but does not serve, slots of others it
/// claims (set at an epoch: a store that was never told otherwise owns every slot), and
/// moves under way.
async fn slot_problems(node: &mut node::Node, owned: &SlotSet) -> Vec<String> {
    let mut problems = Vec::new();
    let others = owned.complement();
    if !others.is_empty() {
        let counted = node
            .call(
                &["FJORD", "DBSIZE", &others.to_string()],
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|f| node::number(&f));
        match counted {
            Ok(0) => {}
            Ok(n) => problems.push(format!(
                "holds {n} keys of slots the topology gives other shards (FJORD DBSIZE {others})"
            )),
            Err(e) => problems.push(format!("counting keys of other slots: {e:#}")),
        }
    }
    let runs = match node.call(&["FJORD", "SLOTS"], Duration::from_secs(2)).await {
        Ok(frame) => node::array(frame),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    let runs = match runs {
        Ok(runs) => runs,
        Err(e) => {
            problems.push(format!("reading its slot states: {e:#}"));
            return problems;
        }
    };
    for run in runs {
        let Ok((run, state, epoch)) = node::slot_run(run) else {
            problems.push("answered FJORD SLOTS with a malformed run".into());
            continue;
        };
        let (mine, theirs) = (run.intersect(owned), run.intersect(&others));
        match state.as_str() {
            "owned" if epoch > 0 && !theirs.is_empty() => problems.push(format!(
                "claims slots {theirs} (owned at epoch {epoch}) that the topology gives other shards"
            )),
            "gone" if !mine.is_empty() => {
                problems.push(format!("refuses its own slots {mine} (gone at epoch {epoch})"))
            }
            "importing" | "frozen" => problems.push(format!(
                "slots {run} are {state} (epoch {epoch}): a move is under way or was interrupted"
            )),
            _ => {}
        }
    }
    problems
}

/// A replica's status once its last op reaches `target`, or as it stands after `wait`.
async fn caught_up(node: &mut node::Node, target: u64, wait: Duration) -> Result<node::Status> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let status = match node
            .call(&["FJORD", "STATUS"], Duration::from_secs(2))
            .await
        {
            Ok(frame) => node::Status::parse(frame)?,
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        };
        if status.last_id >= target || tokio::time::Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One line per etcd member: its id, the leader it follows and its raft term, or why it does
/// not answer. Returns the problems (a member down, members that disagree on the leader).
fn etcd_health(etcd: &fjord_common::etcd::Etcd) -> usize {
    let mut problems = 0;
    let mut leaders = std::collections::HashSet::new();
    for (endpoint, status) in etcd.members() {
        match status {
            Ok(s) if s.leader != 0 => {
                leaders.insert(s.leader);
                println!(
                    "  [OK] etcd {endpoint}: member {:x}, leader {:x}, raft term {}, etcd {}",
                    s.id, s.leader, s.raft_term, s.version
                );
            }
            Ok(s) => {
                problems += 1;
                println!("  [ERR] etcd {endpoint}: member {:x} has no leader", s.id);
            }
            Err(e) => {
                problems += 1;
                println!("  [ERR] etcd {endpoint}: {e}");
            }
        }
    }
    if leaders.len() > 1 {
        problems += 1;
        println!("  [ERR] etcd members name different leaders: {leaders:x?}");
    }
    problems
}

/// One line per shard process; a problem makes the exit code 1.
async fn check(store: &store::Store, wait: Duration, password: Option<String>) -> Result<ExitCode> {
    let doc = store.load()?;
    let topology = &doc.topology;
    println!(
        "{}: version {}, {} shards, all 16384 slots covered{}",
        store,
        topology.version,
        topology.shards.len(),
        if store.paused()? {
            "; controllers PAUSED (no failover)"
        } else {
            ""
        }
    );
    let mut problems = 0;
    if let Some(etcd) = store.etcd_client() {
        problems += etcd_health(etcd);
    }
    if let Some(m) = &topology.moving {
        problems += 1;
        println!(
            "  [ERR] a move of slots {} from {} to {} (epoch {}) is recorded: under way, or interrupted (then run `fjord-admin fix`)",
            m.slots, topology.shards[m.from].id, topology.shards[m.to].id, m.epoch
        );
    }
    for shard in &topology.shards {
        // The primary's last op when it was asked: each replica has to reach it.
        let mut primary_last = None;
        let members = std::iter::once((shard.addr.as_str(), "primary", false)).chain(
            shard
                .replicas
                .iter()
                .map(|r| (r.addr.as_str(), "replica", r.in_sync)),
        );
        for (addr, want, in_sync) in members {
            let mut node = node::Node::new(addr, password.clone());
            let status = match node
                .call(&["FJORD", "STATUS"], Duration::from_secs(2))
                .await
            {
                Ok(frame) => node::Status::parse(frame),
                Err(e) => Err(anyhow::anyhow!("{e}")),
            };
            let status = match (status, primary_last) {
                (Ok(s), Some(target)) if want == "replica" && s.last_id < target => {
                    caught_up(&mut node, target, wait).await
                }
                (status, _) => status,
            };
            let line = match status {
                Ok(s) => {
                    let role = if s.master { "primary" } else { "replica" };
                    if want == "primary" {
                        primary_last = Some(s.last_id);
                    }
                    let mut notes = Vec::new();
                    if let Some(target) =
                        primary_last.filter(|&t| want == "replica" && s.last_id < t)
                    {
                        notes.push(format!(
                            "at op {}, still behind its primary's {target} after {} s",
                            s.last_id,
                            wait.as_secs()
                        ));
                    }
                    if role != want {
                        notes.push(format!("should be a {want}"));
                    }
                    if !s.serving {
                        notes.push("fenced".to_string());
                    }
                    if shard.term > 0 && s.term != shard.term {
                        notes.push(format!("at term {}, the shard's is {}", s.term, shard.term));
                    }
                    if want == "replica" && s.primary != shard.addr {
                        notes.push(format!("follows {:?}, not {}", s.primary, shard.addr));
                    }
                    let ok = notes.is_empty();
                    problems += usize::from(!ok);
                    let record = match want {
                        "replica" if in_sync => " recorded-in-sync",
                        "replica" => " not-recorded-in-sync",
                        _ => "",
                    };
                    format!(
                        "{} {addr} {role} term={} last_op={}{record} {}",
                        if ok { "[OK]" } else { "[ERR]" },
                        s.term,
                        s.last_id,
                        notes.join("; ")
                    )
                }
                Err(e) => {
                    problems += 1;
                    format!("[ERR] {addr} {want}: {e:#}")
                }
            };
            println!("  {} {line}", shard.id);
            if want == "primary" {
                for problem in slot_problems(&mut node, &shard.slots).await {
                    problems += 1;
                    println!("  {} [ERR] {addr} {problem}", shard.id);
                }
            }
        }
        let in_sync = shard.replicas.iter().filter(|r| r.in_sync).count();
        if in_sync < shard.replicas.len() {
            problems += 1;
            println!(
                "  {} [ERR] DEGRADED: {in_sync} of {} replicas recorded in sync",
                shard.id,
                shard.replicas.len()
            );
        }
    }
    if problems > 0 {
        println!("{problems} problem(s)");
        return Ok(ExitCode::FAILURE);
    }
    println!("[OK] every shard process is as the topology says");
    Ok(ExitCode::SUCCESS)
}
