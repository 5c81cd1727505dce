#!/usr/bin/env python3
"""Benchmark: fjord (proxy + 3 shards, fsync everysec) against a real Redis Cluster of 3
masters without replicas (appendonly yes, appendfsync everysec).

1. `redis-benchmark --cluster -c 50 -d 100 -r 100000 -n N -t set,get -P {1,16} --csv` against
   both, alternating targets, median of --reps runs: ops/s, p50/p99 and the ratio.
2. MGET of 100 random keys across slots with the same client library on both sides: redis-py
   `Redis.mget` on fjord's standalone listener against `RedisCluster.mget_nonatomic` (the
   client splits per slot) on Redis Cluster; one client, sequential calls.

Everything runs on free loopback ports (each Redis Cluster node also needs port+10000) and is
stopped at the end, also on Ctrl-C or failure. Run it with tests/bench/run-proxy.sh, which
builds in release and provides redis-py.
"""
import argparse, os, random, statistics, subprocess, sys, tempfile, time

from benchlib import free_port, redis_benchmark, stop_all, wait_port

import redis
from redis.cluster import RedisCluster

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release")


def read_until(proc, done):
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if done(lines[-1]):
            return lines
    raise RuntimeError(f"process exited early: {lines}")


class Targets:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fjord-bench-")
        self.procs = []
        env = {**os.environ, "RUST_LOG": "warn"}
        shard_addrs = []
        for i in range(3):
            p = subprocess.Popen(
                [os.path.join(BIN, "fjord-shard"), "--listen", "127.0.0.1:0", "--data-dir",
                 os.path.join(self.dir, f"s{i}"), "--fsync", "everysec", "--io-threads", "1"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            self.procs.append(p)
            shard_addrs.append(read_until(p, lambda l: l.startswith("fjord-shard listening on "))[-1].rsplit(" ", 1)[1])
        config = os.path.join(self.dir, "cluster.yaml")
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        with open(config, "w") as f:
            f.write("version: 1\nproxies:\n" + "  - listen: 127.0.0.1:0\n" * 3 + "standalone: 127.0.0.1:0\nshards:\n")
            for i, (addr, (a, b)) in enumerate(zip(shard_addrs, ranges)):
                f.write(f"  - {{ id: s{i + 1}, addr: \"{addr}\", slots: [{a}-{b}] }}\n")
        proxy = subprocess.Popen([os.path.join(BIN, "fjord-proxy"), "--config", config],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.procs.append(proxy)
        lines = read_until(proxy, lambda l: l == "fjord-proxy ready")
        self.fjord_port = int(next(l for l in lines if " cluster " in l).rsplit(":", 1)[1])
        self.fjord_standalone = int(next(l for l in lines if " standalone " in l).rsplit(":", 1)[1])

        self.redis_ports = []
        for i in range(3):
            port = free_port(also_bus=True)
            d = os.path.join(self.dir, f"r{i}")
            os.makedirs(d)
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", os.path.join(d, "nodes.conf"), "--save", "", "--appendonly", "yes",
                 "--appendfsync", "everysec", "--dir", d],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(port)
            self.redis_ports.append(port)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.redis_ports],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True)
        deadline = time.time() + 30
        while b"cluster_state:ok" not in subprocess.run(
                ["redis-cli", "-p", str(self.redis_ports[0]), "cluster", "info"], capture_output=True).stdout:
            if time.time() > deadline:
                raise RuntimeError("Redis Cluster did not become ok")
            time.sleep(0.2)

    def stop(self):
        stop_all(self.procs, self.dir)


def bench(port, pipeline, n):
    return redis_benchmark(["--cluster", "-h", "127.0.0.1", "-p", str(port), "-c", "50", "-d", "100",
                            "-r", "100000", "-n", str(n), "-t", "set,get", "-P", str(pipeline)])


def mget_run(call, seconds, keyspace=100000, per_op=100):
    rng = random.Random(7)
    lat = []
    end = time.time() + seconds
    while time.time() < end:
        keys = [f"key:{rng.randrange(keyspace):012d}" for _ in range(per_op)]
        t = time.perf_counter()
        values = call(keys)
        lat.append(time.perf_counter() - t)
        assert len(values) == per_op
    lat.sort()
    total = sum(lat)
    return (len(lat) / total, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=500000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mget-seconds", type=float, default=10, help="0 skips the MGET comparison")
    ap.add_argument("--pipelines", default="1,16", help="redis-benchmark -P values to run")
    args = ap.parse_args()
    t = Targets()
    try:
        results = []
        for pipeline in [int(p) for p in args.pipelines.split(",")]:
            runs = {"fjord": [], "redis": []}
            for rep in range(args.reps):
                order = [("fjord", t.fjord_port), ("redis", t.redis_ports[0])]
                if rep % 2:
                    order.reverse()
                for name, port in order:
                    runs[name].append(bench(port, pipeline, args.n))
                    print(f"  -P {pipeline} rep {rep + 1} {name} done", file=sys.stderr, flush=True)
            for test in ("SET", "GET"):
                med = {name: tuple(statistics.median(r[test][i] for r in runs[name]) for i in range(3)) for name in runs}
                results.append((f"{test} -P {pipeline}", med["fjord"], med["redis"]))
        if args.mget_seconds <= 0:
            return print_results(args, results)
        plain = redis.Redis(port=t.fjord_standalone)
        rc = RedisCluster(host="127.0.0.1", port=t.redis_ports[0])
        mget = {"fjord": [], "redis": []}
        for rep in range(args.reps):
            order = [("fjord", plain.mget), ("redis", rc.mget_nonatomic)]
            if rep % 2:
                order.reverse()
            for name, call in order:
                mget[name].append(mget_run(call, args.mget_seconds / args.reps))
                print(f"  MGET rep {rep + 1} {name} done", file=sys.stderr, flush=True)
        med = {name: tuple(statistics.median(r[i] for r in mget[name]) for i in range(3)) for name in mget}
        results.append(("MGET 100 keys (redis-py)", med["fjord"], med["redis"]))
    finally:
        t.stop()
    print_results(args, results)


def print_results(args, results):
    print(f"\nredis-benchmark --cluster -c 50 -d 100 -r 100000 -n {args.n}, median of {args.reps}; fjord proxy + 3 shards "
          f"(everysec) vs Redis Cluster 3 masters (appendonly yes, everysec). MGET: redis-py Redis.mget on fjord's "
          f"standalone listener vs RedisCluster.mget_nonatomic, one client, sequential.\n")
    print("| test | fjord ops/s | fjord p50/p99 ms | Redis Cluster ops/s | Redis Cluster p50/p99 ms | fjord/Redis Cluster |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for test, f, r in results:
        print(f"| {test} | {f[0]:,.0f} | {f[1]:.3f}/{f[2]:.3f} | {r[0]:,.0f} | {r[1]:.3f}/{r[2]:.3f} | {f[0] / r[0]:.2f} |")


if __name__ == "__main__":
    main()
