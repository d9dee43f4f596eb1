#!/usr/bin/env bash
# Profiles both ends of pipelined echo round trips at once: py-spy on the worker, V8's
# sampling profiler on the Node client. Prints the hottest functions of each side.
# py-spy is a measuring tool, not a dependency: `.venv/bin/pip install py-spy` first.
# Usage: bash bench/profile.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-40000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node --cpu-prof --cpu-prof-dir="$dir/node" --import tsx bench/pipeline.ts \
  --requests "$requests" --repeats 1 --pid-file "$dir/pid" > "$dir/pipeline.txt" 2>/dev/null &
client=$!
while [ ! -s "$dir/pid" ]; do
  kill -0 "$client" 2>/dev/null || { echo "the benchmark ended before its worker started" >&2; exit 1; }
  sleep 0.2
done
# Records the worker through the warm-up and the pipelined run (idle time left out).
.venv/bin/py-spy record --rate 500 --format raw --output "$dir/worker.raw" --pid "$(cat "$dir/pid")" \
  > /dev/null 2>&1 || true
wait "$client"
sed 's/^/    /' "$dir/pipeline.txt"
echo
echo "Worker (py-spy, main thread and compute thread, self time):"
echo
.venv/bin/python bench/profile_summary.py "$dir/worker.raw" --top 14
echo
echo "Node client (node --cpu-prof, main thread, self time; idle is time spent waiting):"
echo
.venv/bin/python bench/profile_summary.py "$(ls -S "$dir"/node/*.cpuprofile | head -1)" --top 14
