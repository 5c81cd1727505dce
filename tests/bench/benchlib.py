"""What the benchmark scripts share: free ports, waiting for servers, starting fjord and a real
Redis Cluster, stopping everything a run started, and running redis-benchmark with its CSV
parsed."""
import csv, io, os, shutil, signal, socket, subprocess, time, urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release")
# The slots of the three shards (or masters) every benchmark cluster has.
RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


def free_port(also_bus=False):
    """A free loopback port; with also_bus, port+10000 is free too (Redis Cluster's bus)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not also_bus:
            return port
        if port + 10000 < 65536:
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                pass


def wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def stop_all(procs, folder):
    """SIGTERM to every process still running, SIGKILL after 20 s, then removes `folder`."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(folder, ignore_errors=True)


def redis_benchmark(args):
    """Runs redis-benchmark with `args` (plus --csv); {test: (ops/s, p50 ms, p99 ms)}."""
    out = subprocess.run(["redis-benchmark", "--csv", *args], check=True, capture_output=True, text=True).stdout
    # In cluster mode the masters are listed before the CSV.
    out = out[out.index('"test"'):]
    rows = {}
    for row in csv.DictReader(io.StringIO(out)):
        rows[row["test"].split(" ")[0]] = (float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]))
    return rows


def read_until(proc, done):
    """The process's stdout lines up to and including the first for which `done` holds."""
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if done(lines[-1]):
            return lines
    raise RuntimeError(f"process exited early: {lines}")


def start_fjord(folder, procs, settings=(), shard_args=(), shards=None):
    """fjord-proxy in front of 3 fjord-shards (fsync everysec), all on free ports, data under
    `folder`; every process is appended to `procs`. `settings` are extra lines for the cluster
    file's settings section. Each shard's {"addr", "args", "dir", "proc"} is appended to
    `shards` if given (to restart one), with "admin", the address of its metrics. Returns
    (first cluster listener port, standalone port)."""
    os.makedirs(folder, exist_ok=True)
    env = {**os.environ, "RUST_LOG": "warn"}
    shard_addrs = []
    for i in range(3):
        data = os.path.join(folder, f"s{i}")
        args = ["--data-dir", data, "--fsync", "everysec", "--io-threads", "1", *shard_args]
        p = subprocess.Popen([os.path.join(BIN, "fjord-shard"), "--listen", "127.0.0.1:0",
                              "--admin", "127.0.0.1:0", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        procs.append(p)
        lines = read_until(p, lambda l: l.startswith("fjord-shard listening on "))
        addr = lines[-1].rsplit(" ", 1)[1]
        admin = next(l for l in lines if l.startswith("fjord-shard admin on ")).rsplit(" ", 1)[1]
        shard_addrs.append(addr)
        if shards is not None:
            shards.append({"addr": addr, "admin": admin, "dir": data, "proc": p,
                           "args": ["--listen", addr, "--admin", admin, *args]})
    config = os.path.join(folder, "cluster.yaml")
    with open(config, "w") as f:
        f.write("version: 1\nproxies:\n" + "  - listen: 127.0.0.1:0\n" * 3 + "standalone: 127.0.0.1:0\n")
        if settings:
            f.write("settings:\n" + "".join(f"  {line}\n" for line in settings))
        f.write("shards:\n")
        for i, (addr, (a, b)) in enumerate(zip(shard_addrs, RANGES)):
            f.write(f"  - {{ id: s{i + 1}, addr: \"{addr}\", slots: [{a}-{b}] }}\n")
    proxy = subprocess.Popen([os.path.join(BIN, "fjord-proxy"), "--config", config],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    procs.append(proxy)
    lines = read_until(proxy, lambda l: l == "fjord-proxy ready")
    port = lambda kind: int(next(l for l in lines if f" {kind} " in l).rsplit(":", 1)[1])
    return port("cluster"), port("standalone")


def start_fjord_replicated(folder, procs, acks="sync", replicas=True, fsync="everysec"):
    """The default local cluster's shape on free ports: fjord-proxy --launch-shards with three
    shards, each with a replica (`replicas`), the file's replication.acks = `acks`, and
    `fjord-admin controller` (with replicas). Returns (first cluster listener port, cluster
    file path). The launcher restarts a shard process that dies, as README line 1 does."""
    os.makedirs(folder, exist_ok=True)
    env = {**os.environ, "RUST_LOG": "warn"}
    config = os.path.join(folder, "cluster.yaml")
    with open(config, "w") as f:
        f.write("version: 1\nproxies:\n")
        for _ in range(3):
            f.write("  - listen: 127.0.0.1:0\n" + ("    replica: { listen: 127.0.0.1:0 }\n" if replicas else ""))
        f.write(f"standalone: 127.0.0.1:0\nsettings: {{ local_shard_fsync: {fsync} }}\n")
        f.write(f"replication: {{ acks: {acks} }}\nshards:\n")
        for i, (a, b) in enumerate(RANGES):
            f.write(f"  - id: s{i + 1}\n    addr: 127.0.0.1:{free_port()}\n    slots: [{a}-{b}]\n"
                    f"    data_dir: s{i + 1}\n")
            if replicas:
                f.write(f"    replicas:\n      - addr: 127.0.0.1:{free_port()}\n        data_dir: s{i + 1}-replica\n")
    proxy = subprocess.Popen([os.path.join(BIN, "fjord-proxy"), "--config", config, "--launch-shards"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    procs.append(proxy)
    lines = read_until(proxy, lambda l: l == "fjord-proxy ready")
    port = int(next(l for l in lines if " cluster " in l).rsplit(":", 1)[1])
    if replicas:
        procs.append(subprocess.Popen(
            [os.path.join(BIN, "fjord-admin"), "--config", config, "controller"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(folder, "controller.log"), "w"), env=env))
    return port, config


def start_redis_cluster(folder, procs, nodes=None, replicas=0, node_timeout_ms=15000):
    """A Redis Cluster of 3 masters, each with `replicas` replicas (appendonly yes, appendfsync
    everysec, cluster-node-timeout `node_timeout_ms`) on free ports (each with its bus port
    free too); returns the nodes' ports. Each node's {"addr", "args", "dir", "proc"} is
    appended to `nodes` if given (to restart one)."""
    ports = []
    for i in range(3 * (1 + replicas)):
        port = free_port(also_bus=True)
        d = os.path.join(folder, f"r{i}")
        os.makedirs(d)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", os.path.join(d, "nodes.conf"), "--save", "", "--appendonly", "yes",
                "--appendfsync", "everysec", "--dir", d, "--cluster-node-timeout", str(node_timeout_ms)]
        p = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_port(port)
        ports.append(port)
        if nodes is not None:
            nodes.append({"addr": f"127.0.0.1:{port}", "args": args, "dir": d, "proc": p})
    subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                    "--cluster-replicas", str(replicas), "--cluster-yes"], check=True, capture_output=True)
    deadline = time.time() + 30
    while b"cluster_state:ok" not in subprocess.run(
            ["redis-cli", "-p", str(ports[0]), "cluster", "info"], capture_output=True).stdout:
        if time.time() > deadline:
            raise RuntimeError("Redis Cluster did not become ok")
        time.sleep(0.2)
    return ports


def cluster_benchmark(port, pipeline, n, keyspace=100000, tests="set,get"):
    """redis-benchmark --cluster as the proxy issue specifies it (`-r keyspace`); `tests` in
    redis-benchmark's names (set,get; hset,lpush,…,lrange_100 for the data types)."""
    return redis_benchmark(["--cluster", "-h", "127.0.0.1", "-p", str(port), "-c", "50", "-d", "100",
                            "-r", str(keyspace), "-n", str(n), "-t", tests, "-P", str(pipeline)])


def crc16(data):
    """Redis Cluster's key hash (CRC16/XMODEM); keys here have no hash tags."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def shard_metrics(admin, names):
    """{(name, labels): value} of the samples of a fjord shard's /metrics (or any Prometheus
    endpoint's: a proxy's, etcd's) whose name is in `names`;
    labels as written, e.g. '{keyspace="members"}' ('' for none)."""
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        if name in names:
            out[(name, "{" + labels if labels else "")] = float(value)
    return out


def rss_bytes(pid):
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def dir_bytes(path):
    """Bytes in the files under `path` (apparent size)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total
