"""ASHA / Hyperband against no early stopping, MedianStop and Optuna's pruners, on recorded
real learning curves.

The curves are those of ``benchmarks/hpo_early_stopping.py --record`` (real ``gml run``
digits trials through gml-hpo, one validation per epoch). They are replayed in many
random trial orders, one trial at a time (what a scheduler with ``parallel_size: 1``
sees): every rule sees the same values in the same order, a stopped trial consumes only
the epochs it ran. Optuna's SuccessiveHalvingPruner / HyperbandPruner get the same curves
through ``trial.report`` / ``should_prune`` (skipped when optuna is absent).

    python benchmarks/hpo_asha.py --curves docs/benchmarks/hpo_curves_digits.json --orders 200
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path


def gml_rules(epochs: int) -> dict:
    from gml_hpo.assessors.asha import AshaAssessor, AshaOptions
    from gml_hpo.assessors.median import MedianStopAssessor, MedianStopOptions

    return {
        "none": lambda: None,
        "MedianStop (start_step 2)": lambda: MedianStopAssessor(MedianStopOptions(start_step=2)),
        "ASHA eta=3": lambda: AshaAssessor(AshaOptions(min_resource=1, reduction_factor=3, max_resource=epochs)),
        "ASHA eta=2": lambda: AshaAssessor(AshaOptions(min_resource=1, reduction_factor=2, max_resource=epochs)),
        "Hyperband eta=3, 2 brackets": lambda: AshaAssessor(
            AshaOptions(min_resource=1, reduction_factor=3, max_resource=epochs, brackets=2)),
    }


def replay_gml(curves, make, order) -> tuple[int, float | None]:
    assessor = make()
    used, best = 0, None
    for i in order:
        curve, ran = curves[i], len(curves[i])
        if assessor is not None:
            for step in range(1, len(curve) + 1):
                if assessor.assess(f"trial-{i}", curve[:step]):
                    ran = step
                    break
            assessor.trial_end(f"trial-{i}", curve[:ran], ran == len(curve))
        used += ran
        if ran == len(curve):
            best = curve[-1] if best is None else max(best, curve[-1])
    return used, best


def replay_optuna(curves, kind: str, epochs: int, order, seed: int) -> tuple[int, float | None]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3) if kind == "sh"
              else optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3))
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed))
    used, best = 0, None
    for i in order:
        trial, curve, ran = study.ask(), curves[i], len(curves[i])
        for step, v in enumerate(curve, start=1):
            trial.report(v, step)
            if trial.should_prune():
                ran = step
                break
        used += ran
        if ran == len(curve):
            study.tell(trial, curve[-1])
            best = curve[-1] if best is None else max(best, curve[-1])
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return used, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", default="docs/benchmarks/hpo_curves_digits.json")
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    data = json.loads(Path(args.curves).read_text())
    curves = [c["acc"] for c in data["curves"] if c["state"] == "SUCCEEDED" and c["acc"]]
    epochs = data["epochs"]
    true_best = max(c[-1] for c in curves)
    rng = random.Random(0)
    orders = [rng.sample(range(len(curves)), len(curves)) for _ in range(args.orders)]
    rules = {name: (lambda order, k, make=make: replay_gml(curves, make, order)) for name, make in gml_rules(epochs).items()}
    try:
        import optuna  # noqa: F401
        rules["Optuna SuccessiveHalvingPruner eta=3"] = lambda order, k: replay_optuna(curves, "sh", epochs, order, k)
        rules["Optuna HyperbandPruner eta=3"] = lambda order, k: replay_optuna(curves, "hb", epochs, order, k)
    except ImportError:
        print("optuna is not installed: Optuna rows skipped")
    full = len(curves) * epochs
    print(f"{len(curves)} real curves of {epochs} epochs; best final acc {true_best:.4f}; {args.orders} orders\n")
    print("| rule | epochs used (of %d) | %% of full search | mean best final acc | best config kept |" % full)
    print("| --- | ---: | ---: | ---: | ---: |")
    summary = {}
    for name, run in rules.items():
        runs = [run(order, k) for k, order in enumerate(orders)]
        used = statistics.mean(u for u, _ in runs)
        best = statistics.mean(b if b is not None else 0.0 for _, b in runs)
        kept = sum(b is not None and abs(b - true_best) < 1e-12 for _, b in runs) / len(runs)
        summary[name] = {"epochs": used, "fraction": used / full, "best": best, "best_kept": kept}
        print(f"| {name} | {used:.1f} | {100 * used / full:.0f}% | {best:.4f} | {100 * kept:.0f}% |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
