"""BOSearcher ablation: length-scale prior x noise floor, mean log10 regret at 25 and 50 trials.

Each variant patches the GP of gml_hpo.searchers.gp (its length-scale prior and the lower
bound of the noise variance) and runs the sequential loop of hpo_searchers.py on the same
seeds; Optuna's GPSampler figures for the same seeds are read from a hpo_searchers.py JSON.

    python benchmarks/hpo_bo_ablation.py --seeds 10 --procs 2 \
        --variants gamma-1e-6 optuna-1e-6 hvarfner-1e-6 gamma-1e-8 optuna-1e-8 hvarfner-1e-8 \
        --reference docs/benchmarks/hpo_searchers.json
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from hpo_searchers import FUNCTIONS, log_regret, run_gml  # noqa: E402


def _gamma(gp, theta):  # Gamma(3, 6) on l (BoTorch's former default; gml's previous one)
    return 2.0 * theta - 6.0 * np.exp(theta), 2.0 - 6.0 * np.exp(theta)


def _optuna(gp, theta):  # Optuna's default_log_prior: -(0.1 / lam + 0.1 lam), lam = 1 / l^2
    a, b = np.exp(2 * theta), np.exp(-2 * theta)
    return -0.1 * (a + b), -0.2 * (a - b)


PRIORS = {"gamma": _gamma, "optuna": _optuna, "hvarfner": None}  # None: the searcher's own


def _job(arg):
    variant, fname, seed, budget = arg
    from gml_hpo.searchers.gp import GP

    prior, floor = variant.split("-", 1)
    if PRIORS[prior] is not None:
        GP.ls_log_prior = PRIORS[prior]
    GP.NOISE_BOUNDS = (math.log(float(floor)), GP.NOISE_BOUNDS[1])
    fn, bounds, _ = FUNCTIONS[fname]
    return variant, fname, seed, run_gml("gml-bo", fn, bounds, budget, seed)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", required=True, help="PRIOR-FLOOR, e.g. hvarfner-1e-8")
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--reference", default=None, help="hpo_searchers.py JSON with optuna-gp curves")
    args = ap.parse_args()
    for v in args.variants:
        if v.split("-", 1)[0] not in PRIORS:
            ap.error(f"--variants: unknown prior in {v!r}, accepted: {', '.join(PRIORS)}")
    jobs = [(v, f, s, args.budget) for f in args.functions for s in range(args.seeds) for v in args.variants]
    curves = {}
    with mp.get_context("fork").Pool(args.procs) as pool:  # fork: each worker patches its own GP
        for v, f, s, values in pool.imap_unordered(_job, jobs):
            curves[(v, f, s)] = values
    ref = json.loads(Path(args.reference).read_text())["runs"] if args.reference else {}
    for f in args.functions:
        minimum = FUNCTIONS[f][2]
        rows = [(v, [curves[(v, f, s)] for s in range(args.seeds)]) for v in args.variants]
        if f"{f}/optuna-gp" in ref:
            rows.append(("optuna-gp", ref[f"{f}/optuna-gp"]["curves"][:args.seeds]))
        for name, cs in rows:
            r = {n: statistics.mean(log_regret(c, n, minimum) for c in cs) for n in (25, 50) if n <= args.budget}
            print(f"{f:12s} {name:15s} " + "  ".join(f"@{n}: {x:+.2f}" for n, x in r.items()), flush=True)


if __name__ == "__main__":
    main()
