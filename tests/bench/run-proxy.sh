#!/usr/bin/env bash
# Builds in release and runs the proxy benchmark against a real Redis Cluster (3 masters).
# Arguments are passed on (e.g. -n 100000 --reps 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/prepare.sh
tests/.venv-redispy/bin/python tests/bench/proxy_vs_cluster.py "$@"
