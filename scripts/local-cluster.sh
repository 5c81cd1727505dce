#!/usr/bin/env bash
# Starts fjord's default local cluster in the foreground: three shards on 127.0.0.1:7101-7103
# with their data under data/ (kept between runs). Ctrl-C stops all of them.
# The proxy (cluster listeners 7000-7002) is not built yet; until it is, talk to a shard:
#   redis-cli -p 7101
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-cli >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-tools >/dev/null
fi
cargo build --release -p fjord-shard

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
  echo "stopped"
}
trap stop INT TERM EXIT

for i in 1 2 3; do
  mkdir -p "data/s$i"
  ./target/release/fjord-shard --listen "127.0.0.1:710$i" --data-dir "data/s$i" \
    --fsync everysec --io-threads 1 &
  pids+=($!)
done
echo "shards up on 127.0.0.1:7101-7103 (data in data/s1..s3); Ctrl-C stops them"
wait
