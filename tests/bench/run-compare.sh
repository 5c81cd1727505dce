#!/usr/bin/env bash
# The side-by-side benchmark: fjord vs Redis Cluster vs twemproxy (tests/bench/compare.py).
# Builds in release, installs redis-server, redis-tools and nutcracker if missing, and writes
# bench-results/<time>/{results.json,report.md,*.svg}. Arguments are passed on, e.g.
#   bash tests/bench/run-compare.sh -n 500000 --reps 3 --keys 1,10,100,1000 --concurrency 1x1,8x4
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
command -v redis-benchmark >/dev/null || missing+=(redis-server redis-tools)
command -v nutcracker >/dev/null || missing+=(nutcracker)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash scripts/build.sh
python3 tests/bench/compare.py "$@"
