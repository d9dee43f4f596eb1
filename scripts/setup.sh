#!/usr/bin/env bash
# Set-up: npm dependencies and the worker's Python venv (.venv). Idempotent: a second run
# only checks stamps. Environment:
#   ADVMOE_SETUP_PYTHON  interpreter to build the venv from (default: newest python3.1x found)
#   ADVMOE_CONSTRAINTS   pip constraints file (default py/constraints.txt, which pins the
#                        CPU torch 2.13.0; set it to an empty string to keep a torch you bring)
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "setup: $*"; }

# --- npm ---------------------------------------------------------------------------
npm_stamp=node_modules/.advmoe-stamp
npm_want=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_want" ]; then
  say "installing npm dependencies"
  # `npm install` rather than `npm ci`: lock files written with
  # omit-lockfile-registry-resolved lack other platforms' optional packages, which
  # `npm ci` then reports as out of sync. It still installs the locked versions.
  npm install --no-audit --no-fund --loglevel=error
  echo "$npm_want" > "$npm_stamp"
fi

# --- dist/: the built SDK that `import "advmoe"`, the `advmoe` bin and Deno load ------------
build_stamp=dist/.advmoe-stamp
build_want=$(find ts scripts/deno-self-types.ts tsconfig.json tsconfig.build.json package.json -type f | LC_ALL=C sort |
  xargs cat | sha256sum | cut -d' ' -f1)
if [ ! -f "$build_stamp" ] || [ "$(cat "$build_stamp")" != "$build_want" ]; then
  say "building dist/ (npm run build)"
  npm run build --silent
  echo "$build_want" > "$build_stamp"
fi

# --- Python venv ---------------------------------------------------------------------
find_python() {
  if [ -n "${ADVMOE_SETUP_PYTHON:-}" ]; then echo "$ADVMOE_SETUP_PYTHON"; return; fi
  for candidate in python3.12 python3.11 python3.10 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv; sys.exit(not (3, 10) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  echo "setup: no Python 3.10-3.13 with venv found; set ADVMOE_SETUP_PYTHON" >&2
  exit 1
}

constraints=${ADVMOE_CONSTRAINTS-py/constraints.txt}
py_want=$(cat py/pyproject.toml py/requirements-extra.txt ${constraints:+"$constraints"} scripts/setup.sh | sha256sum | cut -d' ' -f1)
py_stamp=.venv/.advmoe-stamp
if [ ! -x .venv/bin/python ]; then
  base=$(find_python)
  say "creating .venv from $base ($("$base" --version 2>&1))"
  "$base" -m venv .venv
fi
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_want" ]; then
  say "installing the worker package and its dependencies into .venv"
  pip_flags=(--quiet --disable-pip-version-check)
  [ -n "$constraints" ] && pip_flags+=(-c "$constraints")
  .venv/bin/python -m pip install "${pip_flags[@]}" -e "py[dev,tensorboard,notebook]"
  # Packages installed without their declared dependencies (see the file for why).
  .venv/bin/python -m pip install "${pip_flags[@]}" --no-deps -r py/requirements-extra.txt
  echo "$py_want" > "$py_stamp"
fi
# --- Deno Jupyter kernelspec, in a private folder (never the user's Jupyter folders) ---------
# `deno jupyter --install` writes to $XDG_DATA_HOME/jupyter/kernels/deno on Linux; the
# notebook runner points JUPYTER_PATH at .cache/jupyter alone.
kernel=.cache/jupyter/kernels/deno/kernel.json
deno_bin=$(readlink -f node_modules/.bin/deno)  # the kernelspec names the resolved binary
if [ ! -f "$kernel" ] || ! grep -qF "\"$deno_bin\"" "$kernel"; then
  say "installing the Deno Jupyter kernelspec into .cache/jupyter"
  mkdir -p .cache/jupyter
  XDG_DATA_HOME=$PWD/.cache JUPYTER_DATA_DIR=$PWD/.cache/jupyter "$deno_bin" jupyter --install --force >/dev/null 2>&1
  if [ ! -f "$kernel" ]; then
    echo "setup: deno jupyter --install did not write $kernel" >&2
    exit 1
  fi
fi

say "ready: $(.venv/bin/python -c 'import sys, torch; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}")') in .venv"
