#!/usr/bin/env bash
# The one test gate: lint and format, types, stale schemas and results, vitest, the SDK under Deno,
# pytest, and the example notebook executed headless on the Deno kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== lint (biome, ruff)"
biome check ts test bench scripts
.venv/bin/ruff check py bench scripts
.venv/bin/ruff format --check py bench scripts
echo "== types (tsc)"
tsc --noEmit -p .
echo "== schemas"
tsx scripts/gen-schemas.ts --check
echo "== RESULTS.md (generated from docs/results/report.json)"
tsx scripts/results.ts --check
echo "== vitest"
vitest run
echo "== deno test (the built SDK under Deno, against real workers)"
deno test --allow-run --allow-net --allow-read --allow-write --allow-env test/deno/
echo "== pytest"
(cd py && ../.venv/bin/python -m pytest -q -p no:cacheprovider)
echo "== notebook (examples/advmoe.ipynb on the Deno kernel; executed copy in runs/notebook/)"
.venv/bin/python scripts/run-notebook.py
