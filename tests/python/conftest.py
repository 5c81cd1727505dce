"""Starts a fjord cluster shaped like the default (three shards, a proxy with three cluster
listeners and a standalone listener) on free ports, from the release binaries."""

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
        shard_addrs = []
        for i in range(3):
            data = os.path.join(tmp, f"s{i}")
            p = subprocess.Popen(
                [BIN / "fjord-shard", "--listen", "127.0.0.1:0", "--data-dir", data,
                 "--fsync", "everysec", "--io-threads", "1"],
                stdout=subprocess.PIPE, env={**os.environ, "RUST_LOG": "warn"})
            self.procs.append(p)
            line = _read_until(p, lambda l: l.startswith("fjord-shard listening on "))[-1]
            shard_addrs.append(line.rsplit(" ", 1)[1])
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        config = os.path.join(tmp, "cluster.yaml")
        with open(config, "w") as f:
            f.write("version: 1\nproxies:\n")
            f.write("  - listen: 127.0.0.1:0\n" * 3)
            f.write("standalone: 127.0.0.1:0\nshards:\n")
            for i, (addr, (a, b)) in enumerate(zip(shard_addrs, ranges)):
                f.write(f"  - {{ id: s{i + 1}, addr: \"{addr}\", slots: [{a}-{b}] }}\n")
        proxy = subprocess.Popen([BIN / "fjord-proxy", "--config", config],
                                 stdout=subprocess.PIPE, env={**os.environ, "RUST_LOG": "warn"})
        self.procs.append(proxy)
        lines = _read_until(proxy, lambda l: l == "fjord-proxy ready")
        self.nodes = [l.rsplit(" ", 1)[1] for l in lines if l.startswith("fjord-proxy listening on cluster ")]
        self.standalone = next(l.rsplit(" ", 1)[1] for l in lines
                               if l.startswith("fjord-proxy listening on standalone "))
        self.host, port = self.nodes[0].rsplit(":", 1)
        self.port = int(port)

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
