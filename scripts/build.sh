#!/usr/bin/env bash
# The one release build every script runs (README line 1, the test suite, the benchmarks):
# the whole workspace, tests included. Building only some packages or only the binaries
# turns off features that the tests' dependencies turn on in shared crates (tokio's among
# them), so two differing builds would each recompile those crates and every binary after
# the other; this one is a no-op when nothing changed, so no script runs a stale binary.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo build --release --workspace --all-targets --locked "$@"
