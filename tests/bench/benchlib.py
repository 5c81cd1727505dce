"""What the benchmark scripts share: free ports, waiting for servers, stopping everything a
run started, and running redis-benchmark with its CSV parsed."""
import csv, io, shutil, signal, socket, subprocess, time


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
    out = subprocess.run(["redis-benchmark", *args, "--csv"], check=True, capture_output=True, text=True).stdout
    # In cluster mode the masters are listed before the CSV.
    out = out[out.index('"test"'):]
    rows = {}
    for row in csv.DictReader(io.StringIO(out)):
        rows[row["test"].split(" ")[0]] = (float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]))
    return rows
