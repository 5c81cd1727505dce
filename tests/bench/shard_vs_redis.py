#!/usr/bin/env python3
"""Benchmark: fjord-shard against redis-server (AOF on, same appendfsync) with redis-benchmark.

Runs `redis-benchmark -c 50 -d 100 -r 100000 -n N -t TESTS -P {1,16} --csv` against
both servers for each fsync mode, alternating targets, median of 3 runs, and prints ops/s,
p50/p99 and the ratio fjord/redis as a Markdown table. Both servers run on free loopback ports
and are stopped at the end, also on Ctrl-C or failure.

Usage: python3 tests/bench/shard_vs_redis.py [--modes always,everysec,no] [-n 500000] [--reps 3]
       [--tests set,get,mset]   (redis-benchmark's names: lpush,rpush,lpop,rpop,lrange_100 for lists)
(build first: cargo build --release; tests/bench/run.sh does both).
"""
import argparse, os, statistics, subprocess, sys, tempfile

from benchlib import free_port, redis_benchmark, stop_all, wait_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARD = os.path.join(ROOT, "target", "release", "fjord-shard")


class Servers:
    def __init__(self, mode):
        self.dir = tempfile.mkdtemp(prefix="fjord-bench-")
        self.procs = []
        shard = subprocess.Popen(
            [SHARD, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "shard"),
             "--fsync", mode, "--io-threads", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "RUST_LOG": "warn"})
        self.procs.append(shard)
        line = shard.stdout.readline().strip()
        self.fjord_port = int(line.rsplit(":", 1)[1])
        self.redis_port = free_port()
        os.makedirs(os.path.join(self.dir, "redis"))
        self.procs.append(subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", mode, "--dir", os.path.join(self.dir, "redis")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.redis_port)

    def stop(self):
        stop_all(self.procs, self.dir)


def bench(port, pipeline, n, tests):
    return redis_benchmark(["-h", "127.0.0.1", "-p", str(port), "-c", "50", "-d", "100", "-r", "100000",
                            "-n", str(n), "-t", tests, "-P", str(pipeline)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="always,everysec,no")
    ap.add_argument("-n", type=int, default=500000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tests", default="set,get,mset")
    args = ap.parse_args()
    if not os.path.exists(SHARD):
        sys.exit("build first: cargo build --release")
    results = []
    for mode in args.modes.split(","):
        servers = Servers(mode)
        try:
            for pipeline in (1, 16):
                runs = {"fjord": [], "redis": []}
                for rep in range(args.reps):
                    # Alternate which target goes first, so drift hurts both alike.
                    order = [("fjord", servers.fjord_port), ("redis", servers.redis_port)]
                    if rep % 2:
                        order.reverse()
                    for name, port in order:
                        runs[name].append(bench(port, pipeline, args.n, args.tests))
                        print(f"  {mode} -P {pipeline} rep {rep + 1} {name} done", file=sys.stderr, flush=True)
                for test in runs["fjord"][0]:
                    med = {}
                    for name in runs:
                        vals = [r[test] for r in runs[name] if test in r]
                        med[name] = tuple(statistics.median(v[i] for v in vals) for i in range(3))
                    results.append((mode, pipeline, test, med["fjord"], med["redis"]))
        finally:
            servers.stop()
    print(f"\nredis-benchmark -c 50 -d 100 -r 100000 -n {args.n}, median of {args.reps}, "
          f"fjord-shard vs redis-server --appendonly yes (same appendfsync)\n")
    print("| fsync | -P | test | fjord ops/s | fjord p50/p99 ms | redis ops/s | redis p50/p99 ms | fjord/redis |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for mode, p, test, f, r in results:
        print(f"| {mode} | {p} | {test} | {f[0]:,.0f} | {f[1]:.3f}/{f[2]:.3f} | {r[0]:,.0f} | {r[1]:.3f}/{r[2]:.3f} | {f[0] / r[0]:.2f} |")


if __name__ == "__main__":
    main()
