#!/usr/bin/env bash
# Starts fjord's default local cluster in the foreground, as config/cluster.yaml describes it:
# three shards on 127.0.0.1:7101-7103 (data under data/, kept between runs) started by the
# proxy, whose cluster listeners 127.0.0.1:7000-7002 and standalone listener 127.0.0.1:6380
# open once the shards answer. Then: redis-cli -c -p 7000. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-cli >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-tools >/dev/null
fi
# Builds whatever changed, so the binaries below are never stale.
cargo build --release -p fjord-shard -p fjord-proxy

exec ./target/release/fjord-proxy --config config/cluster.yaml --launch-shards "$@"
