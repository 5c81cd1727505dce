//! Prometheus metrics both binaries share: bucket layouts, per-command series, connection and
//! traffic counters, and the text exposition.
//!
//! Handles for labelled series are resolved once, never per request: per-command series the
//! first time a command runs (so only commands that ran are exported, not a few thousand
//! zeros), everything else at start-up. Per-request recording can be switched off
//! (`record_metrics: false`) to measure what it costs; counters INFO shows and gauges sampled at
//! scrape time keep working.

use crate::command::{self, CommandSpec};
use crate::Reply;
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets in seconds: 10 µs to 10 s in 1-2.5-5 steps.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for counts of things (keys per command, writes per group): powers of two to 4096.
pub const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Registers `metric` in `registry`. Names are fixed in the code, so a clash is a bug found at
/// the first start-up, never something input can cause.
pub fn register<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).expect("valid metric"))
}

pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, vec)
}

pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help).expect("valid metric"))
}

pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, Histogram::with_opts(opts).expect("valid metric"))
}

pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(
        registry,
        HistogramVec::new(opts, labels).expect("valid metric"),
    )
}

/// A registry with the standard `process_*` series (CPU, resident memory, open files).
pub fn new_registry() -> Registry {
    let registry = Registry::new();
    let process = prometheus::process_collector::ProcessCollector::for_self();
    if let Err(e) = registry.register(Box::new(process)) {
        tracing::warn!(error = %e, "process metrics unavailable");
    }
    registry
}

/// The registry's series in Prometheus's text format.
pub fn render(registry: &Registry) -> String {
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_else(|e| format!("# encoding the metrics failed: {e}\n"))
}

/// The `result` label of a command: `ok`, or the kind of error it got, from the error code
/// (the reply's first word). Codes fjord does not send are `other`, which keeps the label
/// bounded whatever a shard replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultKind {
    Ok,
    Err,
    WrongType,
    CrossSlot,
    ClusterDown,
    NoAuth,
    WrongPass,
    NoProto,
    Misconf,
    Other,
}

impl ResultKind {
    const ALL: [ResultKind; 10] = [
        ResultKind::Ok,
        ResultKind::Err,
        ResultKind::WrongType,
        ResultKind::CrossSlot,
        ResultKind::ClusterDown,
        ResultKind::NoAuth,
        ResultKind::WrongPass,
        ResultKind::NoProto,
        ResultKind::Misconf,
        ResultKind::Other,
    ];

    pub fn of(reply: &Reply) -> Self {
        let Reply::Error(text) = reply else {
            return ResultKind::Ok;
        };
        let code = text.split(' ').next().unwrap_or_default();
        Self::ALL[1..]
            .iter()
            .copied()
            .find(|k| k.label().eq_ignore_ascii_case(code))
            .unwrap_or(ResultKind::Other)
    }

    pub fn label(self) -> &'static str {
        match self {
            ResultKind::Ok => "ok",
            ResultKind::Err => "err",
            ResultKind::WrongType => "wrongtype",
            ResultKind::CrossSlot => "crossslot",
            ResultKind::ClusterDown => "clusterdown",
            ResultKind::NoAuth => "noauth",
            ResultKind::WrongPass => "wrongpass",
            ResultKind::NoProto => "noproto",
            ResultKind::Misconf => "misconf",
            ResultKind::Other => "other",
        }
    }
}

/// The `command` label of a request: a top-level command of the table, or `unknown` for
/// anything else (so the label stays bounded whatever clients send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandLabel(usize);

impl CommandLabel {
    pub const UNKNOWN: CommandLabel = CommandLabel(usize::MAX);

    pub fn of(spec: &'static CommandSpec) -> Self {
        command::position(spec).map_or(Self::UNKNOWN, CommandLabel)
    }

    /// The label of a request that did not resolve: its command if the name is known (a
    /// wrong arity counts against the command, as Redis's `rejected_calls` does).
    pub fn of_request(args: &[bytes::Bytes]) -> Self {
        args.first()
            .and_then(|name| command::lookup(name))
            .map_or(Self::UNKNOWN, Self::of)
    }

    /// The table entry this label counts, if it is one.
    pub fn spec(self) -> Option<&'static CommandSpec> {
        command::all().get(self.0)
    }

    fn index(self) -> usize {
        self.0.min(command::all().len())
    }

    fn name(index: usize) -> &'static str {
        command::all().get(index).map_or("unknown", |c| c.name)
    }
}

/// One handle per command, resolved from `vec` the first time that command is seen.
pub struct PerCommand<T> {
    cells: Box<[OnceLock<T>]>,
}

impl<T> Default for PerCommand<T> {
    fn default() -> Self {
        Self {
            cells: (0..=command::all().len())
                .map(|_| OnceLock::new())
                .collect(),
        }
    }
}

impl<T> PerCommand<T> {
    /// The commands that have a handle, with their positions in the table.
    fn resolved(&self) -> impl Iterator<Item = (usize, &T)> {
        self.cells
            .iter()
            .enumerate()
            .filter_map(|(i, cell)| cell.get().map(|t| (i, t)))
    }

    /// The handle for `label`, made by `make(command name)` on first use.
    pub fn get(&self, label: CommandLabel, make: impl FnOnce(&'static str) -> T) -> &T {
        let i = label.index();
        self.cells[i].get_or_init(|| make(CommandLabel::name(i)))
    }
}

/// `<prefix>_commands_total{command,result}` and `<prefix>_command_duration_seconds{command}`.
pub struct CommandMetrics {
    recording: bool,
    calls: IntCounterVec,
    duration: HistogramVec,
    call_cells: PerCommand<[OnceLock<IntCounter>; ResultKind::ALL.len()]>,
    duration_cells: PerCommand<Histogram>,
}

impl CommandMetrics {
    pub fn new(registry: &Registry, prefix: &str, recording: bool) -> Self {
        Self {
            recording,
            calls: counter_vec(
                registry,
                &format!("{prefix}_commands_total"),
                "Commands answered, by command and result (ok or the error code)",
                &["command", "result"],
            ),
            duration: histogram_vec(
                registry,
                &format!("{prefix}_command_duration_seconds"),
                "Time from reading a command to its reply being ready, by command",
                &["command"],
                LATENCY_BUCKETS,
            ),
            call_cells: PerCommand::default(),
            duration_cells: PerCommand::default(),
        }
    }

    /// Whether per-request series are recorded (`record_metrics`).
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Counts a command read at `read_at` whose reply is `reply`; returns how it ended.
    pub fn record(&self, label: CommandLabel, reply: &Reply, read_at: Instant) -> ResultKind {
        let kind = ResultKind::of(reply);
        if !self.recording {
            return kind;
        }
        let results = self.call_cells.get(label, |_| Default::default());
        results[kind as usize]
            .get_or_init(|| {
                let name = CommandLabel::name(label.index());
                self.calls.with_label_values(&[name, kind.label()])
            })
            .inc();
        self.duration_cells
            .get(label, |name| self.duration.with_label_values(&[name]))
            .observe(read_at.elapsed().as_secs_f64());
        kind
    }
}

impl CommandMetrics {
    /// INFO's commandstats section, from the same series (empty while not recording). Every
    /// error reply counts as a failed call: fjord does not tell rejections (arity, auth)
    /// from failures during execution, so `rejected_calls` stays 0.
    pub fn commandstats_section(&self) -> String {
        let mut out = String::from("# Commandstats\r\n");
        for (i, results) in self.call_cells.resolved() {
            let name = CommandLabel::name(i);
            let count = |kinds: &[ResultKind]| -> u64 {
                kinds
                    .iter()
                    .filter_map(|k| results[*k as usize].get())
                    .map(|c| c.get())
                    .sum()
            };
            let calls = count(&ResultKind::ALL);
            let failed = count(&ResultKind::ALL[1..]);
            let usec = self.duration_cells.cells[i]
                .get()
                .map_or(0.0, |h| h.get_sample_sum() * 1e6);
            let per_call = if calls == 0 { 0.0 } else { usec / calls as f64 };
            out.push_str(&format!(
                "cmdstat_{name}:calls={calls},usec={usec:.0},usec_per_call={per_call:.2},\
                 rejected_calls=0,failed_calls={failed}\r\n"
            ));
        }
        out.push_str("\r\n");
        out
    }

    /// INFO's errorstats section: error replies by their code.
    pub fn errorstats_section(&self) -> String {
        let mut totals = [0u64; ResultKind::ALL.len()];
        for (_, results) in self.call_cells.resolved() {
            for (total, cell) in totals.iter_mut().zip(results.iter()) {
                *total += cell.get().map_or(0, |c| c.get());
            }
        }
        let mut out = String::from("# Errorstats\r\n");
        for (kind, total) in ResultKind::ALL.iter().zip(totals).skip(1) {
            if total > 0 {
                let code = kind.label().to_ascii_uppercase();
                out.push_str(&format!("errorstat_{code}:count={total}\r\n"));
            }
        }
        out.push_str("\r\n");
        out
    }
}

/// Connections and bytes, shown by INFO (reset by CONFIG RESETSTAT) and exported as
/// `<prefix>_client_connections_total{result}`, `<prefix>_client_connections` and
/// `<prefix>_bytes_total{direction}`.
pub struct TrafficStats {
    pub accepted: IntCounter,
    pub rejected: IntCounter,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    /// Commands read, for INFO's `total_commands_processed` (the exported series is
    /// `<prefix>_commands_total`, which has the command and the result).
    pub commands: IntCounter,
    pub clients: IntGauge,
}

impl TrafficStats {
    pub fn new(registry: &Registry, prefix: &str) -> Self {
        let connections = counter_vec(
            registry,
            &format!("{prefix}_client_connections_total"),
            "Client connections accepted, or rejected at max_clients",
            &["result"],
        );
        let bytes = counter_vec(
            registry,
            &format!("{prefix}_bytes_total"),
            "Bytes read from (in) and written to (out) clients",
            &["direction"],
        );
        Self {
            accepted: connections.with_label_values(&["accepted"]),
            rejected: connections.with_label_values(&["rejected"]),
            bytes_in: bytes.with_label_values(&["in"]),
            bytes_out: bytes.with_label_values(&["out"]),
            commands: IntCounter::new("commands", "commands read").expect("valid metric"),
            clients: gauge(
                registry,
                &format!("{prefix}_client_connections"),
                "Client connections open",
            ),
        }
    }

    /// CONFIG RESETSTAT. Prometheus reads the drop as a counter reset, as after a restart.
    pub fn reset(&self) {
        for c in [
            &self.accepted,
            &self.rejected,
            &self.bytes_in,
            &self.bytes_out,
            &self.commands,
        ] {
            c.reset();
        }
    }

    /// The first lines of INFO's stats section, which proxy and shard share.
    pub fn info_lines(&self) -> String {
        format!(
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
             total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\n",
            self.accepted.get() + self.rejected.get(),
            self.commands.get(),
            self.bytes_in.get(),
            self.bytes_out.get(),
            self.rejected.get(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_kinds_come_from_the_error_code() {
        assert_eq!(ResultKind::of(&Reply::ok()), ResultKind::Ok);
        assert_eq!(ResultKind::of(&Reply::Nil), ResultKind::Ok);
        assert_eq!(
            ResultKind::of(&Reply::error("ERR syntax error")),
            ResultKind::Err
        );
        assert_eq!(
            ResultKind::of(&Reply::error(crate::error::CROSSSLOT)),
            ResultKind::CrossSlot
        );
        assert_eq!(
            ResultKind::of(&Reply::error("CLUSTERDOWN shard s1 is unavailable")),
            ResultKind::ClusterDown
        );
        assert_eq!(
            ResultKind::of(&Reply::error("MOVED 1 a:1")),
            ResultKind::Other
        );
        assert_eq!(ResultKind::of(&Reply::error("")), ResultKind::Other);
    }

    #[test]
    fn commands_are_counted_under_their_table_name() {
        let registry = Registry::new();
        let m = CommandMetrics::new(&registry, "t", true);
        let get = command::lookup(b"GET").unwrap();
        for _ in 0..3 {
            m.record(CommandLabel::of(get), &Reply::Nil, Instant::now());
        }
        m.record(
            CommandLabel::UNKNOWN,
            &Reply::error("ERR unknown"),
            Instant::now(),
        );
        let text = render(&registry);
        assert!(
            text.contains("t_commands_total{command=\"get\",result=\"ok\"} 3"),
            "{text}"
        );
        assert!(text.contains("t_commands_total{command=\"unknown\",result=\"err\"} 1"));
        assert!(text.contains("t_command_duration_seconds_count{command=\"get\"} 3"));
        // Only commands that ran have series.
        assert!(!text.contains("command=\"set\""));
    }

    #[test]
    fn info_sections_read_the_same_series() {
        let m = CommandMetrics::new(&Registry::new(), "t", true);
        let get = CommandLabel::of(command::lookup(b"GET").unwrap());
        m.record(get, &Reply::Nil, Instant::now());
        m.record(get, &Reply::error(crate::error::WRONGTYPE), Instant::now());
        let stats = m.commandstats_section();
        assert!(stats.contains("cmdstat_get:calls=2,"), "{stats}");
        assert!(
            stats.contains("rejected_calls=0,failed_calls=1\r\n"),
            "{stats}"
        );
        assert_eq!(
            m.errorstats_section(),
            "# Errorstats\r\nerrorstat_WRONGTYPE:count=1\r\n\r\n"
        );
    }

    #[test]
    fn recording_off_records_nothing() {
        let registry = Registry::new();
        let m = CommandMetrics::new(&registry, "t", false);
        m.record(CommandLabel::UNKNOWN, &Reply::ok(), Instant::now());
        assert!(!render(&registry).contains("t_commands_total{"));
    }
}
