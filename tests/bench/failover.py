#!/usr/bin/env python3
"""Benchmark: failover and the cost of acknowledgements, fjord against a real Redis Cluster of
3 masters + 3 replicas (appendonly yes, appendfsync everysec, cluster-node-timeout 5000), in
one run on one machine.

1. Failover as clients see it. Writers (redis-py RedisCluster, --writers per shard, each on
   keys of one shard's slots only, so a stalled shard cannot hold up another's writer) log
   every SET as acknowledged or not, with its start and end. Fault cycles rotate over the
   three shards: --faults of kill -9 of the shard's current primary (fjord's launcher starts
   it again, as README line 1 does; the Redis node is restarted by the script), then --faults
   of SIGSTOP until a write to its slots succeeds again, then SIGCONT. Before each fault the
   cluster is settled (every replica linked, fjord: recorded in sync; Redis: cluster_state ok).
   Per fault: the failover time (from the signal to the end of the first acknowledged write
   to the shard's slots that started after it), and the longest write to the other shards'
   slots meanwhile. At the end every acknowledged key is read back: lost = acknowledged but
   missing or different.
2. `redis-benchmark --cluster -c 50 -d 100 -r 100000 -t set,get -P {1,16}` against fjord 3+3
   with `replication.acks: sync` (replies wait for the in-sync replica), fjord 3+3 `async`,
   fjord 3 shards without replicas, and Redis Cluster 3+3; median of --reps, order alternating.

Clients retry nothing themselves (redis-py's retry count is 0: a failed SET is logged, the
writer sleeps 10 ms and goes on with a new key), but redis-py's own handling stays: after a
CLUSTERDOWN it sleeps 250 ms and reloads the slots (fjord's proxy answers CLUSTERDOWN or
TRYAGAIN for a shard while it fails over), after a connection error it reloads the slots
at once. Everything runs on free loopback ports and is stopped at the end, also on Ctrl-C.
Run it with tests/bench/run-failover.sh, which builds in release and provides redis-py.
"""
import argparse, binascii, os, signal, statistics, subprocess, sys, tempfile, threading, time

from benchlib import BIN, RANGES, cluster_benchmark, start_fjord_replicated, start_redis_cluster, stop_all, wait_port

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

SETTLE_TIMEOUT = 90


def shard_of_slot(slot):
    return next(i for i, (a, b) in enumerate(RANGES) if a <= slot <= b)


def shard_of(key):
    return shard_of_slot(binascii.crc_hqx(key.encode(), 0) % 16384)


def strike(pid, sig):
    """Sends `sig` (SIGKILL or SIGSTOP) and returns time.monotonic() once it has taken effect
    (the process is dead or stopped, per /proc): a request answered in between is not a
    write after the fault."""
    os.kill(pid, sig)
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return time.monotonic()
        if state in ("Z", "X") or (sig == signal.SIGSTOP and state in ("T", "t")):
            return time.monotonic()
        time.sleep(0.0005)


def client(port):
    return RedisCluster(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5,
                        retry=Retry(NoBackoff(), 0), decode_responses=True)


class Writer(threading.Thread):
    """SETs unique keys of one shard's slots (value = key) until stopped; `ops` holds
    (start, end, key, acked, error type) per SET, times from time.monotonic()."""

    def __init__(self, port, shard, n, stop):
        super().__init__(daemon=True)
        self.port, self.shard, self.n, self.stop = port, shard, n, stop
        self.ops = []

    def keys(self):
        seq = 0
        while True:
            seq += 1
            key = f"w{self.shard}.{self.n}:{seq}"
            if shard_of(key) == self.shard:
                yield key

    def run(self):
        c = client(self.port)
        for key in self.keys():
            if self.stop.is_set():
                return
            t0 = time.monotonic()
            try:
                c.set(key, key)
                self.ops.append((t0, time.monotonic(), key, True, None))
            except Exception as e:  # every failure is logged; none ends the writer
                self.ops.append((t0, time.monotonic(), key, False, type(e).__name__))
                time.sleep(0.01)


def info(port, section, timeout=1.0):
    try:
        text = redis.Redis(port=port, socket_timeout=timeout, decode_responses=True).execute_command(
            "INFO", section)
    except Exception:
        return {}
    if isinstance(text, dict):
        return {k: str(v) for k, v in text.items()}
    return dict(l.split(":", 1) for l in text.splitlines() if ":" in l)


class RedisTarget:
    name = "Redis Cluster 3+3"

    def __init__(self, folder, procs):
        self.procs = procs
        self.nodes = []
        ports = start_redis_cluster(folder, procs, self.nodes, replicas=1, node_timeout_ms=5000)
        self.port = ports[0]
        self.down = None

    def node(self, port):
        return next(n for n in self.nodes if n["addr"].endswith(f":{port}"))

    def masters(self):
        """Each range's master port, as a live node's CLUSTER SLOTS says."""
        for n in self.nodes:
            if n is self.down:
                continue
            try:
                slots = redis.Redis(port=int(n["addr"].rsplit(":", 1)[1]), socket_timeout=1).execute_command(
                    "CLUSTER SLOTS")
            except Exception:
                continue
            out = {}
            for entry in slots:
                start, _end, master = entry[0], entry[1], entry[2]
                out[shard_of_slot(start)] = int(master[1])
            if len(out) == 3:
                return out
        raise RuntimeError("no live node answers CLUSTER SLOTS")

    def settled(self):
        masters = self.masters()
        for n in self.nodes:
            port = int(n["addr"].rsplit(":", 1)[1])
            state = subprocess.run(["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True,
                                   timeout=5).stdout
            if b"cluster_state:ok" not in state:
                return False
            repl = info(port, "replication")
            if port in masters.values():
                if repl.get("role") != "master" or repl.get("connected_slaves") != "1":
                    return False
            elif repl.get("role") != "slave" or repl.get("master_link_status") != "up":
                return False
        return True

    def fault(self, shard, kind):
        """Signals the shard's master; returns when (time.monotonic()) it took effect."""
        n = self.node(self.masters()[shard])
        self.down = n
        at = strike(n["proc"].pid, signal.SIGKILL if kind == "kill -9" else signal.SIGSTOP)
        if kind == "kill -9":
            n["proc"].wait()
        return at

    def heal(self, kind):
        n, self.down = self.down, None
        if kind == "kill -9":
            n["proc"] = subprocess.Popen(["redis-server", *n["args"]], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.procs.append(n["proc"])
            wait_port(int(n["addr"].rsplit(":", 1)[1]))
        else:
            os.kill(n["proc"].pid, signal.SIGCONT)


class FjordTarget:
    name = "fjord 3+3"

    def __init__(self, folder, procs, acks="sync"):
        self.port, self.config = start_fjord_replicated(folder, procs, acks=acks)
        self.stopped = None

    def check(self):
        out = subprocess.run([os.path.join(BIN, "fjord-admin"), "--config", self.config, "check"],
                             capture_output=True, text=True)
        return out.returncode == 0, out.stdout

    def primary(self, shard):
        _, out = self.check()
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == [f"s{shard + 1}"] and len(parts) > 3 and parts[3] == "primary":
                return int(parts[2].rsplit(":", 1)[1])
        raise RuntimeError(f"no primary for s{shard + 1}:\n{out}")

    def settled(self):
        ok, out = self.check()
        return ok and "not-recorded-in-sync" not in out

    def fault(self, shard, kind):
        pid = int(info(self.primary(shard), "server")["process_id"])
        if kind == "SIGSTOP":
            self.stopped = pid
        return strike(pid, signal.SIGKILL if kind == "kill -9" else signal.SIGSTOP)

    def heal(self, kind):
        # A killed shard is started again by the proxy's launcher.
        if kind == "SIGSTOP":
            os.kill(self.stopped, signal.SIGCONT)
            self.stopped = None


def wait_settled(target):
    deadline = time.time() + SETTLE_TIMEOUT
    while not target.settled():
        if time.time() > deadline:
            raise RuntimeError(f"{target.name} did not settle within {SETTLE_TIMEOUT} s")
        time.sleep(0.2)


def failover_run(target, faults, writers_per_shard):
    """Runs the fault cycles; returns ({kind: [(seconds, longest other-shard write s)]},
    acked, lost, errors by type)."""
    stop = threading.Event()
    writers = [Writer(target.port, s, n, stop) for s in range(3) for n in range(writers_per_shard)]
    for w in writers:
        w.start()
    results = {}
    try:
        for kind in ("kill -9", "SIGSTOP"):
            results[kind] = []
            for i in range(faults):
                shard = i % 3
                wait_settled(target)
                time.sleep(1.0)
                t_fault = target.fault(shard, kind)
                recovered = None
                deadline = t_fault + 60
                while recovered is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                    done = [op[1] for w in writers if w.shard == shard for op in list(w.ops)
                            if op[3] and op[0] > t_fault]
                    recovered = min(done) if done else None
                target.heal(kind)
                if recovered is None:
                    raise RuntimeError(f"{target.name}: no write to shard {shard + 1} succeeded within 60 s of {kind}")
                others = [op[1] - op[0] for w in writers if w.shard != shard for op in list(w.ops)
                          if op[1] >= t_fault and op[0] <= recovered]
                results[kind].append((recovered - t_fault, max(others, default=0.0)))
                print(f"  {target.name}: {kind} of shard {shard + 1}'s primary: writes resumed after "
                      f"{recovered - t_fault:.2f} s", file=sys.stderr, flush=True)
        wait_settled(target)
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=10)
    acked = [op[2] for w in writers for op in w.ops if op[3]]
    errors = {}
    for w in writers:
        for op in w.ops:
            if not op[3]:
                errors[op[4]] = errors.get(op[4], 0) + 1
    reader = RedisCluster(host="127.0.0.1", port=target.port, decode_responses=True)
    lost = 0
    for i in range(0, len(acked), 1000):
        chunk = acked[i:i + 1000]
        values = reader.mget_nonatomic(chunk)
        lost += sum(1 for k, v in zip(chunk, values) if v != k)
    return results, len(acked), lost, errors


def failover_part(args):
    rows = []
    for make in (lambda d, p: FjordTarget(d, p), lambda d, p: RedisTarget(d, p)):
        folder = tempfile.mkdtemp(prefix="fjord-bench-failover-")
        procs = []
        try:
            target = make(folder, procs)
            wait_settled(target)
            results, acked, lost, errors = failover_run(target, args.faults, args.writers)
            rows.append((target.name, results, acked, lost, errors))
        finally:
            stop_all(procs, folder)
    return rows


THROUGHPUT = [("fjord 3+3 sync", "sync", True), ("fjord 3+3 async", "async", True),
              ("fjord 3, no replicas", "sync", False), ("Redis Cluster 3+3", None, True)]


def throughput_part(args):
    folder = tempfile.mkdtemp(prefix="fjord-bench-acks-")
    procs = []
    try:
        ports = {}
        for name, acks, replicas in THROUGHPUT:
            d = os.path.join(folder, name.split(",")[0].replace(" ", "-").replace("+", "p"))
            if acks is None:
                os.makedirs(d)
                ports[name] = start_redis_cluster(d, procs, replicas=1, node_timeout_ms=5000)[0]
            else:
                ports[name] = start_fjord_replicated(d, procs, acks=acks, replicas=replicas)[0]
        runs = {(name, p): [] for name, *_ in THROUGHPUT for p in (1, 16)}
        for rep in range(args.reps):
            for pipeline in (1, 16):
                order = [t[0] for t in THROUGHPUT]
                if rep % 2:
                    order.reverse()
                for name in order:
                    runs[(name, pipeline)].append(cluster_benchmark(ports[name], pipeline, args.n))
                    print(f"  -P {pipeline} rep {rep + 1} {name} done", file=sys.stderr, flush=True)
        return {k: {t: tuple(statistics.median(r[t][i] for r in v) for i in range(3)) for t in ("SET", "GET")}
                for k, v in runs.items()}
    finally:
        stop_all(procs, folder)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", type=int, default=10, help="faults of each kind per system")
    ap.add_argument("--writers", type=int, default=2, help="writer threads per shard")
    ap.add_argument("-n", type=int, default=200000, help="redis-benchmark requests per run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-failover", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    for name in ("fjord-shard", "fjord-proxy", "fjord-admin"):
        if not os.path.exists(os.path.join(BIN, name)):
            sys.exit("build first: cargo build --release")
    rows = [] if args.skip_failover else failover_part(args)
    tput = None if args.skip_throughput else throughput_part(args)
    print(f"\nOne machine ({os.cpu_count()} cores); fjord: proxy + 3 shards + a replica each, fsync everysec, "
          "replication.acks sync, fjord-admin controller (probe 300 ms, 3 misses); Redis 7 Cluster 3+3, appendonly "
          "yes, appendfsync everysec, cluster-node-timeout 5000.")
    if rows:
        print(f"\nFailover: {args.faults} faults of each kind, rotating over the shards; {args.writers} redis-py "
              "writers per shard (SET of unique keys). Failover time: from the signal to the first acknowledged "
              "write to the shard's slots; other shards: the longest write to their slots meanwhile.\n")
        print("| system | fault | failover median (min-max) s | other shards' longest write, median (max) ms |")
        print("| --- | --- | ---: | ---: |")
        for name, results, acked, lost, errors in rows:
            for kind, r in results.items():
                t = [x[0] for x in r]
                o = [x[1] * 1000 for x in r]
                print(f"| {name} | {kind} | {statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f}) | "
                      f"{statistics.median(o):.0f} ({max(o):.0f}) |")
        print("\n| system | acknowledged writes | acknowledged but lost | writes refused or failed |")
        print("| --- | ---: | ---: | --- |")
        for name, results, acked, lost, errors in rows:
            errs = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none"
            print(f"| {name} | {acked:,} | {lost} | {errs} |")
    if tput:
        print(f"\nredis-benchmark --cluster -c 50 -d 100 -r 100000 -n {args.n} -t set,get, median of {args.reps}:\n")
        names = [t[0] for t in THROUGHPUT]
        print("| test | " + " | ".join(f"{n} ops/s (p50/p99 ms)" for n in names) +
              " | sync / Redis 3+3 | sync / async | sync / no replicas |")
        print("| --- |" + " ---: |" * (len(names) + 3))
        for pipeline in (1, 16):
            for test in ("SET", "GET"):
                cells = [tput[(n, pipeline)][test] for n in names]
                ratio = lambda a, b: f"{cells[a][0] / cells[b][0]:.2f}"
                print(f"| {test} -P {pipeline} | " + " | ".join(
                    f"{c[0]:,.0f} ({c[1]:.2f}/{c[2]:.2f})" for c in cells) +
                    f" | {ratio(0, 3)} | {ratio(0, 1)} | {ratio(0, 2)} |")


if __name__ == "__main__":
    main()
