"""BOSearcher / TPESearcher ablation: options variants, mean log10 regret at 25 and 50 trials.

Each variant is a set of BOOptions (``--searcher bo``) or TPEOptions (``--searcher tpe``),
written ``name:key=value,key=value`` (values are parsed as Python literals where possible,
``None`` included), run in the sequential loop of hpo_searchers.py on the same seeds, with a
fresh searcher per run; with ``--procs`` > 1 every run also gets a fresh worker process.
Optuna's figures for the same seeds (GPSampler for bo, TPESampler for tpe) are read from a
hpo_searchers.py JSON (``--reference``); every variant also gets its paired difference to
them (mean ± SE over the seeds).

    python benchmarks/hpo_bo_ablation.py --seeds 10 \\
        --variants "old:length_scale_prior=hvarfner,output_warping=none,n_initial_points=10" \\
                   "new:" --reference docs/benchmarks/hpo_searchers.json --out ablation.json
    python benchmarks/hpo_bo_ablation.py --searcher tpe --seeds 10 \\
        --variants "scott:bandwidth_rule='scott'" "neighbours:bandwidth_rule='neighbours'" \\
        --reference docs/benchmarks/hpo_searchers.json
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hpo_searchers import FUNCTIONS, log_regret, run_gml  # noqa: E402


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, spec = text.partition(":")
    options = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return name, options


def _job(arg):
    kind, name, options, fname, seed, budget = arg
    fn, bounds, _ = FUNCTIONS[fname]
    return name, fname, seed, run_gml(kind, fn, bounds, budget, seed, options=options)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--searcher", choices=["bo", "tpe"], default="bo")
    ap.add_argument("--variants", nargs="+", required=True, help="NAME:key=value,... (BOOptions or TPEOptions)")
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--reference", default=None, help="hpo_searchers.py JSON with optuna-gp/optuna-tpe curves")
    ap.add_argument("--out", default=None, help="Write the curves (JSON).")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    kind, ref_name = {"bo": ("gml-bo", "optuna-gp"), "tpe": ("gml-tpe", "optuna-tpe")}[args.searcher]
    jobs = [(kind, n, o, f, s, args.budget) for f in args.functions for n, o in variants for s in seeds]
    curves = {}
    if args.procs > 1:
        with mp.get_context("spawn").Pool(args.procs, maxtasksperchild=1) as pool:
            for n, f, s, values in pool.imap_unordered(_job, jobs):
                curves[(n, f, s)] = values
    else:
        for job in jobs:
            n, f, s, values = _job(job)
            curves[(n, f, s)] = values
    ref_data = json.loads(Path(args.reference).read_text()) if args.reference else {"runs": {}}
    ref, first = ref_data["runs"], args.first_seed - ref_data.get("first_seed", 0)  # index of our first seed
    out = {}
    for f in args.functions:
        minimum = FUNCTIONS[f][2]
        rows = [(n, [curves[(n, f, s)] for s in seeds]) for n, _ in variants]
        ref_curves = None
        if f"{f}/{ref_name}" in ref:
            ref_curves = ref[f"{f}/{ref_name}"]["curves"][first:first + args.seeds]
            if first < 0 or len(ref_curves) < args.seeds:
                raise SystemExit(f"--reference: its {ref_name} curves do not cover seeds {seeds.start}-{seeds.stop - 1}")
            rows.append((ref_name, ref_curves))
        for name, cs in rows:
            out[f"{f}/{name}"] = cs
            r = {n: [log_regret(c, n, minimum) for c in cs] for n in (25, 50) if n <= args.budget}
            line = f"{f:12s} {name:15s} " + "  ".join(f"@{n}: {_mean_se(x)}" for n, x in r.items())
            if ref_curves is not None and name != ref_name:
                line += "   paired - ref " + "  ".join(
                    f"@{n}: {_mean_se([a - log_regret(c, n, minimum) for a, c in zip(x, ref_curves)])}"
                    for n, x in r.items())
            print(line, flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"searcher": args.searcher, "variants": dict(variants),
                                              "seeds": list(seeds), "curves": out}))


def _mean_se(x: list[float]) -> str:
    return f"{statistics.mean(x):+.2f}±{statistics.stdev(x) / math.sqrt(len(x)) if len(x) > 1 else 0:.2f}"


if __name__ == "__main__":
    main()
