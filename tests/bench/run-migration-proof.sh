#!/usr/bin/env bash
# The long run of the slot-move proof tests: ROUNDS moves back and forth under writers, each
# interrupted by kill -9 of the mover (then `fjord-admin fix`), the target or the source
# (tests/tests/suite/migration.rs), and ROUNDS more through kill -9 of the source's or the
# target's primary with a replica and a controller (tests/tests/suite/failover.rs), on a file and
# with the topology in etcd. Each round
# checks that every acknowledged write is there, that no shard holds a key of another's slot
# and that `fjord-admin check` passes.
#   bash tests/bench/run-migration-proof.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-40}
bash scripts/build.sh
FJORD_MOVE_ROUNDS=$rounds FJORD_ETCD_MOVE_ROUNDS=$rounds cargo test --release --workspace --locked --test suite -- --test-threads 1 --nocapture \
  migration::moves_interrupted failover::slot_moves 2>&1 \
  | grep --line-buffered -E "killed|fixed|writes:|^test |test result|panicked"
