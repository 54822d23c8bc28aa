#!/usr/bin/env bash
# Model-checks the lock-free protocols with loom: every model is in
# tests/loom.rs, so only the library is built with `cfg(loom)`, not its
# unit tests as well.
#
#   scripts/loom.sh              full models (preemption bound 3)
#   LOOM_MAX_PREEMPTIONS=2 scripts/loom.sh   the reduced models CI runs
#
# The `loom` feature sets `cfg(loom)` on this crate only (build.rs), so the
# dependencies are the ones `cargo test` already built.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --features loom --test loom "$@"
