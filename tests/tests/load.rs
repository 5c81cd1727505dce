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
