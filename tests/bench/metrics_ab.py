#!/usr/bin/env python3
"""A/B benchmark: what recording metrics costs. Two fjord clusters (proxy + 3 shards, fsync
everysec) that differ only in `record_metrics` (proxy setting, shards' --record-metrics), and a
real Redis Cluster (3 masters, appendonly yes, everysec) as the reference, all running at once.

`redis-benchmark --cluster -c 50 -d 100 -r 100000 -n N -t set,get -P {1,16}` against each,
alternating the order every repetition, median of --reps: ops/s, p50/p99, metrics on/off ratio
(the aim: recording costs under 5%) and fjord/Redis Cluster. Run it with
tests/bench/run-metrics-ab.sh, which builds in release first.
"""
import argparse, os, statistics, sys, tempfile

from benchlib import cluster_benchmark, start_fjord, start_redis_cluster, stop_all


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=500000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--pipelines", default="1,16")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="fjord-metrics-ab-")
    procs = []
    try:
        targets = {
            "metrics on": start_fjord(os.path.join(folder, "on"), procs)[0],
            "metrics off": start_fjord(os.path.join(folder, "off"), procs, settings=["record_metrics: false"],
                                       shard_args=["--record-metrics", "false"])[0],
            "Redis Cluster": start_redis_cluster(folder, procs)[0],
        }
        results = []
        for pipeline in [int(p) for p in args.pipelines.split(",")]:
            runs = {name: [] for name in targets}
            for rep in range(args.reps):
                order = list(targets.items())
                # Alternate who goes first, so warm caches and background work even out.
                order = order[rep % len(order):] + order[:rep % len(order)]
                for name, port in order:
                    runs[name].append(cluster_benchmark(port, pipeline, args.n))
                    print(f"  -P {pipeline} rep {rep + 1} {name} done", file=sys.stderr, flush=True)
            for test in ("SET", "GET"):
                med = {name: tuple(statistics.median(r[test][i] for r in runs[name]) for i in range(3))
                       for name in runs}
                results.append((f"{test} -P {pipeline}", med))
    finally:
        stop_all(procs, folder)
    print(f"\nredis-benchmark --cluster -c 50 -d 100 -r 100000 -n {args.n}, median of {args.reps}, "
          f"alternating; fjord proxy + 3 shards (everysec) with and without metrics recording; "
          f"Redis Cluster 3 masters (appendonly yes, everysec) as reference.\n")
    print("| test | metrics on ops/s (p50/p99 ms) | metrics off ops/s (p50/p99 ms) | on/off | "
          "Redis Cluster ops/s (p50/p99 ms) | fjord on/Redis Cluster |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    cell = lambda m: f"{m[0]:,.0f} ({m[1]:.3f}/{m[2]:.3f})"
    for test, med in results:
        on, off, redis = med["metrics on"], med["metrics off"], med["Redis Cluster"]
        print(f"| {test} | {cell(on)} | {cell(off)} | {on[0] / off[0]:.3f} | {cell(redis)} | {on[0] / redis[0]:.2f} |")


if __name__ == "__main__":
    main()
