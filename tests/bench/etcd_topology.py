"""Benchmark: the topology in etcd (issue 16). A real 3-member etcd (Debian's etcd-server, data on
/dev/shm), one fjord-shard and N fjord-proxies following the topology with --store. Prints:
  - how long after a write (`fjord-admin import`) every proxy serves it: the time until the last
    of them shows the new version in GET /topology, over --changes writes;
  - how long each proxy's reload of a --shards-shard topology takes to put it in force, from its
    own fjord_proxy_topology_reload_seconds, --reloads times each: from one shard (every backend
    new), and with one shard's address changed as a failover publishes it; the 1,000 shards are
    one fjord-shard listening on every loopback address, so every connection is up;
  - etcd's gRPC traffic per idle proxy, from etcd's own metrics over --idle-seconds.
No Redis counterpart: Redis Cluster has no external topology store."""
import argparse, json, os, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import BIN, free_port, read_until, shard_metrics, stop_all


def http_get(addr, path):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
        return r.read().decode()


def metric_sum(addr, *names):
    """The sum of every series of `names` on the /metrics of `addr` (a proxy's or etcd's)."""
    return sum(shard_metrics(addr, set(names)).values())


def start_etcd(folder, procs, members=3):
    ports = [(free_port(), free_port(), free_port()) for _ in range(members)]
    cluster = ",".join(f"m{i}=http://127.0.0.1:{p[1]}" for i, p in enumerate(ports))
    for i, (client, peer, metrics) in enumerate(ports):
        log = open(os.path.join(folder, f"etcd{i}.log"), "w")
        procs.append(subprocess.Popen([
            "etcd", "--name", f"m{i}", "--data-dir", os.path.join(folder, f"etcd{i}"),
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--listen-metrics-urls", f"http://127.0.0.1:{metrics}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--heartbeat-interval", "200", "--election-timeout", "2000"],
            stdout=log, stderr=log))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if any("etcd_server_is_leader 1" in http_get(f"127.0.0.1:{m}", "/metrics")
                   for _, _, m in ports):
                return [f"127.0.0.1:{c}" for c, _, _ in ports], [f"127.0.0.1:{m}" for _, _, m in ports]
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"etcd elected no leader; logs in {folder}")


def document(version, shards, port, moved=None):
    """A topology of `shards` shards splitting the slots evenly, each at its own loopback
    address (127.0.x.y) on `port`, where the one real shard listens on every address; shard
    `moved` (an index) at another address, as a failover publishes it."""
    lines = [f"version: {version}", "proxies:", "  - listen: 127.0.0.1:7000", "shards:"]
    per = 16384 // shards
    for i in range(shards):
        first, last = i * per, (16383 if i == shards - 1 else (i + 1) * per - 1)
        addr = f"127.{1 if i == moved else 0}.{i // 250}.{i % 250 + 1}:{port}"
        lines.append(f'  - {{ id: s{i + 1}, addr: "{addr}", slots: [{first}-{last}] }}')
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxies", type=int, default=10)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--shards", type=int, default=1000)
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--idle-seconds", type=int, default=30)
    args = ap.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = tempfile.mkdtemp(prefix="fjord-etcd-bench-", dir=base)
    procs = []
    try:
        endpoints, etcd_metrics = start_etcd(folder, procs)
        url = f"etcd://{','.join(endpoints)}/fjord/bench"
        env = {**os.environ, "RUST_LOG": "warn"}
        # The shard listens on every address (the topology's 1,000 shards are all it, at
        # loopback addresses 127.0.x.y), so every proxy connection succeeds and stays up.
        shard = subprocess.Popen([os.path.join(BIN, "fjord-shard"), "--listen", "0.0.0.0:0",
                                  "--admin", "127.0.0.1:0", "--data-dir", os.path.join(folder, "s1")],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        procs.append(shard)
        shard_port = read_until(shard, lambda l: l.startswith("fjord-shard listening on "))[-1].rsplit(":", 1)[1]

        def store(version, shards, moved=None):
            path = os.path.join(folder, "import.yaml")
            with open(path, "w") as f:
                f.write(document(version, shards, shard_port, moved))
            subprocess.run([os.path.join(BIN, "fjord-admin"), "--store", url, "import", path],
                           check=True, capture_output=True)

        store(1, 1)
        local = os.path.join(folder, "proxy.yaml")
        with open(local, "w") as f:
            # One connection per shard: 10 proxies hold 10,000 connections to the one shard.
            f.write("proxies:\n  - listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nsettings:\n  backend_connections: 1\n")
        admins = []
        for _ in range(args.proxies):
            p = subprocess.Popen([os.path.join(BIN, "fjord-proxy"), "--config", local, "--store", url],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            procs.append(p)
            lines = read_until(p, lambda l: l == "fjord-proxy ready")
            admins.append(next(l for l in lines if l.startswith("fjord-proxy listening on admin ")).rsplit(" ", 1)[1])

        def versions():
            return [json.loads(http_get(a, "/topology"))["version"] for a in admins]

        # 1. A write to every proxy serving it.
        delays = []
        version = 1
        for i in range(args.changes):
            version += 1
            started = time.perf_counter()
            store(version, 1)
            written = time.perf_counter()
            while min(versions()) < version:
                pass
            delays.append((time.perf_counter() - written) * 1000)
            print(f"  change {i + 1}/{args.changes}: all {args.proxies} proxies after "
                  f"{delays[-1]:.1f} ms (import itself {(written - started) * 1000:.0f} ms)", flush=True)
        delays.sort()
        pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]

        # 2. Reloading a big topology, --reloads times: from one shard to --shards (every
        #    backend new), then with one shard's address changed (a failover's publication).
        reload_sum = lambda: [metric_sum(a, "fjord_proxy_topology_reload_seconds_sum") for a in admins]
        reload_count = lambda: [metric_sum(a, "fjord_proxy_topology_reload_seconds_count") for a in admins]

        def timed_store(shards, moved=None):
            nonlocal version
            before, counted = reload_sum(), reload_count()
            version += 1
            store(version, shards, moved)
            while min(versions()) < version or any(n <= c for n, c in zip(reload_count(), counted)):
                time.sleep(0.01)
            return [(b - a) * 1000 for a, b in zip(before, reload_sum())]

        all_new, one_moved = [], []
        for _ in range(args.reloads):
            timed_store(1)
            all_new += timed_store(args.shards)
            one_moved += timed_store(args.shards, moved=1)
        timed_store(1)
        spread = lambda ms: (f"{min(ms):.1f} / {sorted(ms)[len(ms) // 2]:.1f} / "
                             f"{sorted(ms)[min(len(ms) - 1, int(0.9 * len(ms)))]:.1f} / {max(ms):.1f}")

        # 3. etcd's traffic with the proxies idle.
        time.sleep(2)
        names = ["etcd_network_client_grpc_received_bytes_total", "etcd_network_client_grpc_sent_bytes_total"]
        sample = lambda: sum(metric_sum(m, *names) for m in etcd_metrics)
        first = sample()
        time.sleep(args.idle_seconds)
        idle = (sample() - first) / args.idle_seconds / args.proxies

        print()
        print(f"etcd 3 members (heartbeat 200 ms), {args.proxies} proxies following {url}")
        print()
        print("| measure | value |")
        print("| --- | ---: |")
        print(f"| a write to every proxy serving it, p50 / p99 / max over {args.changes} writes (ms) | "
              f"{pick(0.5):.1f} / {pick(0.99):.1f} / {delays[-1]:.1f} |")
        print(f"| reload of a {args.shards}-shard topology, every shard new, to in force, per proxy, "
              f"min / median / p90 / max over {args.reloads} reloads (ms) | {spread(all_new)} |")
        print(f"| reload of a {args.shards}-shard topology, one shard's address changed, to in force, "
              f"per proxy, min / median / p90 / max over {args.reloads} reloads (ms) | {spread(one_moved)} |")
        print(f"| etcd gRPC traffic per idle proxy (bytes/s, both ways) | {idle:.0f} |")
    finally:
        stop_all(procs, folder)


if __name__ == "__main__":
    main()
