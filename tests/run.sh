#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what it needs, builds everything in
# release once, checks formatting and lints, then runs every test against the real binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage says how long it took, and the end the total: the suite is to stay under about
# 15 minutes on 2 cores.
suite_started=$SECONDS stage_started=$SECONDS stage_name=""
stage() {
  if [ -n "$stage_name" ]; then echo "   ($stage_name: $((SECONDS - stage_started)) s)"; fi
  stage_name=$1 stage_started=$SECONDS
  echo "== $1"
}
trap 'echo "   ($stage_name: $((SECONDS - stage_started)) s; total $((SECONDS - suite_started)) s)"' EXIT

export DEBIAN_FRONTEND=noninteractive
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v strace >/dev/null || missing+=(strace)
command -v node >/dev/null || missing+=(nodejs npm)  # ioredis 6 needs node >= 20
command -v prometheus >/dev/null || missing+=(prometheus)  # the dashboard test runs a real one
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v tclsh >/dev/null || missing+=(tcl)  # Redis's own test suite
command -v dpkg-source >/dev/null || missing+=(dpkg-dev)  # unpacks that suite's source package
command -v protoc >/dev/null || missing+=(protobuf-compiler)  # etcd-client's build needs protoc
command -v etcd >/dev/null || missing+=(etcd-server)  # the etcd topology store's tests run a real one
command -v openssl >/dev/null || missing+=(openssl)  # makes the CA of the etcd TLS test
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  stage "installing ${missing[*]}"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "build (release)"
# Every target, tests included (scripts/build.sh says why), the same build every script runs.
bash scripts/build.sh

stage "clippy"
cargo clippy --release --workspace --all-targets --locked -- -D warnings

stage "ioredis (npm ci in tests/node, pinned by its package-lock.json)"
if [ ! -d tests/node/node_modules/ioredis ] ||
   [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

stage "tests"
# The build above made the test binaries too: nothing is compiled here. No backtraces: a
# failing test's message and where it failed come last, where a shortened log keeps them;
# two backtraces of 30 frames each would push them out.
RUST_BACKTRACE=0 cargo test --release --workspace --locked -- --test-threads 2

# Python clients, each in its own pinned venv inside the repo (ignored by git).
source tests/venv.sh
stage "redis-py (RedisCluster and Redis)"
venv redispy
tests/.venv-redispy/bin/python -m pytest -q -p no:cacheprovider tests/python/redispy
stage "redis-py-cluster 2.1.3"
venv rediscluster
tests/.venv-rediscluster/bin/python -m pytest -q -p no:cacheprovider tests/python/rediscluster

# Last, so its closing `N passed, M failed` is the run's last line.
stage "Redis 7.0.15's own test suite (tests/redis-suite)"
bash tests/redis-suite/run.sh
