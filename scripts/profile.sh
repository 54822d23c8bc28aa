#!/usr/bin/env bash
# Profiles one run of a profile.
#
#   scripts/profile.sh perf PROFILE [--set ...]       # perf record (cpu-clock) + report by thread
#   scripts/profile.sh flamegraph PROFILE [--set ...] # perf record + inferno: one flamegraph per task thread
#   scripts/profile.sh callgrind PROFILE [--set ...]  # instruction counts (repeatable on noisy machines)
#
# Task threads are named after their tasks ("source -> map (1/2)"), so
# perf's per-thread view, the per-thread flamegraphs and callgrind's
# per-thread dumps show each task. For where the time went over time
# (busy, idle, back-pressure, parks), use `taskbench run PROFILE --trace FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${1:?usage: scripts/profile.sh perf|flamegraph|callgrind PROFILE [--set ...]}
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
  flamegraph)
    # inferno (crates.io) folds perf's stacks and draws them.
    if ! command -v inferno-collapse-perf >/dev/null; then
      echo "installing inferno (cargo install inferno) ..." >&2
      cargo install inferno --locked --quiet
    fi
    out=results/profile
    # DWARF unwinding: release builds keep line tables but no frame pointers.
    perf record -e cpu-clock -F 1999 --call-graph dwarf,16384 -o "$out/perf.data" -- \
      "$bin" run "$profile" -r 1 -w 0 --quiet "$@"
    # Folded stacks start with the thread's name (perf's comm, 15 bytes).
    perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf >"$out/stacks.folded"
    inferno-flamegraph --title "$profile: all threads" <"$out/stacks.folded" >"$out/flamegraph.svg"
    echo "all threads: $out/flamegraph.svg"
    cut -d';' -f1 "$out/stacks.folded" | sort -u | while IFS= read -r thread; do
      file="$out/flamegraph-$(printf '%s' "$thread" | tr -c 'A-Za-z0-9._-' '_').svg"
      awk -v t="$thread" 'index($0, t ";") == 1' "$out/stacks.folded" |
        inferno-flamegraph --title "$profile: thread $thread" >"$file"
      echo "thread '$thread': $file"
    done
    ;;
  callgrind)
    valgrind --tool=callgrind --separate-threads=yes \
      --callgrind-out-file=results/profile/callgrind.out.%p \
      "$bin" run "$profile" -r 1 -w 0 --quiet "$@"
    echo "per-thread counts: callgrind_annotate results/profile/callgrind.out.*"
    ;;
  *)
    echo "unknown tool '$tool': use perf, flamegraph or callgrind" >&2
    exit 2
    ;;
esac
