#!/usr/bin/env bash
# Builds in release and runs the metrics on/off A/B benchmark (with Redis Cluster as reference).
# Arguments are passed on (e.g. -n 200000 --reps 5).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-benchmark >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null; }
bash scripts/build.sh
python3 tests/bench/metrics_ab.py "$@"
