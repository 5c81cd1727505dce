#!/usr/bin/env bash
# Moving 1,000 slots of a 3-master cluster holding 1M keys of 100 bytes under redis-py client
# load: fjord-admin reshard against redis-cli --cluster reshard on a real Redis Cluster
# (tests/bench/reshard.py): keys/s and MB/s moved, client ops/s and p50/p99 before and during
# the move, errors by kind, the longest write pause. Builds in release, installs redis-server
# and redis-py (pinned venv) if missing. Arguments are passed on, e.g.
#   bash tests/bench/run-reshard.sh --keys 200000 --clients 2
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/prepare.sh
tests/.venv-redispy/bin/python tests/bench/reshard.py "$@"
