#!/usr/bin/env bash
# Run the whole test suite; a single-node Slurm is started for the Slurm integration tests when possible.
set -u
cd "$(dirname "$0")/.."
slurm_started=0
if [ -x scripts/slurm/up.sh ] || [ -f scripts/slurm/up.sh ]; then
  if [ "$(id -u)" = 0 ] && command -v slurmctld >/dev/null; then
    if bash scripts/slurm/up.sh; then slurm_started=1; else echo "test.sh: Slurm did not start; the Slurm integration tests will fail"; fi
  fi
fi
python -m pytest "$@"
rc=$?
[ $slurm_started = 1 ] && bash scripts/slurm/down.sh
exit $rc
