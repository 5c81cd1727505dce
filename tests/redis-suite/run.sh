#!/usr/bin/env bash
# Redis 7.0.15's own Tcl test suite against fjord's standalone listener, each unit file in its
# own tclsh against a fresh cluster, judged against tests/redis-suite/expected-failures.txt.
#   bash tests/redis-suite/run.sh                      every file of the suite's list
#   bash tests/redis-suite/run.sh unit/type/string     one file (or several)
#   bash tests/redis-suite/run.sh --redis unit/expire  the same flags against a real redis-server
# Each file's output is kept in target/redis-suite/. The last line is `N passed, M failed`,
# where M counts only what the expectations do not account for.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tests/redis-suite/fetch.sh
# Builds whatever changed, so the binaries it starts are never stale (a no-op after run.sh's
# build).
bash scripts/build.sh -q
exec target/release/fjord-redis-suite "$@"
