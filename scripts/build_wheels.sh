#!/usr/bin/env bash
# One wheel per gml package into dist/ (`make dist`), for à-la-carte installs:
#   pip install --find-links dist gml-nas gml-kd
# Usage: scripts/build_wheels.sh [package folder ...]    default: gml-core (.) and every plugins/gml_*
# Environment: PYTHON (default python3), DIST_DIR (default dist).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${DIST_DIR:-dist}"
if [ $# -eq 0 ]; then set -- . plugins/gml_*; fi
flags=(--no-deps --wheel-dir "$OUT")
# With setuptools>=68 at hand (the dev venv) build offline, without an isolated build environment;
# otherwise pip fetches setuptools into one.
if "$PY" -c 'import sys, setuptools; sys.exit(int(setuptools.__version__.split(".")[0]) < 68)' 2>/dev/null; then
  flags+=(--no-build-isolation --no-index)
fi
mkdir -p "$OUT"
for pkg in "$@"; do
  pkg="${pkg%/}"
  [ -f "$pkg/pyproject.toml" ] || { echo "error: $pkg has no pyproject.toml" >&2; exit 2; }
  rm -rf "$pkg/build"   # setuptools reuses build/lib: a stale copy could ship deleted modules
  had_egg_info=$(ls -d "$pkg"/*.egg-info 2>/dev/null || true)
  # "./" keeps pip from reading a bare folder name as a package on the index
  "$PY" -m pip wheel -q "${flags[@]}" "./${pkg#./}"
  rm -rf "$pkg/build"
  [ -n "$had_egg_info" ] || rm -rf "$pkg"/*.egg-info   # leave the tree as it was
done
ls "$OUT"
