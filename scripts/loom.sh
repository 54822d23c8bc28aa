#!/usr/bin/env bash
# Model-checks the lock-free protocols with loom (tests/loom.rs, and the
# models next to the code: the segment pool's wait/notify, the mailbox).
#
#   scripts/loom.sh              full models (preemption bound 3)
#   LOOM_MAX_PREEMPTIONS=2 scripts/loom.sh   the reduced models CI runs
#
# Built in its own target directory: `--cfg loom` rebuilds every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
exec cargo test --profile loom --lib --test loom "$@"
