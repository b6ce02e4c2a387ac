#!/usr/bin/env bash
# Lint (ruff, import-linter contracts), then the whole test suite; a single-node Slurm is started for the
# Slurm integration tests when possible.
set -u
cd "$(dirname "$0")/.."
slurm_started=0
if [ -x scripts/slurm/up.sh ] || [ -f scripts/slurm/up.sh ]; then
  if [ "$(id -u)" = 0 ] && command -v slurmctld >/dev/null; then
    if bash scripts/slurm/up.sh; then slurm_started=1; else echo "test.sh: Slurm did not start; the Slurm integration tests will fail"; fi
  fi
fi
echo "== lint: ruff, import contracts"
ruff check . && lint-imports --no-cache >/dev/null || { echo "test.sh: lint failed (run 'ruff check .' and 'lint-imports')"; lint_rc=1; }
python -m pytest "$@"
rc=$?
[ "${lint_rc:-0}" = 1 ] && rc=1
[ $slurm_started = 1 ] && bash scripts/slurm/down.sh
exit $rc
