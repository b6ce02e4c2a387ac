"""Sample efficiency of gml-hpo searchers against Optuna samplers (ask/tell loops).

log10 regret of the best value after 10/25/50 trials on Branin (2-D) and Hartmann6 (6-D),
mean over seeds, plus the time each method spends per suggestion.

    python benchmarks/hpo_sample_efficiency.py --seeds 10 --budget 50 \
        --out docs/benchmarks/hpo_sample_efficiency.json --plot docs/benchmarks/hpo_sample_efficiency.png

Methods: gml Random / Skopt / Evolution (gml_hpo searchers, default options), plain
scikit-optimize with its defaults (``skopt-default``, i.e. gp_minimize's settings), and
Optuna TPE / Random / GP. BLAS is limited to one thread (tiny matrices; a busy machine).
Needs optuna (``pip install gml-hpo[bench]``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

BRANIN_MIN = 0.397887357729739
HARTMANN6_MIN = -3.322368011391339
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def branin(x: list[float]) -> float:
    x1, x2 = x
    b, c = 5.1 / (4 * math.pi ** 2), 5 / math.pi
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def hartmann6(x: list[float]) -> float:
    x = np.asarray(x)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], BRANIN_MIN),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, HARTMANN6_MIN),
}


def run_gml(kind: str, fn, bounds, budget: int, seed: int) -> tuple[list[float], list[float]]:
    from gml_hpo.searchers.evolution import EvolutionSearcher
    from gml_hpo.searchers.random_search import RandomSearcher
    from gml_hpo.searchers.skopt_search import SkoptSearcher
    from gml_hpo.space import Dim, SearchSpace

    space = SearchSpace([Dim(f"x{i}", "Real", lo, hi) for i, (lo, hi) in enumerate(bounds)])
    cls = {"gml-random": RandomSearcher, "gml-skopt": SkoptSearcher, "gml-evolution": EvolutionSearcher}[kind]
    searcher = cls(space, None, optimize_mode="minimize", seed=seed)
    values, times = [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        p = searcher.suggest([])
        times.append(time.perf_counter() - t0)
        y = fn([p[f"x{i}"] for i in range(len(bounds))])
        searcher.observe(p, y)
        values.append(y)
    return values, times


def run_skopt_default(kind: str, fn, bounds, budget: int, seed: int) -> tuple[list[float], list[float]]:
    """scikit-optimize's own defaults (what ``gp_minimize`` does), as a reference."""
    import warnings

    from skopt import Optimizer

    opt = Optimizer(bounds, base_estimator="GP", random_state=seed)
    values, times = [], []
    for _ in range(budget):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            x = opt.ask()
            times.append(time.perf_counter() - t0)
            y = fn(x)
            t0 = time.perf_counter()
            opt.tell(x, y)  # skopt fits the GP and optimises the acquisition in tell
            times[-1] += time.perf_counter() - t0
        values.append(y)
    return values, times


def run_optuna(kind: str, fn, bounds, budget: int, seed: int) -> tuple[list[float], list[float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {"optuna-tpe": lambda: optuna.samplers.TPESampler(seed=seed),
               "optuna-random": lambda: optuna.samplers.RandomSampler(seed=seed),
               "optuna-gp": lambda: optuna.samplers.GPSampler(seed=seed)}[kind]()
    study = optuna.create_study(direction="minimize", sampler=sampler)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)}
    values, times = [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        trial = study.ask(dists)
        times.append(time.perf_counter() - t0)
        y = fn([trial.params[f"x{i}"] for i in range(len(bounds))])
        study.tell(trial, y)
        values.append(y)
    return values, times


METHODS = ["gml-random", "gml-skopt", "gml-evolution", "skopt-default", "optuna-random", "optuna-tpe", "optuna-gp"]


def log_regret(values: list[float], n: int, minimum: float) -> float:
    return math.log10(max(min(values[:n]) - minimum, 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--out", default=None, help="Write raw results (JSON).")
    ap.add_argument("--plot", default=None, help="Write a figure (PNG).")
    args = ap.parse_args()
    checkpoints = [n for n in (10, 25, 50, 100) if n <= args.budget]
    results: dict = {"budget": args.budget, "seeds": args.seeds, "checkpoints": checkpoints, "runs": {}}
    for fname in args.functions:
        fn, bounds, minimum = FUNCTIONS[fname]
        for method in args.methods:
            runner = (run_gml if method.startswith("gml") else
                      run_skopt_default if method == "skopt-default" else run_optuna)
            curves, times = [], []
            for seed in range(args.seeds):
                values, t = runner(method, fn, bounds, args.budget, seed)
                curves.append(values)
                times.extend(t)
            regrets = {n: statistics.mean(log_regret(v, n, minimum) for v in curves) for n in checkpoints}
            sem = {n: (statistics.stdev([log_regret(v, n, minimum) for v in curves]) / math.sqrt(len(curves))
                       if len(curves) > 1 else 0.0) for n in checkpoints}
            results["runs"][f"{fname}/{method}"] = {
                "log10_regret": regrets, "sem": sem, "suggest_ms_mean": 1000 * statistics.mean(times),
                "curves": curves}
            print(f"{fname:10s} {method:14s} " + "  ".join(f"@{n}: {regrets[n]:+.2f}±{sem[n]:.2f}" for n in checkpoints)
                  + f"  suggest {1000 * statistics.mean(times):8.1f} ms", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.functions, args.methods, minimum_of={f: FUNCTIONS[f][2] for f in args.functions},
             path=args.plot)


def plot(results: dict, functions: list[str], methods: list[str], minimum_of: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(functions), figsize=(6 * len(functions), 4.2), squeeze=False)
    for ax, fname in zip(axes[0], functions):
        for method in methods:
            run = results["runs"].get(f"{fname}/{method}")
            if not run:
                continue
            curves = np.array(run["curves"])
            best = np.minimum.accumulate(curves, axis=1) - minimum_of[fname]
            mean = np.log10(np.maximum(best, 1e-12)).mean(axis=0)
            ax.plot(np.arange(1, len(mean) + 1), mean, label=method, ls="-" if method.startswith("gml") else "--")
        ax.set_title(f"{fname}: mean log10 regret ({results['seeds']} seeds)")
        ax.set_xlabel("trials")
        ax.set_ylabel("log10(best - min)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
