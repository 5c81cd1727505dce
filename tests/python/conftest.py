"""Starts a fjord cluster shaped like the default (three shards with a replica each, a proxy
with three cluster listeners, each with a replica listener, and a standalone listener) on
free ports, from the release binaries."""

import os
import pathlib
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("FJORD_BIN_DIR", ROOT / "target" / "release"))


def _read_until(proc, done):
    """Reads the child's stdout lines until `done(line)`; returns them."""
    lines = []
    for raw in proc.stdout:
        line = raw.decode().strip()
        lines.append(line)
        if done(line):
            return lines
    raise RuntimeError(f"process exited before it was ready; it printed {lines}")


class Cluster:
    def __init__(self, tmp):
        self.procs = []
        shard_addrs = [self._shard(tmp, f"s{i}") for i in range(3)]
        replica_addrs = [self._shard(tmp, f"s{i}-replica", ["--replica-of", a])
                         for i, a in enumerate(shard_addrs)]
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        config = os.path.join(tmp, "cluster.yaml")
        with open(config, "w") as f:
            f.write("version: 1\nproxies:\n")
            f.write("  - { listen: 127.0.0.1:0, replica: { listen: 127.0.0.1:0 } }\n" * 3)
            f.write("standalone: 127.0.0.1:0\nadmin: 127.0.0.1:0\nshards:\n")
            for i, (addr, replica, (a, b)) in enumerate(zip(shard_addrs, replica_addrs, ranges)):
                f.write(f"  - {{ id: s{i + 1}, addr: \"{addr}\", slots: [{a}-{b}],"
                        f" replicas: [{{ addr: \"{replica}\" }}] }}\n")
        proxy = subprocess.Popen([BIN / "fjord-proxy", "--config", config],
                                 stdout=subprocess.PIPE, env={**os.environ, "RUST_LOG": "warn"})
        self.procs.append(proxy)
        lines = _read_until(proxy, lambda l: l == "fjord-proxy ready")
        self.nodes = [l.rsplit(" ", 1)[1] for l in lines if l.startswith("fjord-proxy listening on cluster ")]
        self.replica_nodes = [l.split(" ")[4] for l in lines
                              if l.startswith("fjord-proxy listening on replica ")]
        self.standalone = next(l.rsplit(" ", 1)[1] for l in lines
                               if l.startswith("fjord-proxy listening on standalone "))
        self.admin = next(l.rsplit(" ", 1)[1] for l in lines
                          if l.startswith("fjord-proxy listening on admin "))
        self.host, port = self.nodes[0].rsplit(":", 1)
        self.port = int(port)

    def _shard(self, tmp, name, extra=()):
        p = subprocess.Popen(
            [BIN / "fjord-shard", "--listen", "127.0.0.1:0", "--data-dir",
             os.path.join(tmp, name), "--fsync", "everysec", "--io-threads", "1", *extra],
            stdout=subprocess.PIPE, env={**os.environ, "RUST_LOG": "warn"})
        self.procs.append(p)
        line = _read_until(p, lambda l: l.startswith("fjord-shard listening on "))[-1]
        return line.rsplit(" ", 1)[1]

    def replica_reads_served(self):
        """fjord_proxy_replica_reads_total{outcome="served"} from the proxy's metrics."""
        import urllib.request
        with urllib.request.urlopen(f"http://{self.admin}/metrics") as r:
            for line in r.read().decode().splitlines():
                if line.startswith("fjord_proxy_replica_reads_total") and 'outcome="served"' in line:
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster():
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(tmp)
        try:
            yield c
        finally:
            c.stop()
