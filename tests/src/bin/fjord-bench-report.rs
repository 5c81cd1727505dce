//! `fjord-bench-report RESULTS.json OUT_DIR`: turns what `tests/bench/compare.py` measured into
//! `report.md` (tables with fjord/Redis Cluster and fjord/twemproxy ratios) and SVG plots of
//! throughput and p99 latency against keys per operation, one pair per concurrency.
//!
//! plotters' SVG backend writes text as SVG text elements, so no system font is needed.

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

const TARGETS: [(&str, &str); 3] = [
    ("fjord", "fjord"),
    ("redis_cluster", "Redis Cluster"),
    ("twemproxy", "twemproxy"),
];
const COLORS: [RGBColor; 3] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: fjord-bench-report RESULTS.json OUT_DIR");
        std::process::exit(2);
    }
    if let Err(e) = run(Path::new(&args[1]), Path::new(&args[2])) {
        eprintln!("fjord-bench-report: {e:#}");
        std::process::exit(1);
    }
}

fn run(results: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(results)
            .with_context(|| format!("reading {}", results.display()))?,
    )?;
    let mut md = String::new();
    let large = r["large"].is_object();
    match large {
        true => writeln!(md, "# fjord vs Redis Cluster on a large data set\n")?,
        false => writeln!(md, "# fjord vs Redis Cluster vs twemproxy\n")?,
    }
    writeln!(
        md,
        "Produced by `{}`.\n",
        r["command"].as_str().unwrap_or("?")
    )?;
    writeln!(
        md,
        "fjord: proxy + 3 shards (fsync everysec). Redis Cluster: 3 masters, no replicas, \
         appendonly yes, appendfsync everysec.{} Medians of {} alternating runs.\n",
        match large {
            true => "",
            false =>
                " twemproxy: nutcracker (ketama) in front of 3 redis-servers with the same \
                      AOF settings.",
        },
        r["args"]["reps"]
    )?;
    let benchmark = r["redis_benchmark"].as_array().cloned().unwrap_or_default();
    let load = r["load"].as_array().cloned().unwrap_or_default();
    if !benchmark.is_empty() {
        get_set_table(&mut md, &r, &benchmark)?;
    }
    if !load.is_empty() {
        load_tables(&mut md, &load, out)?;
    }
    if r["large"].is_object() {
        large_tables(&mut md, &r["large"])?;
    }
    std::fs::write(out.join("report.md"), md)?;
    Ok(())
}

fn get_set_table(md: &mut String, r: &Value, rows: &[Value]) -> Result<()> {
    writeln!(
        md,
        "## GET/SET (redis-benchmark -c 50 -d 100 -r 100000 -n {})\n",
        r["args"]["n"]
    )?;
    writeln!(
        md,
        "| test | fjord ops/s (p50/p99 ms) | Redis Cluster | twemproxy | fjord/Redis Cluster | fjord/twemproxy |"
    )?;
    writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: |")?;
    for row in rows {
        let cell = |t: &str| {
            let v = &row[t];
            format!("{:.0} ({:.3}/{:.3})", num(&v[0]), num(&v[1]), num(&v[2]))
        };
        let ops = |t: &str| num(&row[t][0]);
        writeln!(
            md,
            "| {} | {} | {} | {} | {:.2} | {:.2} |",
            row["test"].as_str().unwrap_or("?"),
            cell("fjord"),
            cell("redis_cluster"),
            cell("twemproxy"),
            ops("fjord") / ops("redis_cluster"),
            ops("fjord") / ops("twemproxy")
        )?;
    }
    Ok(())
}

fn load_tables(md: &mut String, load: &[Value], out: &Path) -> Result<()> {
    writeln!(
        md,
        "\n## MGET/MSET (fjord-load, 90% MGET, 10% MSET, every reply checked)\n\n\
         fjord: one MGET/MSET through the standalone listener (`--mode proxy`); Redis Cluster: \
         split per slot and grouped per node as its clients must (`--mode cluster`); twemproxy: \
         one command, split by twemproxy (`--mode proxy`). Throughput in operations (and keys) \
         per second, p99 of all operations in ms.\n"
    )?;
    writeln!(
        md,
        "| keys/op | connections x in flight | fjord ops/s (p99 ms) | Redis Cluster | twemproxy | fjord/Redis Cluster | fjord/twemproxy | errors, violations |"
    )?;
    writeln!(
        md,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for row in load {
        let cell = |t: &str| {
            let v = &row[t];
            format!(
                "{:.0} ({:.0} keys/s, {:.2})",
                num(&v["ops_per_sec"]),
                num(&v["keys_per_sec"]),
                num(&v["p99_us"]) / 1000.0
            )
        };
        let ops = |t: &str| num(&row[t]["ops_per_sec"]);
        let bad: f64 = TARGETS
            .iter()
            .map(|(t, _)| num(&row[t]["errors"]) + num(&row[t]["violations"]))
            .sum();
        writeln!(
            md,
            "| {} | {}x{} | {} | {} | {} | {:.2} | {:.2} | {} |",
            row["keys"],
            row["connections"],
            row["inflight"],
            cell("fjord"),
            cell("redis_cluster"),
            cell("twemproxy"),
            ops("fjord") / ops("redis_cluster"),
            ops("fjord") / ops("twemproxy"),
            bad
        )?;
    }
    let mut concurrencies: Vec<(u64, u64)> = load
        .iter()
        .map(|row| {
            (
                row["connections"].as_u64().unwrap_or(0),
                row["inflight"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    concurrencies.dedup();
    writeln!(md)?;
    for (c, i) in concurrencies {
        let rows: Vec<&Value> = load
            .iter()
            .filter(|row| {
                row["connections"].as_u64() == Some(c) && row["inflight"].as_u64() == Some(i)
            })
            .collect();
        for (metric, label, file) in [
            (
                "keys_per_sec",
                "keys per second",
                format!("keys-per-sec-{c}x{i}.svg"),
            ),
            ("p99_us", "p99 latency (ms)", format!("p99-{c}x{i}.svg")),
        ] {
            plot(
                &out.join(&file),
                &rows,
                metric,
                label,
                &format!("{c} connections x {i} in flight"),
            )?;
            writeln!(md, "![{label}, {c}x{i}]({file})")?;
        }
    }
    Ok(())
}

/// The large-dataset run: fjord and Redis Cluster on a key space beyond the block caches.
fn large_tables(md: &mut String, l: &Value) -> Result<()> {
    let gib = |v: &Value| num(v) / (1u64 << 30) as f64;
    let keys = num(&l["keys"]);
    let fjord_disk = num(&l["disk_bytes"]["fjord"]);
    writeln!(
        md,
        "## Large data set: {keys:.0} keys of {} B\n",
        l["value_size"]
    )?;
    writeln!(
        md,
        "fjord's data is {:.2} GiB on disk against {:.2} GiB of block cache in all (64 MiB per \
         shard): {:.1}x the cache. It {} the page cache ({:.1} GiB available of {:.1} GiB), so \
         block-cache misses are served from memory, not the disk.\n",
        gib(&l["disk_bytes"]["fjord"]),
        gib(&l["block_cache_bytes"]),
        fjord_disk / num(&l["block_cache_bytes"]),
        if fjord_disk < num(&l["memory_available_bytes"]) {
            "fits in"
        } else {
            "does not fit in"
        },
        gib(&l["memory_available_bytes"]),
        gib(&l["memory_total_bytes"]),
    )?;
    writeln!(md, "| | fjord | Redis Cluster |\n| --- | ---: | ---: |")?;
    writeln!(
        md,
        "| load (keys/s, MSET of 100) | {:.0} | {:.0} |",
        num(&l["load"]["fjord"]),
        num(&l["load"]["redis_cluster"])
    )?;
    writeln!(
        md,
        "| bytes on disk per key | {:.0} | {:.0} |",
        fjord_disk / keys,
        num(&l["disk_bytes"]["redis_cluster"]) / keys
    )?;
    for row in l["reads"].as_array().context("reads")? {
        let cell = |t: &str| {
            format!(
                "{:.0} ops/s, p99 {:.2} ms",
                num(&row[t]["ops_per_sec"]),
                num(&row[t]["p99_us"]) / 1000.0
            )
        };
        writeln!(
            md,
            "| MGET {} keys, {} | {} | {} |",
            row["keys"],
            row["distribution"].as_str().unwrap_or("?"),
            cell("fjord"),
            cell("redis_cluster")
        )?;
    }
    writeln!(md, "\n| process | RSS (MiB) |\n| --- | ---: |")?;
    for (name, bytes) in l["rss_bytes"].as_object().context("rss_bytes")? {
        writeln!(md, "| {name} | {:.0} |", num(bytes) / (1u64 << 20) as f64)?;
    }
    writeln!(
        md,
        "\n| restart (kill -9 to the first correct GET) | seconds |\n| --- | ---: |"
    )?;
    for (name, seconds) in l["restart_seconds"]
        .as_object()
        .context("restart_seconds")?
    {
        writeln!(md, "| {name} | {:.2} |", num(seconds))?;
    }
    Ok(())
}

/// 1250000 → "1.25M", 0.5 → "0.5": axis labels that stay short.
fn short(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{}M", trim(v / 1e6)),
        v if v >= 1e3 => format!("{}k", trim(v / 1e3)),
        v => trim(v),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// One line per target of `metric` against keys per operation (both axes logarithmic).
fn plot(path: &Path, rows: &[&Value], metric: &str, label: &str, caption: &str) -> Result<()> {
    let scale = if metric == "p99_us" { 1000.0 } else { 1.0 };
    let series: Vec<(&str, Vec<(f64, f64)>)> = TARGETS
        .iter()
        .map(|(key, name)| {
            let points = rows
                .iter()
                .map(|row| (num(&row["keys"]), num(&row[key][metric]) / scale))
                .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
                .collect();
            (*name, points)
        })
        .collect();
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::MAX, 0.0f64);
    for &(x, y) in all {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if y_max <= 0.0 {
        anyhow::bail!("no data to plot for {metric}");
    }
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{label} vs keys per operation ({caption})"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0.8f64..x_max * 1.25).log_scale(),
            (y_min * 0.8..y_max * 1.25).log_scale(),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc("keys per operation")
        .y_desc(label)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| short(*v))
        .y_labels(8)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for ((name, points), color) in series.into_iter().zip(COLORS) {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}
