#!/usr/bin/env bash
# Runs the profile suite (every profile in profiles/, or those named) and
# stores each result under results/<date>-<revision>/ as JSON, with a
# Markdown summary of the run profiles and the sweep charts.
#
#   scripts/bench.sh                      # the whole suite
#   scripts/bench.sh map-sink quickstart  # some profiles
#   BENCH_ARGS="-r 3 -w 1" scripts/bench.sh   # extra arguments for `run` and `sweep`
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/taskbench"
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
out="results/$(date -u +%Y-%m-%dT%H%M%SZ)-$revision"
mkdir -p "$out"

if [ $# -gt 0 ]; then
  profiles=("$@")
else
  profiles=()
  for f in profiles/*.toml; do profiles+=("$(basename "$f" .toml)"); done
fi

status=0
summary="$out/summary.md"
: >"$summary"
for p in "${profiles[@]}"; do
  file="profiles/$p.toml"
  [ -f "$file" ] || file="$p"
  if grep -q '^\[\[sweep\]\]' "$file"; then
    echo "== sweep $p"
    # shellcheck disable=SC2086
    "$bin" sweep "$file" ${BENCH_ARGS:-} --dir "$out" --output "$out/$p.json" || status=1
  else
    echo "== run $p"
    # shellcheck disable=SC2086
    "$bin" run "$file" ${BENCH_ARGS:-} --output "$out/$p.json" || status=1
  fi
done

# One Markdown table over the run results.
python3 - "$out" >"$summary" <<'PY' || true
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| profile | records/ms (median) | ± % | p99 latency | allocations | Flink records/ms | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for f in sorted(out.glob("*.json")):
    r = json.loads(f.read_text())
    if r.get("kind") != "run" or not r.get("summary"):
        continue
    s, flink = r["summary"], r["profile"].get("flink")
    lat = s.get("latency_ns")
    print(f"| {r['profile']['name']} | {s['records_per_ms']['median']:,.0f} | {s['records_per_ms']['rsd_pct']:.1f} | "
          f"{lat['p99'] if lat else '–'} | {s['allocations_during_measurement']} | "
          f"{flink['ops_per_ms']:,.0f} | {s['flink_ratio']:.2f}× |" if flink else
          f"| {r['profile']['name']} | {s['records_per_ms']['median']:,.0f} | {s['records_per_ms']['rsd_pct']:.1f} | "
          f"{lat['p99'] if lat else '–'} | {s['allocations_during_measurement']} | – | – |")
PY
echo
cat "$summary"
echo
echo "results: $out"
exit $status
