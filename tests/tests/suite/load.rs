//! `fjord-load` for a few seconds against a fjord cluster (proxy mode on the standalone
//! listener, cluster mode on the cluster listeners) and against a real Redis Cluster (cluster
//! mode): no error, no correctness violation, and a JSON report of the documented shape.

use fjord_tests::{bin_dir, Cluster, RedisCluster};
use std::process::Command;

/// Runs fjord-load with `args` and returns its JSON report.
fn run_load(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(bin_dir().join("fjord-load"))
        .args(args)
        .args(["--duration", "2", "--warmup", "0.3", "--keyspace", "20000"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("running fjord-load (cargo build --release builds it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "fjord-load {args:?} failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["violations"], 0, "{report}");
    assert!(report["ops"].as_u64().unwrap() > 0, "{report}");
    for field in ["seconds", "ops_per_sec", "keys_per_sec"] {
        assert!(report[field].as_f64().unwrap() > 0.0, "{field}: {report}");
    }
    for part in ["latency_us", "reads", "writes"] {
        for field in ["count", "p50", "p90", "p99", "p999", "max"] {
            assert!(
                report[part][field].as_u64().is_some(),
                "{part}.{field}: {report}"
            );
        }
        assert!(report[part]["mean"].as_f64().is_some());
    }
    let l = &report["latency_us"];
    assert!(l["p50"].as_u64() <= l["p99"].as_u64() && l["p99"].as_u64() <= l["max"].as_u64());
    assert_eq!(
        l["count"].as_u64().unwrap(),
        report["ops"].as_u64().unwrap(),
        "{report}"
    );
    assert!(report["options"]["target"].is_string());
    report
}

#[test]
fn fjord_load_against_fjord_in_both_modes() {
    let c = Cluster::start().unwrap();
    let proxy = run_load(&["--target", &c.standalone, "--mode", "proxy", "--keys", "10"]);
    assert_eq!(proxy["options"]["mode"], "proxy");
    // Writes-heavy, zipfian, large operations, through the cluster listeners.
    let cluster = run_load(&[
        "--target",
        &c.nodes[1],
        "--mode",
        "cluster",
        "--keys",
        "100",
        "--read-ratio",
        "0.5",
        "--distribution",
        "zipfian",
    ]);
    assert_eq!(cluster["options"]["mode"], "cluster");
    assert!(cluster["writes"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn fjord_load_against_a_real_redis_cluster() {
    let rc = RedisCluster::start().unwrap();
    let report = run_load(&[
        "--target",
        &rc.nodes[0],
        "--mode",
        "cluster",
        "--keys",
        "10",
    ]);
    assert!(report["reads"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn the_benchmark_report_has_ratios_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let target = |ops: f64, p99: f64| {
        serde_json::json!({"mode": "proxy", "ops_per_sec": ops, "keys_per_sec": ops * 10.0,
            "p50_us": p99 / 2.0, "p99_us": p99, "mget_p99_us": p99, "mset_p99_us": p99,
            "errors": 0, "violations": 0})
    };
    let load: Vec<serde_json::Value> = [1, 10, 100]
        .iter()
        .map(|&keys| {
            let k = f64::from(keys);
            serde_json::json!({"keys": keys, "connections": 8, "inflight": 4,
                "fjord": target(9000.0 / k, 300.0 * k), "redis_cluster": target(6000.0 / k, 400.0 * k),
                "twemproxy": target(3000.0 / k, 500.0 * k)})
        })
        .collect();
    let results = serde_json::json!({
        "command": "compare.py --test", "args": {"reps": 3, "n": 1000},
        "redis_benchmark": [{"test": "GET -P 1", "fjord": [50.0, 1.0, 2.0],
            "redis_cluster": [100.0, 0.5, 1.0], "twemproxy": [25.0, 2.0, 4.0]}],
        "load": load,
    });
    let json = dir.path().join("results.json");
    std::fs::write(&json, results.to_string()).unwrap();
    let status = Command::new(bin_dir().join("fjord-bench-report"))
        .arg(&json)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains(
            "| GET -P 1 | 50 (1.000/2.000) | 100 (0.500/1.000) | 25 (2.000/4.000) | 0.50 | 2.00 |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| 10 | 8x4 | 900 (9000 keys/s, 3.00) |"),
        "{md}"
    );
    assert!(md.contains("| 1.50 | 3.00 | 0 |"), "{md}");
    for svg in ["keys-per-sec-8x4.svg", "p99-8x4.svg"] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("twemproxy") && text.contains("<polyline"),
            "{svg}"
        );
        assert!(md.contains(svg));
    }
}
