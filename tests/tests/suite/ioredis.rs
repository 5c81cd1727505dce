//! ioredis 6 (Node.js), the cluster client that connects with HELLO 3 and waits for INFO's
//! `loading:0`: `tests/node/cluster.mjs` run against a test cluster.

use fjord_tests::metrics::Scrape;
use fjord_tests::{Cluster, ClusterOptions};
use std::path::Path;
use std::process::Command;

#[test]
fn ioredis_cluster_and_plain_clients_work() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    assert!(
        dir.join("node_modules/ioredis").exists(),
        "ioredis is not installed: tests/run.sh runs `npm ci` in tests/node"
    );
    // The default layout: each master listener with a replica listener.
    let c = Cluster::start_with(ClusterOptions {
        replicas: true,
        ..ClusterOptions::default()
    })
    .unwrap();
    let out = Command::new("node")
        .arg(dir.join("cluster.mjs"))
        .arg(c.nodes.join(","))
        .arg(&c.standalone)
        .output()
        .expect("running node (Debian package nodejs, version 20 or later)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "ioredis checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ioredis checks passed"), "{stdout}");
    let served = Scrape::of(&c.admin)
        .unwrap()
        .sum("fjord_proxy_replica_reads_total", &[("outcome", "served")]);
    assert!(
        served > 0.0,
        "scaleReads: \"slave\" read nothing from a replica"
    );
}
