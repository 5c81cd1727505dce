#!/usr/bin/env bash
# Failover and acknowledgement cost against a real Redis Cluster of 3 masters + 3 replicas
# (tests/bench/failover.py): failover time under kill -9 and SIGSTOP as redis-py writers see
# it, acknowledged writes lost, other shards' longest write; redis-benchmark --cluster SET/GET
# with acks sync, async and without replicas. Builds in release, installs redis-server and
# redis-py (pinned venv) if missing. Arguments are passed on, e.g.
#   bash tests/bench/run-failover.sh --faults 10 -n 200000 --reps 3
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/prepare.sh
tests/.venv-redispy/bin/python tests/bench/failover.py "$@"
