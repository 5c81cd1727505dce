#!/usr/bin/env bash
# Starts fjord's default local cluster in the foreground: three primaries on 127.0.0.1:7101-7103
# and their replicas on 7104-7106 (data under data/, kept between runs), started by the proxy,
# whose cluster listeners 127.0.0.1:7000-7002 and standalone listener 127.0.0.1:6380 open once
# every shard answers and every replica's link is up; then the controller, which fails a dead
# primary over to its replica. Then: redis-cli -c -p 7000. Ctrl-C stops everything.
#
# It runs on data/cluster.yaml, seeded from config/cluster.yaml on the first run: the
# controller rewrites the topology it runs on, never the committed file.
# `fjord-admin --config data/cluster.yaml check` shows the running cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-cli to talk to it; protoc for the build (etcd-client, the etcd topology store).
missing=()
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Builds whatever changed, so the binaries below are never stale.
bash scripts/build.sh

mkdir -p data
if [ ! -f data/cluster.yaml ]; then
  cp config/cluster.yaml data/cluster.yaml
  echo "seeded data/cluster.yaml from config/cluster.yaml"
fi

# Everything below is in this script's process group: Ctrl-C reaches every process.
coproc PROXY { exec ./target/release/fjord-proxy --config data/cluster.yaml --launch-shards "$@"; }
proxy_pid=$PROXY_PID
proxy_out=${PROXY[0]}
while IFS= read -r line <&"$proxy_out"; do
  echo "$line"
  [ "$line" = "fjord-proxy ready" ] && break
done
if ! kill -0 "$proxy_pid" 2>/dev/null; then
  wait "$proxy_pid"
  exit $?
fi
# Started once every shard answers, so that a cluster coming up is never taken for one
# whose primaries died.
./target/release/fjord-admin --config data/cluster.yaml controller --admin 127.0.0.1:9100 &
controller_pid=$!
trap 'kill "$controller_pid" 2>/dev/null || true' EXIT
cat <&"$proxy_out" &
wait "$proxy_pid"
