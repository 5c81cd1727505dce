#!/usr/bin/env bash
# Builds in release and runs the shard benchmark against redis-server. Arguments are passed on
# (e.g. --modes everysec -n 100000).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-benchmark >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null; }
bash scripts/build.sh
python3 tests/bench/shard_vs_redis.py "$@"
