//! The development launcher (`fjord-proxy --launch-shards`, README line 1): it starts the
//! shards and replicas of the cluster file, opens its listeners once every replica's link
//! is up, starts again a local shard that dies, and stops them all when it stops.

use fjord_tests::{eventually, free_port, info_field, start_proxy, RawClient};
use std::time::Duration;

fn kill9(addr: &str) -> String {
    let pid = info_field(addr, "server", "process_id").unwrap();
    // SAFETY: signalling a shard this test's proxy started.
    unsafe {
        libc::kill(pid.parse().unwrap(), libc::SIGKILL);
    }
    pid
}

/// Waits until the process at `addr` answers as a new process (not `old_pid`).
fn restarted(addr: &str, old_pid: &str) -> bool {
    eventually(Duration::from_secs(20), || {
        info_field(addr, "server", "process_id").is_some_and(|p| p != old_pid)
    })
}

#[test]
fn the_launcher_starts_replicas_restarts_what_dies_and_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, replica) = (
        format!("127.0.0.1:{}", free_port().unwrap()),
        format!("127.0.0.1:{}", free_port().unwrap()),
    );
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nproxies: [{{listen: 127.0.0.1:0}}]\nshards:\n  - id: s1\n    addr: {primary}\n    slots: [0-16383]\n    data_dir: s1\n    replicas:\n      - addr: {replica}\n        data_dir: s1-replica\n"
        ),
    )
    .unwrap();
    let (mut proxy, lines) = start_proxy(&config, &["--launch-shards"]).unwrap();
    let node = lines
        .iter()
        .find_map(|l| l.strip_prefix("fjord-proxy listening on cluster "))
        .unwrap()
        .to_string();
    // Open only once the replica's link is up.
    assert_eq!(
        info_field(&replica, "replication", "master_link_status").as_deref(),
        Some("up")
    );
    let mut c = RawClient::tcp(&node).unwrap();
    assert_eq!(c.call_str(&["SET", "before", "1"]).unwrap(), "+OK\r\n");
    let replica_has = |key: &str| {
        eventually(Duration::from_secs(20), || {
            RawClient::tcp(&replica)
                .and_then(|mut r| r.call_str(&["GET", key]))
                .is_ok_and(|v| v == "$1\r\n1\r\n")
        })
    };
    assert!(replica_has("before"));

    // A replica killed comes back, resumes, and follows again.
    let old = kill9(&replica);
    assert!(
        restarted(&replica, &old),
        "the replica was not started again"
    );
    assert_eq!(
        c.call_str(&["SET", "after-replica", "1"]).unwrap(),
        "+OK\r\n"
    );
    assert!(replica_has("after-replica"));

    // A primary killed comes back as the primary, with its data.
    let old = kill9(&primary);
    assert!(
        restarted(&primary, &old),
        "the primary was not started again"
    );
    assert!(eventually(Duration::from_secs(20), || {
        RawClient::tcp(&node)
            .and_then(|mut c| c.call_str(&["SET", "after-primary", "1"]))
            .is_ok_and(|r| r == "+OK\r\n")
    }));
    assert_eq!(
        RawClient::tcp(&node)
            .unwrap()
            .call_str(&["GET", "before"])
            .unwrap(),
        "$1\r\n1\r\n"
    );
    assert!(replica_has("after-primary"));

    // Stopping the proxy stops them all.
    // SAFETY: signalling the proxy this test started.
    unsafe {
        libc::kill(proxy.id() as i32, libc::SIGTERM);
    }
    proxy.wait().unwrap();
    for addr in [&primary, &replica] {
        assert!(
            eventually(Duration::from_secs(20), || std::net::TcpStream::connect(
                addr
            )
            .is_err()),
            "{addr} still listens after the proxy stopped"
        );
    }
}
