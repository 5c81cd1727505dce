#!/usr/bin/env python3
"""Benchmark: big collections, fjord (proxy + 3 shards, fsync everysec) against a real Redis
Cluster of 3 masters (appendonly yes, appendfsync everysec), in one run.

For each type asked (`--types zset,hash,list`), one key of `--members` members (1M by default;
`--members 5000000` is the issue's 5M run) is loaded on both sides, through the cluster
clients, 1000 members per command. Then, per type:
1. redis-benchmark -c 50 -P {1,16} of commands on the big key: ZADD of a new member, ZSCORE,
   ZRANGE of the 10 lowest, ZRANGEBYSCORE from a random score with LIMIT 0 10; HSET of a new
   field, HGET; RPUSH, LINDEX of the middle element, LRANGE of 100; plus HGETALL of a separate
   100-field hash. fjord is driven through its standalone listener (it routes any key), Redis
   through the master that owns the key.
2. Memory per member: Redis's `MEMORY USAGE key SAMPLES 0` and the growth of its RSS, against
   the growth of the owning fjord shard's data directory on disk (journal included; it is
   printed again once the memtable had time to flush), and that shard's whole RSS, which its
   configured caches bound rather than the collection's size.
3. DEL of the big key: how long it takes on each, and fjord's disk use over the next seconds
   while the background sweep removes the members: the whole data directory, and from the
   shard's metrics its member tables, oplog tables and journals.

Run it with tests/bench/run-big.sh, which builds in release and provides redis-py.
"""
import argparse, os, subprocess, sys, tempfile, time

from benchlib import RANGES, crc16, dir_bytes, redis_benchmark, rss_bytes, shard_metrics, start_fjord, start_redis_cluster, stop_all

import redis
from redis.cluster import RedisCluster

BATCH = 1000

# Per type: how a batch of members i..j is written, and the benchmarked commands (label,
# command on `{key}` (`{middle}`: half the members), -r: the members loaded when None);
# LINDEX takes no __rand_int__: its leading zeros are not an integer to Redis.
# redis-benchmark replaces __rand_int__ with a 12-digit number below -r.
TYPES = {
    "zset": {
        "fill": lambda p, key, i, j: p.zadd(key, {f"m:{k:012d}": k for k in range(i, j)}),
        "commands": [
            ("ZADD new member", "ZADD {key} __rand_int__ new:__rand_int__", 10**9),
            ("ZSCORE", "ZSCORE {key} m:__rand_int__", None),
            ("ZRANGE 0 9", "ZRANGE {key} 0 9", None),
            ("ZRANGEBYSCORE LIMIT 0 10", "ZRANGEBYSCORE {key} __rand_int__ +inf LIMIT 0 10", None),
        ],
    },
    "hash": {
        "fill": lambda p, key, i, j: p.hset(key, mapping={f"f:{k:012d}": f"v{k}" for k in range(i, j)}),
        "commands": [
            ("HSET new field", "HSET {key} new:__rand_int__ v", 10**9),
            ("HGET", "HGET {key} f:__rand_int__", None),
        ],
    },
    "list": {
        "fill": lambda p, key, i, j: p.rpush(key, *[f"e{k}" for k in range(i, j)]),
        "commands": [
            ("RPUSH", "RPUSH {key} x", None),
            ("LINDEX middle", "LINDEX {key} {middle}", None),
            ("LRANGE 0 99", "LRANGE {key} 0 99", None),
        ],
    },
}


class Sides:
    """Both systems, with the processes that hold a given key."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fjord-big-")
        self.procs, self.shards, self.nodes = [], [], []
        try:
            cluster_port, self.fjord_standalone = start_fjord(
                os.path.join(self.dir, "fjord"), self.procs, shards=self.shards)
            self.fjord = RedisCluster(host="127.0.0.1", port=cluster_port)
            self.redis_ports = start_redis_cluster(self.dir, self.procs, nodes=self.nodes)
            self.redis = RedisCluster(host="127.0.0.1", port=self.redis_ports[0])
        except BaseException:
            self.stop()
            raise

    def fjord_shard(self, key):
        """The fjord shard that holds `key`."""
        slot = crc16(key.encode()) % 16384
        return next(shard for shard, (_, last) in zip(self.shards, RANGES) if slot <= last)

    def redis_node(self, key):
        """(port, pid) of the Redis master that owns `key`."""
        node = self.redis.get_node_from_key(key)
        proc = next(n["proc"] for n in self.nodes if n["addr"] == f"127.0.0.1:{node.port}")
        return node.port, proc.pid

    def stop(self):
        stop_all(self.procs, self.dir)


def fill(client, key, members, fill_batch, label):
    """Loads `members` members into `key`, 10 commands per pipeline round trip; members/s."""
    started = time.time()
    step = max(members // 10, BATCH)
    for i in range(0, members, BATCH * 10):
        p = client.pipeline(transaction=False)
        for j in range(i, min(i + BATCH * 10, members), BATCH):
            fill_batch(p, key, j, min(j + BATCH, members))
        p.execute()
        if (i + BATCH * 10) % step < BATCH * 10:
            print(f"  {label}: {min(i + BATCH * 10, members):,} of {members:,} loaded", file=sys.stderr, flush=True)
    return members / (time.time() - started)


def bench(port, command, keyspace, pipeline, n):
    """redis-benchmark of one command against one server; (ops/s, p50 ms, p99 ms)."""
    args = ["-h", "127.0.0.1", "-p", str(port), "-c", "50", "-n", str(n), "-r", str(keyspace),
            "-P", str(pipeline), *command.split()]
    return next(iter(redis_benchmark(args).values()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--types", default="zset,hash,list")
    ap.add_argument("-n", type=int, default=100_000, help="requests per redis-benchmark run")
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--settle-seconds", type=float, default=20,
                    help="wait before the second disk reading and while the sweep runs after DEL")
    args = ap.parse_args()
    s = Sides()
    rows, memory, deletes = [], [], []
    try:
        hundred = {f"field:{k}": "x" * 10 for k in range(100)}
        s.fjord.hset("h100", mapping=hundred)
        s.redis.hset("h100", mapping=hundred)
        redis_port_h100, _ = s.redis_node("h100")
        for pipeline in [int(p) for p in args.pipelines.split(",")]:
            f = bench(s.fjord_standalone, "HGETALL h100", 1, pipeline, args.n)
            r = bench(redis_port_h100, "HGETALL h100", 1, pipeline, args.n)
            rows.append((f"HGETALL of 100 fields -P {pipeline}", f, r))
        for kind in args.types.split(","):
            spec, key = TYPES[kind], f"big:{kind}"
            shard = s.fjord_shard(key)
            redis_port, redis_pid = s.redis_node(key)
            before = {"disk": dir_bytes(shard["dir"]),
                      "redis_rss": rss_bytes(redis_pid)}
            load_f = fill(s.fjord, key, args.members, spec["fill"], f"fjord {kind}")
            load_r = fill(s.redis, key, args.members, spec["fill"], f"Redis {kind}")
            rows.append((f"{kind}: load {args.members:,} members (members/s, 1000 per command)",
                         (load_f, 0, 0), (load_r, 0, 0)))
            shard_rss = rss_bytes(shard["proc"].pid)
            disk = dir_bytes(shard["dir"]) - before["disk"]
            redis_rss = rss_bytes(redis_pid) - before["redis_rss"]
            usage = redis.Redis(port=redis_port).memory_usage(key, samples=0)
            for pipeline in [int(p) for p in args.pipelines.split(",")]:
                for label, command, keyspace in spec["commands"]:
                    command = command.format(key=key, middle=args.members // 2)
                    keyspace = keyspace or args.members
                    f = bench(s.fjord_standalone, command, keyspace, pipeline, args.n)
                    r = bench(redis_port, command, keyspace, pipeline, args.n)
                    rows.append((f"{kind}: {label} -P {pipeline}", f, r))
                    print(f"  {kind} {label} -P {pipeline} done", file=sys.stderr, flush=True)
            time.sleep(args.settle_seconds)
            disk_later = dir_bytes(shard["dir"]) - before["disk"]
            shard_rss = (shard_rss, rss_bytes(shard["proc"].pid))
            memory.append((kind, args.members, disk, disk_later, shard_rss, usage, redis_rss))
            deletes.append((kind,) + delete(s, key, shard, redis_port, args.settle_seconds))
    finally:
        s.stop()
    print_results(args, rows, memory, deletes)


def delete(s, key, shard, redis_port, seconds):
    """Times DEL of `key` on both; fjord's data directory size every few seconds after it."""
    started = time.perf_counter()
    redis.Redis(port=s.fjord_standalone).delete(key)
    fjord_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    redis.Redis(port=redis_port).delete(key)
    redis_ms = (time.perf_counter() - started) * 1000
    disk = []
    begun = time.time()
    while True:
        figures = shard_metrics(shard["admin"], {"fjord_shard_table_bytes", "fjord_shard_journal_bytes"})
        disk.append((time.time() - begun, dir_bytes(shard["dir"]),
                     figures[("fjord_shard_table_bytes", '{keyspace="members"}')],
                     figures[("fjord_shard_table_bytes", '{keyspace="oplog"}')],
                     figures[("fjord_shard_journal_bytes", "")]))
        if time.time() - begun >= seconds:
            break
        time.sleep(seconds / 5)
    return fjord_ms, redis_ms, disk


def print_results(args, rows, memory, deletes):
    print(f"\nBig collections: one key of {args.members:,} members per type; redis-benchmark -c 50 -n {args.n} "
          f"-P {{{args.pipelines}}} on the big key; fjord proxy + 3 shards (everysec) vs Redis Cluster 3 masters "
          f"(appendonly yes, everysec).\n")
    print("| test | fjord ops/s | fjord p50/p99 ms | Redis Cluster ops/s | Redis Cluster p50/p99 ms | fjord/Redis Cluster |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for test, f, r in rows:
        lat = lambda x: f"{x[1]:.3f}/{x[2]:.3f}" if x[1] else "-"
        print(f"| {test} | {f[0]:,.0f} | {lat(f)} | {r[0]:,.0f} | {lat(r)} | {f[0] / r[0]:.2f} |")
    print("\nMemory and disk (fjord: bytes per member in the owning shard's data directory, right after the "
          f"load and {args.settle_seconds:.0f} s later; the shard's whole RSS after the load and after the "
          "benchmarks, which its caches bound, not the collection: block cache 64 MiB, row cache 64 MiB, member cache 32 MiB, "
          "key filter up to 64 MiB and 16 MiB memtables by default. Redis: bytes per member, MEMORY USAGE "
          "and RSS growth over the load).\n")
    print("| type | members | fjord disk B/member | fjord disk later B/member | fjord shard RSS MiB (load, end) "
          "| Redis MEMORY USAGE B/member | Redis RSS growth B/member |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    mib = lambda b: f"{b / 2**20:.0f}"
    for kind, n, disk, later, (rss_load, rss_end), usage, redis_rss in memory:
        print(f"| {kind} | {n:,} | {disk / n:.1f} | {later / n:.1f} | {mib(rss_load)}, {mib(rss_end)} | "
              f"{usage / n:.1f} | {redis_rss / n:.1f} |")
    print("\nDEL of the big key, and the fjord shard's disk use after it, in MiB: the whole data directory, "
          "then the member tables (which the sweep gives back), the oplog's tables (kept up to "
          "oplog_retention_mb) and fjall's journals (until every memtable they cover is flushed).\n")
    for kind, fjord_ms, redis_ms, disk in deletes:
        trail = "; ".join(f"{t:.0f} s: {mib(d)} (members {mib(m)}, oplog {mib(o)}, journals {mib(j)})"
                          for t, d, m, o, j in disk)
        print(f"- {kind}: DEL took {fjord_ms:.1f} ms on fjord, {redis_ms:.1f} ms on Redis; fjord disk {trail}")


if __name__ == "__main__":
    main()
