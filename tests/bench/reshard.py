#!/usr/bin/env python3
"""Benchmark: moving 1,000 slots with their data under client load, fjord's `fjord-admin
reshard` against `redis-cli --cluster reshard` on a real Redis Cluster (3 masters, appendonly
yes, appendfsync everysec), in one run on one machine.

Each cluster is loaded with --keys keys of --value bytes (`key:<n>`, through redis-cli --pipe:
to each Redis master its own slots' keys, to fjord's standalone listener all of them). Then a
redis-py RedisCluster client (--clients threads) mixes GET and SET on those keys for
--before seconds, during the move, and --after seconds. Printed per system: keys moved and
keys/s and MB/s of the move, the client's ops/s and p50/p99 before and during it, its errors by
kind, its slowest write during the move, and for fjord the longest write pause per batch the
mover measured (freeze to hand-over). Ratios are fjord / Redis.

Run it with tests/bench/run-reshard.sh, which builds in release and provides redis-py.
"""
import argparse, binascii, json, os, random, statistics, subprocess, sys, tempfile, threading, time

from benchlib import BIN, RANGES, start_fjord, start_redis_cluster, stop_all

from redis.cluster import RedisCluster


def slot(key):
    return binascii.crc_hqx(key.encode(), 0) % 16384


def protocol(keys, value):
    """RESP for SET of each key, for redis-cli --pipe."""
    v = value.encode()
    out = bytearray()
    for k in keys:
        kb = k.encode()
        out += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(kb), kb, len(v), v)
    return bytes(out)


def pipe(port, data):
    r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True)
    if r.returncode != 0 or b"errors: 0" not in r.stdout:
        raise RuntimeError(f"loading through {port} failed: {r.stdout[-300:]!r} {r.stderr[-300:]!r}")


class Load(threading.Thread):
    """GET and SET on random loaded keys until stopped; `ops` holds (start, seconds, is_write,
    error kind or None)."""

    def __init__(self, port, keys, value, stop):
        super().__init__(daemon=True)
        self.port, self.keys, self.value, self.stop = port, keys, value, stop
        self.ops = []

    def run(self):
        rc = RedisCluster(host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True)
        rnd = random.Random(self.ident)
        while not self.stop.is_set():
            key = self.keys[rnd.randrange(len(self.keys))]
            write = rnd.random() < 0.5
            t0 = time.monotonic()
            err = None
            try:
                if write:
                    rc.set(key, self.value)
                else:
                    rc.get(key)
            except Exception as e:  # every kind is counted, none retried here
                err = type(e).__name__ + (": " + str(e).split()[0] if str(e) else "")
            self.ops.append((t0, time.monotonic() - t0, write, err))


def window(ops, start, end):
    sel = [o for o in ops if start <= o[0] < end]
    lat = sorted(o[1] for o in sel if o[3] is None)
    errors = {}
    for o in sel:
        if o[3]:
            errors[o[3]] = errors.get(o[3], 0) + 1
    secs = max(end - start, 1e-9)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else float("nan")
    slowest_write = max((o[1] for o in sel if o[2]), default=0.0) * 1e3
    return {"ops": len(sel) / secs, "p50": pct(0.5), "p99": pct(0.99), "errors": errors, "slowest_write_ms": slowest_write}


def measure(name, port, keys, value, move, args):
    """Runs the client load around `move()`; returns the figures."""
    stop = threading.Event()
    loads = [Load(port, keys, value, stop) for _ in range(args.clients)]
    for l in loads:
        l.start()
    time.sleep(args.before)
    t_move = time.monotonic()
    moved = move()
    t_done = time.monotonic()
    time.sleep(args.after)
    stop.set()
    for l in loads:
        l.join()
    ops = [o for l in loads for o in l.ops]
    before = window(ops, t_move - args.before + 0.5, t_move)
    during = window(ops, t_move, t_done)
    seconds = t_done - t_move
    print(f"{name}: moved {moved['keys']} keys in {seconds:.2f} s", file=sys.stderr)
    return {"name": name, "keys": moved["keys"], "seconds": seconds, "keys_s": moved["keys"] / seconds,
            "mb_s": moved["keys"] * (len(value) + 12) / seconds / 1e6, "before": before, "during": during,
            "pause_ms": moved.get("pause_ms")}


def redis_run(folder, procs, keys, value, args):
    ports = start_redis_cluster(folder, procs)
    for port, (a, b) in zip(ports, RANGES):
        pipe(port, protocol([k for k in keys if a <= slot(k) <= b], value))
    ids = {}
    for line in subprocess.run(["redis-cli", "-p", str(ports[0]), "cluster", "nodes"],
                               capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        ids[int(parts[1].split(":")[1].split("@")[0])] = parts[0]
    first = [k for k in keys if slot(k) < args.slots]

    def move():
        subprocess.run(["redis-cli", "--cluster", "reshard", f"127.0.0.1:{ports[0]}",
                        "--cluster-from", ids[ports[0]], "--cluster-to", ids[ports[1]],
                        "--cluster-slots", str(args.slots), "--cluster-yes"],
                       check=True, capture_output=True)
        return {"keys": len(first)}

    return measure("Redis", ports[0], keys, value, move, args)


def fjord_run(folder, procs, keys, value, args):
    port, standalone = start_fjord(folder, procs)
    pipe(standalone, protocol(keys, value))
    config = os.path.join(folder, "cluster.yaml")

    def move():
        cmd = [os.path.join(BIN, "fjord-admin"), "--config", config, "reshard", "--from", "s1", "--to", "s2",
               "--slots", str(args.slots), "--yes", "--json"]
        if args.max_rate is not None:
            cmd += ["--max-rate", str(args.max_rate)]
        r = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"})
        report = json.loads(r.stdout.strip().splitlines()[-1])
        return {"keys": report["keys"], "pause_ms": report["max_pause_ms"]}

    return measure("fjord", port, keys, value, move, args)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value", type=int, default=100)
    ap.add_argument("--slots", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--before", type=float, default=3.0)
    ap.add_argument("--after", type=float, default=1.0)
    ap.add_argument("--max-rate", type=int, default=None, help="fjord-admin reshard --max-rate (its default if not given; 0: no limit)")
    args = ap.parse_args()
    keys = [f"key:{i}" for i in range(args.keys)]
    value = "x" * args.value
    results = []
    for name, run in [("Redis", redis_run), ("fjord", fjord_run)]:
        folder = tempfile.mkdtemp(prefix=f"fjord-bench-reshard-{name}-")
        procs = []
        try:
            results.append(run(folder, procs, keys, value, args))
        finally:
            stop_all(procs, folder)
    redis, fjord = results
    print(f"\n{args.slots} slots of a 3-master cluster holding {args.keys} keys of {args.value} bytes; "
          f"{args.clients} redis-py RedisCluster clients, GET/SET 50/50\n")
    print("| | keys moved | seconds | keys/s | MB/s | client ops/s before | during | p50/p99 ms before | p50/p99 ms during | slowest write ms during | errors during | longest write pause per batch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        b, d = r["before"], r["during"]
        pause = f"{r['pause_ms']:.1f} ms" if r["pause_ms"] is not None else "-"
        print(f"| {r['name']} | {r['keys']:,} | {r['seconds']:.2f} | {r['keys_s']:,.0f} | {r['mb_s']:.1f} | {b['ops']:,.0f} | {d['ops']:,.0f} "
              f"| {b['p50']:.2f}/{b['p99']:.2f} | {d['p50']:.2f}/{d['p99']:.2f} | {d['slowest_write_ms']:.1f} | {d['errors'] or 'none'} | {pause} |")
    print(f"| fjord/Redis | | | {fjord['keys_s'] / redis['keys_s']:.2f}x | | | {fjord['during']['ops'] / max(redis['during']['ops'], 1e-9):.2f}x | | "
          f"p99 {fjord['during']['p99'] / redis['during']['p99']:.2f}x | | | |")
    print(f"\nfjord's p99 during the move / before it: {fjord['during']['p99'] / fjord['before']['p99']:.2f}x "
          f"(Redis: {redis['during']['p99'] / redis['before']['p99']:.2f}x)")


if __name__ == "__main__":
    main()
