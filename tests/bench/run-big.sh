#!/usr/bin/env bash
# Builds in release and runs the big-collections benchmark against a real Redis Cluster (3 masters).
# Arguments are passed on (e.g. --members 5000000 --types zset).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/prepare.sh
tests/.venv-redispy/bin/python tests/bench/big_collections.py "$@"
