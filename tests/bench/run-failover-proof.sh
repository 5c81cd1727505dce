#!/usr/bin/env bash
# The long run of the failover proof test (tests/tests/suite/failover.rs, fault_cycles): N fault
# cycles (default 50; about 3 s each at first, 15 s by the 100th, as the data checked grows) in
# each of everysec and always, alternating kill -9 and SIGSTOP of the primaries of two shards,
# two controllers on one file, four writers through the proxy; then as many cycles everysec with
# the topology in a 3-member etcd. After every cycle every acknowledged SET, DEL, INCR and
# cross-slot MSET, and every value a read saw, is checked.
# Prints how long writes took to resume after each fault. Usage:
#   bash tests/bench/run-failover-proof.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/../.."
cycles=${1:-50}
bash scripts/build.sh
FJORD_FAULT_CYCLES=$cycles FJORD_ETCD_FAULT_CYCLES=$cycles \
  cargo test --release --workspace --locked --test suite -- failover::ten_fault_cycles failover::fault_cycles_with \
  --test-threads 1 --nocapture 2>&1 | grep --line-buffered -E "writes resumed|^test |test result|panicked"
