#!/usr/bin/env bash
# What replication costs a shard (tests/bench/replication.py): fjord-shard alone, with a
# replica in sync and async, against redis-server alone and with a replica. Builds in
# release and installs redis-server if missing. Arguments are passed on, e.g.
#   bash tests/bench/run-replication.sh --fsync always -n 200000 --reps 3
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-benchmark >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null; }
bash scripts/build.sh
python3 tests/bench/replication.py "$@"
