#!/usr/bin/env python3
"""Side-by-side benchmark: fjord (proxy + 3 shards, fsync everysec), a real Redis Cluster of 3
masters without replicas (appendonly yes, appendfsync everysec), and twemproxy (Debian
`nutcracker`) in front of 3 redis-servers with the same AOF settings, all started on free
loopback ports and stopped at the end (also on Ctrl-C or failure).

1. GET/SET: `redis-benchmark -c 50 -d 100 -r 100000 -n N -t set,get -P {1,16}` (`--cluster`
   for fjord and Redis Cluster).
2. The MGET/MSET matrix: `fjord-load` for keys per operation x concurrency, 90% MGET / 10%
   MSET, every reply checked: fjord in proxy mode (one MGET through the standalone listener),
   Redis Cluster in cluster mode (split per slot, grouped per node, as its clients must),
   twemproxy in proxy mode (it splits per server itself).

Targets alternate in every repetition; medians of --reps. Results go to OUT/results.json, then
`fjord-bench-report` writes OUT/report.md (tables with ratios) and SVG plots of throughput and
p99 against keys per operation. Run it with tests/bench/run-compare.sh.

`--large KEYS` runs the large-dataset measurement instead, for fjord and Redis Cluster: load
KEYS keys (far more than the shards' block caches), say whether the data fits the page cache,
MGET of 1 and 100 keys on uniform and zipfian keys, RSS of every process, bytes on disk per key,
and restart time (kill -9 of one shard/node to the first correct GET of one of its keys).
"""
import argparse, json, os, random, signal, socket, statistics, subprocess, sys, tempfile, time

from benchlib import (BIN, ROOT, cluster_benchmark, crc16, dir_bytes, free_port, redis_benchmark,
                      rss_bytes, start_fjord, start_redis_cluster, stop_all, wait_port)

TARGETS = ("fjord", "redis_cluster", "twemproxy")


def start_twemproxy(folder, procs):
    """nutcracker (ketama over fnv1a_64) in front of 3 redis-servers with AOF everysec."""
    servers = []
    for i in range(3):
        port = free_port()
        d = os.path.join(folder, f"t{i}")
        os.makedirs(d)
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port)
        servers.append(port)
    port = free_port()
    conf = os.path.join(folder, "nutcracker.yml")
    with open(conf, "w") as f:
        f.write(f"fjord:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n"
                f"  redis: true\n  auto_eject_hosts: false\n  timeout: 5000\n  preconnect: true\n  servers:\n")
        for i, p in enumerate(servers):
            f.write(f"    - 127.0.0.1:{p}:1 r{i}\n")
    procs.append(subprocess.Popen(
        ["nutcracker", "-c", conf, "-s", str(free_port()), "-a", "127.0.0.1", "-o", os.path.join(folder, "nutcracker.log"),
         "-p", os.path.join(folder, "nutcracker.pid")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_port(port)
    return port


def load(target, mode, keys, connections, inflight, seconds, keyspace, *extra, read_ratio=0.9):
    """One fjord-load run; its JSON report."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([os.path.join(BIN, "fjord-load"), "--target", target, "--mode", mode, "--keys", str(keys),
                        "--connections", str(connections), "--inflight", str(inflight), "--duration", str(seconds),
                        "--warmup", "1", "--keyspace", str(keyspace), "--read-ratio", str(read_ratio),
                        "--json", out.name, *extra], check=True, stdout=subprocess.DEVNULL)
        return json.load(open(out.name))


def get(addr, key):
    """GET over a fresh connection: the value, None for nil; raises on an error reply."""
    host, port = addr.rsplit(":", 1)
    k = key.encode()
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
        data = b""
        while not complete_reply(data):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
    if data.startswith(b"-"):
        raise RuntimeError(data.split(b"\r\n")[0].decode())
    if data.startswith(b"$-1"):
        return None
    return data[data.index(b"\r\n") + 2:-2]


def complete_reply(data):
    """Whether `data` holds a whole RESP2 reply to GET."""
    if b"\r\n" not in data:
        return False
    head = data[:data.index(b"\r\n")]
    if head[:1] != b"$" or head == b"$-1":
        return True
    return len(data) >= len(head) + 2 + int(head[1:]) + 2


def restart_time(procs, victim, binary, addrs, key):
    """kill -9 `victim`, start it again with the same arguments, and time until each of
    `addrs` (in order) answers a correct GET of `key` (its value names the key)."""
    started = time.perf_counter()
    victim["proc"].kill()
    victim["proc"].wait()
    victim["proc"] = subprocess.Popen([binary, *victim["args"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(victim["proc"])
    times = []
    for addr in addrs:
        deadline = time.time() + 600
        while True:
            try:
                value = get(addr, key)
                if value is not None and value.startswith(key.encode() + b"#"):
                    break
            except (OSError, RuntimeError):
                pass
            if time.time() > deadline:
                raise RuntimeError(f"{addr} never answered GET {key} correctly")
            time.sleep(0.005)
        times.append(time.perf_counter() - started)
    return times


def key_in(slots, keyspace, rng):
    """A random fjord-load key whose slot is in `slots` (a range)."""
    while True:
        key = f"key:{rng.randrange(keyspace):012d}"
        if crc16(key.encode()) % 16384 in slots:
            return key


def large_run(args, folder, procs):
    """The large-dataset measurement (see the module's doc)."""
    n, rng = args.large, random.Random(7)
    shards, nodes = [], []
    fjord_start = len(procs)
    _, fjord_standalone = start_fjord(os.path.join(folder, "fjord"), procs, shards=shards)
    proxy = procs[fjord_start + 3]
    redis_ports = start_redis_cluster(folder, procs, nodes=nodes)
    targets = {"fjord": (f"127.0.0.1:{fjord_standalone}", "proxy"),
               "redis_cluster": (f"127.0.0.1:{redis_ports[0]}", "cluster")}
    out = {"keys": n, "value_size": 100, "load": {}, "reads": [], "rss_bytes": {}, "disk_bytes": {},
           "restart_seconds": {}}
    for t, (addr, mode) in targets.items():
        r = load(addr, mode, 100, 8, 4, 0, n, "--load-only", "--value-size", "100", read_ratio=0.0)
        out["load"][t] = r["keys_per_sec"]
        print(f"  large: loaded {n} keys into {t} at {r['keys_per_sec']:,.0f} keys/s", file=sys.stderr, flush=True)
    time.sleep(2)  # everysec: the last second reaches the disk
    with open("/proc/meminfo") as f:
        mem = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f}
    out["memory_total_bytes"], out["memory_available_bytes"] = mem["MemTotal"], mem["MemAvailable"]
    out["disk_bytes"] = {"fjord": sum(dir_bytes(s["dir"]) for s in shards),
                         "redis_cluster": sum(dir_bytes(x["dir"]) for x in nodes)}
    out["block_cache_bytes"] = 3 * 64 * 1024 * 1024
    for dist in ("uniform", "zipfian"):
        for keys in (1, 100):
            runs = {t: [] for t in targets}
            for rep in range(args.reps):
                for t in list(targets)[rep % 2:] + list(targets)[:rep % 2]:
                    addr, mode = targets[t]
                    runs[t].append(load(addr, mode, keys, 8, 4, args.seconds, n, "--assume-loaded",
                                        "--distribution", dist, read_ratio=1.0))
                    print(f"  large: {dist} {keys} keys rep {rep + 1} {t} done", file=sys.stderr, flush=True)
            row = {"distribution": dist, "keys": keys}
            for t in targets:
                row[t] = {"ops_per_sec": median_of(runs[t], lambda x: x["ops_per_sec"]),
                          "p99_us": median_of(runs[t], lambda x: x["latency_us"]["p99"]),
                          "errors": sum(x["errors"] + x["violations"] for x in runs[t])}
            out["reads"].append(row)
    out["rss_bytes"] = {"fjord proxy": rss_bytes(proxy.pid),
                        **{f"fjord shard {i + 1}": rss_bytes(s["proc"].pid) for i, s in enumerate(shards)},
                        **{f"redis node {i + 1}": rss_bytes(x["proc"].pid) for i, x in enumerate(nodes)}}
    # fjord's shard 1 owns slots 0-5460 (start_fjord); Redis Cluster's first node too (--cluster create).
    key = key_in(range(0, 5461), n, rng)
    direct, via_proxy = restart_time(procs, shards[0], os.path.join(BIN, "fjord-shard"),
                                     [shards[0]["addr"], targets["fjord"][0]], key)
    out["restart_seconds"]["fjord shard (direct GET)"] = direct
    out["restart_seconds"]["fjord shard (GET through the proxy)"] = via_proxy
    (redis_time,) = restart_time(procs, nodes[0], "redis-server", [nodes[0]["addr"]], key)
    out["restart_seconds"]["redis node (AOF load)"] = redis_time
    return out


def median_of(runs, pick):
    return statistics.median(pick(r) for r in runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=500000, help="redis-benchmark requests per run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--keys", default="1,10,100,1000", help="keys per MGET/MSET")
    ap.add_argument("--concurrency", default="1x1,8x4", help="connections x in-flight, comma-separated")
    ap.add_argument("--seconds", type=float, default=5, help="fjord-load measuring time per run")
    ap.add_argument("--keyspace", type=int, default=100000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", time.strftime("%Y%m%d-%H%M%S")))
    ap.add_argument("--large", type=int, default=0, metavar="KEYS",
                    help="run the large-dataset measurement with this many keys instead of the matrix")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="fjord-compare-")
    procs = []
    # Ctrl-C and SIGTERM end the run through the finally below, which stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    results = {"command": " ".join(sys.argv), "args": vars(args), "redis_benchmark": [], "load": []}
    try:
        if args.large:
            results["large"] = large_run(args, folder, procs)
        else:
            matrix(args, folder, procs, results)
    finally:
        stop_all(procs, folder)
    write_report(args, results)


def matrix(args, folder, procs, results):
    """GET/SET with redis-benchmark and the fjord-load matrix, on all three targets."""
    fjord_cluster, fjord_standalone = start_fjord(os.path.join(folder, "fjord"), procs)
    redis_ports = start_redis_cluster(folder, procs)
    twem = start_twemproxy(folder, procs)
    bench_args = {
        "fjord": lambda p, n: cluster_benchmark(fjord_cluster, p, n),
        "redis_cluster": lambda p, n: cluster_benchmark(redis_ports[0], p, n),
        "twemproxy": lambda p, n: redis_benchmark(["-h", "127.0.0.1", "-p", str(twem), "-c", "50", "-d", "100",
                                                   "-r", "100000", "-n", str(n), "-t", "set,get", "-P", str(p)]),
    }
    for pipeline in [int(p) for p in args.pipelines.split(",")]:
        runs = {t: [] for t in TARGETS}
        for rep in range(args.reps):
            for t in TARGETS[rep % 3:] + TARGETS[:rep % 3]:
                runs[t].append(bench_args[t](pipeline, args.n))
                print(f"  redis-benchmark -P {pipeline} rep {rep + 1} {t} done", file=sys.stderr, flush=True)
        for test in ("SET", "GET"):
            row = {"test": f"{test} -P {pipeline}"}
            for t in TARGETS:
                row[t] = [median_of(runs[t], lambda r, i=i: r[test][i]) for i in range(3)]
            results["redis_benchmark"].append(row)

    load_targets = {
        "fjord": (f"127.0.0.1:{fjord_standalone}", "proxy"),
        "redis_cluster": (f"127.0.0.1:{redis_ports[0]}", "cluster"),
        "twemproxy": (f"127.0.0.1:{twem}", "proxy"),
    }
    for conc in args.concurrency.split(","):
        connections, inflight = (int(x) for x in conc.split("x"))
        for keys in [int(k) for k in args.keys.split(",")]:
            runs = {t: [] for t in TARGETS}
            for rep in range(args.reps):
                for t in TARGETS[rep % 3:] + TARGETS[:rep % 3]:
                    addr, mode = load_targets[t]
                    runs[t].append(load(addr, mode, keys, connections, inflight, args.seconds, args.keyspace))
                    print(f"  fjord-load {keys} keys {conc} rep {rep + 1} {t} done", file=sys.stderr, flush=True)
            row = {"keys": keys, "connections": connections, "inflight": inflight}
            for t in TARGETS:
                r = runs[t]
                row[t] = {
                    "mode": load_targets[t][1],
                    "ops_per_sec": median_of(r, lambda x: x["ops_per_sec"]),
                    "keys_per_sec": median_of(r, lambda x: x["keys_per_sec"]),
                    "p50_us": median_of(r, lambda x: x["latency_us"]["p50"]),
                    "p99_us": median_of(r, lambda x: x["latency_us"]["p99"]),
                    "mget_p99_us": median_of(r, lambda x: x["reads"]["p99"]),
                    "mset_p99_us": median_of(r, lambda x: x["writes"]["p99"]),
                    "errors": sum(x["errors"] for x in r),
                    "violations": sum(x["violations"] for x in r),
                }
            results["load"].append(row)


def write_report(args, results):
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    subprocess.run([os.path.join(BIN, "fjord-bench-report"), path, args.out], check=True)
    print(open(os.path.join(args.out, "report.md")).read())


if __name__ == "__main__":
    main()
