"""A toy trial for the Slurm integration tests: reports ``acc = x * (step + 1)`` per step, then exits.

python toy_trial.py X [--steps N] [--sleep S] [--exit CODE]
Standard library only (it runs inside Slurm jobs), reporting through stdout report lines.
"""

import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("x", type=float)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--sleep", type=float, default=0.3)
ap.add_argument("--exit", type=int, default=0)
args = ap.parse_args()
print(f"trial {os.environ.get('GML_HPO_TRIAL_ID')} slurm job {os.environ.get('SLURM_JOB_ID')}", flush=True)
for step in range(args.steps):
    time.sleep(args.sleep)
    print("GML_HPO_REPORT " + json.dumps({"step": step, "acc": args.x * (step + 1)}), flush=True)
sys.exit(args.exit)
