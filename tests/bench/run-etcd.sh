#!/usr/bin/env bash
# The etcd topology benchmark (tests/bench/etcd_topology.py): a real 3-member etcd, one shard and
# 10 proxies following it. Installs etcd-server if missing and builds in release. Arguments are
# passed on, e.g.  bash tests/bench/run-etcd.sh --proxies 10 --changes 20 --shards 1000
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v etcd >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
bash scripts/build.sh
python3 tests/bench/etcd_topology.py "$@"
