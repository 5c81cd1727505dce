#!/usr/bin/env python3
"""Benchmark: fjord (proxy + 3 shards, fsync everysec) against a real Redis Cluster of 3
masters without replicas (appendonly yes, appendfsync everysec).

1. `redis-benchmark --cluster -c 50 -d 100 -r 100000 -n N -t set,get -P {1,16} --csv` against
   both (`--tests` picks others: `--tests hset,lpush,rpush,lpop,rpop,sadd,spop,zadd,zpopmin,
   lrange_100` for the data types), alternating targets, median of --reps runs: ops/s, p50/p99 and the ratio. `--keyspace`
   changes `-r`; `--fresh` starts new, empty targets for every run (a first load of new keys);
   `--shard-args` passes flags to fjord's shards (`"--row-cache-mb 1"`: a store larger than
   its row cache).
2. MGET of 100 random keys across slots with the same client library on both sides: redis-py
   `Redis.mget` on fjord's standalone listener against `RedisCluster.mget_nonatomic` (the
   client splits per slot) on Redis Cluster; one client, sequential calls.

Everything runs on free loopback ports (each Redis Cluster node also needs port+10000) and is
stopped at the end, also on Ctrl-C or failure. Run it with tests/bench/run-proxy.sh, which
builds in release and provides redis-py.
"""
import argparse, os, random, statistics, sys, tempfile, time

from benchlib import cluster_benchmark, start_fjord, start_redis_cluster, stop_all

import redis
from redis.cluster import RedisCluster


class Targets:
    def __init__(self, shard_args=()):
        self.dir = tempfile.mkdtemp(prefix="fjord-bench-")
        self.procs = []
        try:
            self.fjord_port, self.fjord_standalone = start_fjord(
                os.path.join(self.dir, "fjord"), self.procs, shard_args=shard_args)
            self.redis_ports = start_redis_cluster(self.dir, self.procs)
            self.redis_port = self.redis_ports[0]
        except BaseException:
            self.stop()
            raise

    def stop(self):
        stop_all(self.procs, self.dir)


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
    ap.add_argument("--keyspace", type=int, default=100000, help="redis-benchmark -r: keys drawn from")
    ap.add_argument("--fresh", action="store_true",
                    help="new, empty targets for every run (with a large --keyspace: SETs of new keys)")
    ap.add_argument("--shard-args", default="", help="extra flags for fjord's shards")
    ap.add_argument("--tests", default="set,get", help="redis-benchmark -t")
    args = ap.parse_args()
    shard_args = args.shard_args.split()
    t = Targets(shard_args)
    try:
        results = []
        for pipeline in [int(p) for p in args.pipelines.split(",")]:
            runs = {"fjord": [], "redis": []}
            for rep in range(args.reps):
                order = [("fjord", "fjord_port"), ("redis", "redis_port")]
                if rep % 2:
                    order.reverse()
                for name, port in order:
                    if args.fresh:
                        t.stop()
                        t = Targets(shard_args)
                    runs[name].append(cluster_benchmark(getattr(t, port), pipeline, args.n, args.keyspace,
                                                        args.tests))
                    print(f"  -P {pipeline} rep {rep + 1} {name} done", file=sys.stderr, flush=True)
            for test in runs["fjord"][0]:
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
    fresh = ", new empty targets per run" if args.fresh else ""
    fresh += f", shards with {args.shard_args}" if args.shard_args else ""
    print(f"\nredis-benchmark --cluster -c 50 -d 100 -r {args.keyspace} -n {args.n} -t {args.tests}, median of {args.reps}{fresh}; fjord proxy + 3 shards "
          f"(everysec) vs Redis Cluster 3 masters (appendonly yes, everysec). MGET: redis-py Redis.mget on fjord's "
          f"standalone listener vs RedisCluster.mget_nonatomic, one client, sequential.\n")
    print("| test | fjord ops/s | fjord p50/p99 ms | Redis Cluster ops/s | Redis Cluster p50/p99 ms | fjord/Redis Cluster |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for test, f, r in results:
        print(f"| {test} | {f[0]:,.0f} | {f[1]:.3f}/{f[2]:.3f} | {r[0]:,.0f} | {r[1]:.3f}/{r[2]:.3f} | {f[0] / r[0]:.2f} |")


if __name__ == "__main__":
    main()
