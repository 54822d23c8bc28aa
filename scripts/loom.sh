#!/usr/bin/env bash
# Model-checks the lock-free protocols with loom (tests/loom.rs, and the
# models next to the code: the segment pool's wait/notify, the mailbox).
#
#   scripts/loom.sh              full models (preemption bound 3)
#   LOOM_MAX_PREEMPTIONS=2 scripts/loom.sh   the reduced models CI runs
#
# The `loom` feature sets `cfg(loom)` on this crate only (build.rs), so the
# dependencies are the ones `cargo test` already built.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --features loom --lib --test loom "$@"
