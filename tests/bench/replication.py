#!/usr/bin/env python3
"""Benchmark: what replication costs a shard, against redis-server with a replica.

One run, same machine, redis-benchmark -c 50 -d 100 -r 100000 -t set at -P 1 and -P 16:
  - fjord-shard alone (its oplog is always on)
  - fjord-shard + one replica, replica_acks sync (replies wait for the in-sync replica)
  - fjord-shard + one replica, replica_acks async (as Redis)
  - redis-server alone, and redis-server + one replica (appendonly yes, same appendfsync)
Median of --reps runs each; prints ops/s, p50/p99 and ratios (to Redis with a replica, and
to fjord alone), and what the oplog adds per SET (bytes written to it per write, from the
shard's metrics). All processes share the machine's cores: on 2 cores the replica competes
with the primary for CPU, so the cost of a replica is an upper bound.

Usage: python3 tests/bench/replication.py [--fsync everysec] [-n 300000] [--reps 3]
(tests/bench/run-replication.sh builds first).
"""
import argparse, os, statistics, subprocess, sys, tempfile, time, urllib.request

from benchlib import BIN, free_port, read_until, redis_benchmark, stop_all, wait_port


def start_shard(folder, procs, name, args=()):
    admin = free_port()
    p = subprocess.Popen(
        [os.path.join(BIN, "fjord-shard"), "--listen", "127.0.0.1:0", "--data-dir", os.path.join(folder, name),
         "--io-threads", "2", "--admin", f"127.0.0.1:{admin}", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "RUST_LOG": "warn"})
    procs.append(p)
    line = read_until(p, lambda l: l.startswith("fjord-shard listening on "))[-1]
    return int(line.rsplit(":", 1)[1]), admin


def start_redis(folder, procs, name, fsync, args=()):
    port = free_port()
    d = os.path.join(folder, name)
    os.makedirs(d)
    procs.append(subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--appendfsync", fsync, "--dir", d, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_port(port)
    return port


def info(port, field):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def wait_replica(primary_port, replica_port):
    deadline = time.time() + 30
    while time.time() < deadline:
        if info(replica_port, "master_link_status") == "up":
            return
        time.sleep(0.1)
    raise RuntimeError("the replica never connected")


def metric(admin, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics").read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def setup(kind, folder, procs, fsync):
    """Starts one configuration; returns (port to benchmark, fjord admin port or None)."""
    if kind.startswith("fjord"):
        port, admin = start_shard(folder, procs, "p", ["--fsync", fsync, "--replica-acks",
                                                       "async" if kind.endswith("async") else "sync"])
        if kind != "fjord":
            rport, _ = start_shard(folder, procs, "r", ["--fsync", fsync, "--replica-of", f"127.0.0.1:{port}"])
            wait_replica(port, rport)
        return port, admin
    port = start_redis(folder, procs, "p", fsync)
    if kind == "redis+replica":
        rport = start_redis(folder, procs, "r", fsync, ["--replicaof", "127.0.0.1", str(port)])
        wait_replica(port, rport)
    return port, None


KINDS = ["fjord", "fjord+replica sync", "fjord+replica async", "redis", "redis+replica"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsync", default="everysec")
    ap.add_argument("-n", type=int, default=300000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(os.path.join(BIN, "fjord-shard")):
        sys.exit("build first: cargo build --release")
    results = {}
    oplog_per_set = None
    for pipeline in (1, 16):
        runs = {k: [] for k in KINDS}
        for rep in range(args.reps):
            for kind in KINDS if rep % 2 == 0 else list(reversed(KINDS)):
                folder = tempfile.mkdtemp(prefix="fjord-bench-repl-")
                procs = []
                try:
                    port, admin = setup(kind, folder, procs, args.fsync)
                    r = redis_benchmark(["-h", "127.0.0.1", "-p", str(port), "-c", "50", "-d", "100",
                                         "-r", "100000", "-n", str(args.n), "-t", "set", "-P", str(pipeline)])
                    runs[kind].append(r["SET"])
                    if kind == "fjord" and admin:
                        writes = metric(admin, "fjord_shard_writes_total")
                        oplog_per_set = metric(admin, "fjord_shard_oplog_written_bytes_total") / max(writes, 1)
                finally:
                    stop_all(procs, folder)
                print(f"  -P {pipeline} rep {rep + 1} {kind} done", file=sys.stderr, flush=True)
        for kind in KINDS:
            results[(pipeline, kind)] = tuple(statistics.median(v[i] for v in runs[kind]) for i in range(3))
    print(f"\nredis-benchmark -c 50 -d 100 -r 100000 -n {args.n} -t set, median of {args.reps}, "
          f"appendfsync/fsync {args.fsync}, one machine ({os.cpu_count()} cores)\n")
    print("| -P | setup | ops/s | p50/p99 ms | vs redis+replica | vs fjord alone |")
    print("| --- | --- | --- | --- | --- | --- |")
    for pipeline in (1, 16):
        ref = results[(pipeline, "redis+replica")][0]
        alone = results[(pipeline, "fjord")][0]
        for kind in KINDS:
            ops, p50, p99 = results[(pipeline, kind)]
            print(f"| {pipeline} | {kind} | {ops:,.0f} | {p50:.3f}/{p99:.3f} | {ops / ref:.2f} | {ops / alone:.2f} |")
    if oplog_per_set is not None:
        print(f"\nThe oplog wrote {oplog_per_set:.0f} bytes per SET (100-byte values, keys of 16 bytes), "
              "in the batch of the write.")


if __name__ == "__main__":
    main()
