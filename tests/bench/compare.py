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
"""
import argparse, json, os, signal, statistics, subprocess, sys, tempfile, time

from benchlib import (BIN, ROOT, cluster_benchmark, free_port, redis_benchmark, start_fjord,
                      start_redis_cluster, stop_all, wait_port)

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


def load(target, mode, keys, connections, inflight, seconds, keyspace):
    """One fjord-load run; its JSON report."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([os.path.join(BIN, "fjord-load"), "--target", target, "--mode", mode, "--keys", str(keys),
                        "--connections", str(connections), "--inflight", str(inflight), "--duration", str(seconds),
                        "--warmup", "1", "--keyspace", str(keyspace), "--read-ratio", "0.9", "--json", out.name],
                       check=True, stdout=subprocess.DEVNULL)
        return json.load(open(out.name))


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
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="fjord-compare-")
    procs = []
    # Ctrl-C and SIGTERM end the run through the finally below, which stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    results = {"command": " ".join(sys.argv), "args": vars(args), "redis_benchmark": [], "load": []}
    try:
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
    finally:
        stop_all(procs, folder)
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    subprocess.run([os.path.join(BIN, "fjord-bench-report"), path, args.out], check=True)
    print(open(os.path.join(args.out, "report.md")).read())


if __name__ == "__main__":
    main()
