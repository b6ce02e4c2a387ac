"""gml-hpo BOSearcher and TPESearcher against Optuna's GPSampler and TPESampler.

log10 simple regret (best value found minus the known minimum) after 25 and 50 trials on
four standard test functions, mean over seeds, and the time each method spends per
suggestion (ask + tell). With ``--parallel 1 2 4`` the gml searchers also run with that
many trials in flight: completions are simulated asynchronously (each trial takes an
exponential random time; the first to finish is observed, a new one is asked for), and
regret is compared at equal numbers of finished trials.

    python benchmarks/hpo_searchers.py --seeds 10 --budget 50 --parallel 1 2 4 \
        --out docs/benchmarks/hpo_searchers.json --plot docs/benchmarks/hpo_searchers.png

With ``--common-start N`` every method's first N trials on seed s are the same N uniform points
(drawn from the seed alone; Optuna gets them with ``enqueue_trial``, a gml searcher with ``observe``),
and each method goes on from there with its own defaults: the comparison then holds the random start
fixed and measures what the methods do with it (common random numbers).

Optuna columns need optuna (``pip install gml-hpo[bench]``); without it they are skipped.
BLAS is limited to one thread (tiny matrices; a shared machine).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hpo_sample_efficiency import BRANIN_MIN, HARTMANN6_MIN, branin, hartmann6  # noqa: E402

_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])


def hartmann3(x) -> float:
    x = np.asarray(x)
    return float(-np.sum(_H3_ALPHA * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))


def rosenbrock4(x) -> float:
    x = np.asarray(x)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], BRANIN_MIN),
    "hartmann3": (hartmann3, [(0.0, 1.0)] * 3, -3.86278214782076),
    "rosenbrock4": (rosenbrock4, [(-2.048, 2.048)] * 4, 0.0),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, HARTMANN6_MIN),
}
GML = ("gml-bo", "gml-tpe", "gml-random")
OPTUNA = ("optuna-gp", "optuna-tpe")


def common_start(bounds, n: int, seed: int) -> list[dict]:
    """``n`` uniform points that depend on the seed only (the same for every method)."""
    rng = np.random.default_rng([seed, 2718])
    lo, hi = np.array(bounds, dtype=float).T
    return [{f"x{i}": float(v) for i, v in enumerate(lo + (hi - lo) * u)} for u in rng.random((n, len(bounds)))]


def run_gml(kind: str, fn, bounds, budget: int, seed: int, parallel: int = 1, pending: str | None = None,
            options: dict | None = None, searcher_class: type | None = None, start: int = 0):
    """Ask/tell with ``parallel`` trials in flight, completions in simulated time order; a new
    searcher for every run (nothing carries over between seeds). ``searcher_class`` replaces the
    searcher of ``kind`` (same options class): an ablation's variant."""
    from gml_hpo.searchers.bo import BOOptions, BOSearcher
    from gml_hpo.searchers.random_search import RandomSearcher
    from gml_hpo.searchers.tpe import TPEOptions, TPESearcher
    from gml_hpo.space import Dim, SearchSpace

    space = SearchSpace([Dim(f"x{i}", "Real", lo, hi) for i, (lo, hi) in enumerate(bounds)])
    cls = searcher_class or {"gml-bo": BOSearcher, "gml-tpe": TPESearcher, "gml-random": RandomSearcher}[kind]
    opts = None  # ``options``: fields of the searcher's options class (an ablation's variant)
    if kind == "gml-bo":
        opts = BOOptions(**{**(options or {}), **({"pending": pending} if pending else {})})
    elif kind == "gml-tpe" and options:
        opts = TPEOptions(**options)
    searcher = cls(space, opts, optimize_mode="minimize", seed=seed)
    clock, durations = 0.0, random.Random(1000 + seed)
    running: list[tuple[float, int, dict]] = []
    values, times, asked = [], [], 0
    for p in common_start(bounds, start, seed):  # --common-start: evaluated first, one after the other
        y = fn([p[f"x{i}"] for i in range(len(bounds))])
        searcher.observe(p, y)
        values.append(y)
        asked += 1
    while len(values) < budget:
        while len(running) < parallel and asked < budget:
            t0 = time.perf_counter()
            p = searcher.suggest([r[2] for r in running])
            times.append(time.perf_counter() - t0)
            heapq.heappush(running, (clock + durations.expovariate(1.0), asked, p))
            asked += 1
        clock, _, p = heapq.heappop(running)
        y = fn([p[f"x{i}"] for i in range(len(bounds))])
        t0 = time.perf_counter()
        searcher.observe(p, y)
        times[-1] += time.perf_counter() - t0
        values.append(y)
    return values, times


def run_optuna(kind: str, fn, bounds, budget: int, seed: int, parallel: int = 1, start: int = 0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.GPSampler(seed=seed) if kind == "optuna-gp"
               else optuna.samplers.TPESampler(seed=seed))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)}
    for p in common_start(bounds, start, seed):  # --common-start: asked (and counted) like any trial
        study.enqueue_trial(p)
    values, times = [], []
    for n in range(budget):
        t0 = time.perf_counter()
        trial = study.ask(dists)
        ask = time.perf_counter() - t0
        y = fn([trial.params[f"x{i}"] for i in range(len(bounds))])
        t0 = time.perf_counter()
        study.tell(trial, y)
        if n >= start:  # the common points are not suggestions (run_gml does not time them either)
            times.append(ask + time.perf_counter() - t0)
        values.append(y)
    return values, times


def log_regret(values, n: int, minimum: float) -> float:
    return math.log10(max(min(values[:n]) - minimum, 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--methods", nargs="+", default=list(GML + OPTUNA), choices=list(GML + OPTUNA))
    ap.add_argument("--parallel", nargs="+", type=int, default=[1],
                    help="slot counts for the gml-bo/gml-tpe runs (1 = sequential)")
    ap.add_argument("--pending", default=None,
                    choices=["believer", "fantasies", "liar_best", "liar_mean", "liar_worst"],
                    help="BOOptions.pending for the gml-bo runs (default: BOOptions' default)")
    ap.add_argument("--common-start", type=int, default=0, metavar="N",
                    help="the first N trials of every method are the same N uniform points per seed")
    ap.add_argument("--out", default=None, help="Write raw results (JSON).")
    ap.add_argument("--plot", default=None, help="Write a figure (PNG).")
    ap.add_argument("--merge", action="store_true", help="Keep the other runs already in --out.")
    ap.add_argument("--summarise", nargs="+", default=None, metavar="JSON",
                    help="Only print regret @25/@50 ± SE over the seeds of these result files together "
                         "(runs of disjoint seed ranges, given in the same seed order for every method), and the "
                         "paired differences gml-bo minus optuna-gp and N slots minus 1 slot.")
    args = ap.parse_args()
    if args.summarise:
        summarise(args.summarise)
        return
    try:
        import optuna
        optuna_version = optuna.__version__
    except ImportError:
        optuna_version = None
        print("optuna is not installed: Optuna columns skipped", flush=True)
    checkpoints = [n for n in (10, 25, 50, 100) if n <= args.budget]
    results = {"budget": args.budget, "seeds": args.seeds, "first_seed": args.first_seed, "checkpoints": checkpoints,
               "common_start": args.common_start,
               "optuna": optuna_version, "runs": {}}
    if args.merge and args.out and Path(args.out).exists():
        results["runs"] = json.loads(Path(args.out).read_text())["runs"]
    for fname in args.functions:
        fn, bounds, minimum = FUNCTIONS[fname]
        configs = []
        for method in args.methods:
            if method in OPTUNA:
                if optuna_version is not None:
                    configs.append((method, 1))
            elif method == "gml-random":
                configs.append((method, 1))
            else:
                configs += [(method, p) for p in args.parallel]
        for method, parallel in configs:
            runner = run_optuna if method in OPTUNA else run_gml
            curves, times, late = [], [], []  # late: the last 10 suggestions of each run (the most observations)
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                values, t = (runner(method, fn, bounds, args.budget, seed, parallel, args.pending,
                                    start=args.common_start)
                             if runner is run_gml else runner(method, fn, bounds, args.budget, seed, parallel,
                                                              start=args.common_start))
                curves.append(values)
                times.extend(t)
                late.extend(t[-10:])
            name = method if parallel == 1 else f"{method}-p{parallel}"
            regrets = {n: statistics.mean(log_regret(v, n, minimum) for v in curves) for n in checkpoints}
            sem = {n: statistics.stdev([log_regret(v, n, minimum) for v in curves]) / math.sqrt(len(curves))
                   if len(curves) > 1 else 0.0 for n in checkpoints}
            ms, ms_late = 1000 * statistics.median(times), 1000 * statistics.median(late)
            results["runs"][f"{fname}/{name}"] = {"log10_regret": regrets, "sem": sem, "suggest_ms_median": ms,
                                                 "suggest_ms_median_last10": ms_late,
                                                 "suggest_ms_mean": 1000 * statistics.mean(times), "curves": curves}
            print(f"{fname:12s} {name:15s} " + "  ".join(f"@{n}: {regrets[n]:+.2f}±{sem[n]:.2f}" for n in checkpoints)
                  + f"  suggest median {ms:7.1f} ms (last 10: {ms_late:.1f})", flush=True)
            if args.out:  # after every configuration: a long run keeps what it measured
                Path(args.out).write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.functions, path=args.plot)


def summarise(paths: list[str]) -> None:
    runs: dict[str, list] = {}
    for path in paths:
        for key, run in json.loads(Path(path).read_text())["runs"].items():
            runs.setdefault(key, []).extend(run["curves"])
    for key, curves in runs.items():
        fname, name = key.split("/")
        minimum = FUNCTIONS[fname][2]
        cells = []
        for n in (25, 50):
            r = [log_regret(v, n, minimum) for v in curves]
            cells.append(f"@{n}: {statistics.mean(r):+.2f}±{statistics.stdev(r) / math.sqrt(len(r)):.2f}")
        print(f"{fname:12s} {name:12s} {len(curves):3d} seeds  " + "  ".join(cells))
        base, _, slots = name.partition("-p")
        pairs = [("bo - optuna", runs.get(f"{fname}/optuna-gp"))] if name == "gml-bo" else []
        if slots:  # N slots against 1 slot, same seeds
            pairs.append((f"p{slots} - 1 slot", runs.get(f"{fname}/{base}")))
        for label, other in pairs:
            if other is None or len(other) != len(curves):
                continue
            cells = []
            for n in (25, 50):
                dif = [log_regret(a, n, minimum) - log_regret(b, n, minimum) for a, b in zip(curves, other)]
                cells.append(f"@{n}: {statistics.mean(dif):+.2f}±{statistics.stdev(dif) / math.sqrt(len(dif)):.2f}")
            print(f"{fname:12s} {label:12s} {'paired':>9s}  " + "  ".join(cells))


def plot(results: dict, functions: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(functions), figsize=(4.5 * len(functions), 4), squeeze=False)
    for ax, fname in zip(axes[0], functions):
        minimum = FUNCTIONS[fname][2]
        for key, run in results["runs"].items():
            f, name = key.split("/")
            if f != fname:
                continue
            best = np.minimum.accumulate(np.array(run["curves"]), axis=1) - minimum
            mean = np.log10(np.maximum(best, 1e-12)).mean(axis=0)
            ax.plot(np.arange(1, len(mean) + 1), mean, label=name, ls="--" if name.startswith("optuna") else "-",
                    lw=1.2)
        ax.set_title(f"{fname} ({results['seeds']} seeds)")
        ax.set_xlabel("finished trials")
        ax.set_ylabel("mean log10 regret")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
