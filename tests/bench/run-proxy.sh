#!/usr/bin/env bash
# Builds in release and runs the proxy benchmark against a real Redis Cluster (3 masters).
# Arguments are passed on (e.g. -n 100000 --reps 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-benchmark >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools python3-venv >/dev/null; }
cargo build --release -p fjord-shard -p fjord-proxy
source tests/venv.sh
venv redispy
tests/.venv-redispy/bin/python tests/bench/proxy_vs_cluster.py "$@"
