#!/usr/bin/env bash
# Profiles one run of a profile.
#
#   scripts/profile.sh perf PROFILE [--set ...]       # perf record (cpu-clock) + report by thread
#   scripts/profile.sh callgrind PROFILE [--set ...]  # instruction counts (repeatable on noisy machines)
#
# Task threads are named after their tasks ("source -> map (1/2)"), so
# perf's per-thread view and callgrind's per-thread dumps show each task.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${1:?usage: scripts/profile.sh perf|callgrind PROFILE [--set ...]}
shift
profile=${1:-quickstart}
shift || true
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/taskbench"
mkdir -p results/profile
case "$tool" in
  perf)
    perf record -e cpu-clock -F 4999 -g -o results/profile/perf.data -- \
      "$bin" run "$profile" -r 1 -w 0 --quiet "$@"
    perf report -i results/profile/perf.data --sort comm,symbol --no-children --stdio | head -60
    echo "full report: perf report -i results/profile/perf.data"
    ;;
  callgrind)
    valgrind --tool=callgrind --separate-threads=yes \
      --callgrind-out-file=results/profile/callgrind.out.%p \
      "$bin" run "$profile" -r 1 -w 0 --quiet "$@"
    echo "per-thread counts: callgrind_annotate results/profile/callgrind.out.*"
    ;;
  *)
    echo "unknown tool '$tool': use perf or callgrind" >&2
    exit 2
    ;;
esac
