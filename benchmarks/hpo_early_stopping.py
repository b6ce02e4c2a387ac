"""Early stopping on real learning curves: epochs consumed and best result, no assessor vs
MedianStop vs CurveFitting.

1. ``--record``: run a GridSearcher task of real ``gml run`` digits trials (fixed list of
   configs, N epochs each, no assessor) through gml-hpo and save every validation curve.
2. Replay the recorded curves through each assessor in many random trial orders (one trial
   at a time, as a scheduler with ``parallel_size: 1`` sees them): a stopped trial consumes
   only the epochs it ran. Reports epochs consumed, the best final accuracy found, and how
   often the best config survived.

    python benchmarks/hpo_early_stopping.py --record --epochs 8 --curves docs/benchmarks/hpo_curves_digits.json
    python benchmarks/hpo_early_stopping.py --curves docs/benchmarks/hpo_curves_digits.json \
        --orders 50 --plot docs/benchmarks/hpo_early_stopping.png

3. ``--synthetic N``: CurveFitting's false stops and true stops on N noisy saturating
   curves per plateau (10 epochs, noise 0.01, bar = threshold x best = 0.876, assessed
   at every epoch from 5 to 9): the probability rule of the assessor against the old
   point-prediction rule (stop when the BIC-weighted prediction does not beat the bar).

    python benchmarks/hpo_early_stopping.py --synthetic 300
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LRS = [0.002, 0.005, 0.02, 0.05, 0.2, 0.5, 1.5, 3.0]
BATCHES = [32, 128]


def record(epochs: int, out: Path, parallel: int) -> None:
    from gml_hpo.scheduler import Scheduler
    from gml_hpo.store import TaskStore
    from gml_hpo.taskfile import load_task

    with tempfile.TemporaryDirectory() as tmp:
        raw = {"task": {"name": "curves", "work_dir": tmp,
                        "template": f"gml run {REPO / 'configs/baseline/digits_cnn.toml'} --cfg-options "
                                    f"train.lr={{lr}} train.batch_size={{bs}} train.epochs={epochs} "
                                    f"runtime.log_interval=1000 --work-dir {{trial_dir}}",
                        "search_args": {"lr": {"type": "Categorical", "data": LRS},
                                        "bs": {"type": "Categorical", "data": BATCHES}}},
               "searcher": {"type": "GridSearcher"},
               "scheduler": {"parallel_size": parallel}}
        cfg = load_task(raw, cwd=REPO)
        store = TaskStore.create(cfg.task_dir, {"name": "curves", "config": raw, "cwd": str(REPO)})
        t0 = time.time()
        Scheduler(cfg, store, on_event=lambda k, t, m: print(k, t or "", m.splitlines()[0] if m else "",
                                                             flush=True)).run()
        curves = []
        for t in store.trials():
            curves.append({"params": t.params, "state": t.state.value,
                           "acc": [v for _, v in store.history(t.trial_id, "acc")]})
        store.close()
    out.write_text(json.dumps({"epochs": epochs, "wall_s": time.time() - t0, "curves": curves}, indent=1))
    print(f"recorded {len(curves)} curves in {time.time() - t0:.0f}s -> {out}")


def make_assessor(kind: str, epochs: int):
    from gml_hpo.assessors.curvefit import CurveFittingAssessor, CurveFittingOptions
    from gml_hpo.assessors.median import MedianStopAssessor, MedianStopOptions

    if kind == "none":
        return None
    if kind == "MedianStop":
        return MedianStopAssessor(MedianStopOptions(start_step=2), optimize_mode="maximize")
    return CurveFittingAssessor(CurveFittingOptions(epoch_num=epochs, start_step=3, threshold=0.95, gap=1),
                                optimize_mode="maximize")


def replay(curves: list[list[float]], kind: str, epochs: int, order: list[int]) -> dict:
    """One pass over the trials in ``order``; returns epochs used and the best completed final."""
    assessor = make_assessor(kind, epochs)
    used, best, stopped, calls = 0, None, 0, []
    for i in order:
        curve = curves[i]
        ran = len(curve)
        for step in range(1, len(curve) + 1):
            if assessor is None:
                continue
            t0 = time.perf_counter()
            stop = assessor.assess(str(i), curve[:step])
            calls.append(time.perf_counter() - t0)
            if stop:
                ran = step
                stopped += 1
                break
        used += ran
        completed = ran == len(curve)
        if assessor is not None:
            assessor.trial_end(str(i), curve[:ran], completed)
        if completed:
            best = curve[-1] if best is None else max(best, curve[-1])
    return {"epochs": used, "best": best, "stopped": stopped, "call_ms": calls}


BAR, THRESHOLD, EPOCHS_SYN, NOISE = 0.876, 0.95, 10, 0.01
PLATEAUS = [0.926, 0.916, 0.906, 0.896, 0.886, 0.846, 0.836, 0.826, 0.776]


def synthetic_curves(plateau: float, n: int, seed: int) -> list[list[float]]:
    """Saturating curves y(t) = p - (p - y0) exp(-t / tau) + N(0, NOISE^2), t = 1..10, with
    y0 ~ U(0.2, 0.6) and tau ~ U(0.8, 3) (slow curves are still far from their plateau
    at epoch 5)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(1, EPOCHS_SYN + 1)
    out = []
    for _ in range(n):
        y0, tau = rng.uniform(0.2, 0.6), rng.uniform(0.8, 3.0)
        out.append(list(plateau - (plateau - y0) * np.exp(-t / tau) + rng.normal(0.0, NOISE, EPOCHS_SYN)))
    return out


def synthetic(n: int) -> None:
    from gml_hpo.assessors.curvefit import CurveFittingAssessor, CurveFittingOptions

    opts = CurveFittingOptions(epoch_num=EPOCHS_SYN, start_step=5, threshold=THRESHOLD, gap=1)
    print(f"{n} curves per plateau, {EPOCHS_SYN} epochs, noise {NOISE}, bar {BAR} (threshold {THRESHOLD}), "
          f"assessed at epochs {opts.start_step}-{EPOCHS_SYN - 1}; max_probability {opts.max_probability}, "
          f"n_boot {opts.n_boot}")
    print(f"{'plateau':>8s} {'vs bar':>7s} {'stopped (probability)':>22s} {'stopped (point pred.)':>22s} "
          f"{'ms/call':>8s}")
    for k, plateau in enumerate(PLATEAUS):
        assessor = CurveFittingAssessor(opts, optimize_mode="maximize")
        assessor.trial_end("best", [BAR / THRESHOLD], True)
        new = old = 0
        calls = []
        for curve in synthetic_curves(plateau, n, seed=k):
            new_stop = old_stop = False
            for step in range(opts.start_step, EPOCHS_SYN):
                if not new_stop:
                    t0 = time.perf_counter()
                    p, trusted = assessor.probability(curve[:step])
                    calls.append(time.perf_counter() - t0)
                    new_stop = trusted and p < opts.max_probability
                if not old_stop:
                    pred = assessor.predict(curve[:step])
                    old_stop = pred is not None and not pred > BAR
            new += new_stop
            old += old_stop
        print(f"{plateau:8.3f} {100 * (plateau - BAR):+6.1f}p {100 * new / n:21.1f}% {100 * old / n:21.1f}% "
              f"{1000 * statistics.median(calls):8.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="Run the real trials first.")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--curves", default="docs/benchmarks/hpo_curves_digits.json")
    ap.add_argument("--orders", type=int, default=50)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="Only the false-stop study on N synthetic curves per plateau.")
    args = ap.parse_args()
    if args.synthetic:
        synthetic(args.synthetic)
        return
    path = Path(args.curves)
    if args.record:
        record(args.epochs, path, args.parallel)
    data = json.loads(path.read_text())
    curves = [c["acc"] for c in data["curves"] if c["state"] == "SUCCEEDED" and c["acc"]]
    epochs = data["epochs"]
    true_best = max(c[-1] for c in curves)
    rng = random.Random(0)
    orders = [rng.sample(range(len(curves)), len(curves)) for _ in range(args.orders)]
    print(f"{len(curves)} real curves of {epochs} epochs; best final acc {true_best:.4f}; {args.orders} orders")
    print(f"{'assessor':12s} {'epochs used':>12s} {'% of full':>9s} {'best acc':>9s} {'best kept':>9s} "
          f"{'stopped':>8s} {'ms/call':>8s}")
    summary = {}
    for kind in ("none", "MedianStop", "CurveFitting"):
        runs = [replay(curves, kind, epochs, order) for order in orders]
        used = statistics.mean(r["epochs"] for r in runs)
        best = statistics.mean(r["best"] for r in runs)
        kept = sum(abs(r["best"] - true_best) < 1e-12 for r in runs) / len(runs)
        stopped = statistics.mean(r["stopped"] for r in runs)
        calls = [c for r in runs for c in r["call_ms"]]
        ms = 1000 * statistics.mean(calls) if calls else 0.0
        full = len(curves) * epochs
        summary[kind] = {"epochs": used, "fraction": used / full, "best": best, "best_kept": kept,
                         "stopped": stopped, "ms_per_call": ms}
        print(f"{kind:12s} {used:12.1f} {100 * used / full:8.0f}% {best:9.4f} {100 * kept:8.0f}% "
              f"{stopped:8.1f} {ms:8.2f}")
    if args.plot:
        plot(data, summary, args.plot)


def plot(data: dict, summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for c in data["curves"]:
        if c["acc"]:
            a.plot(range(1, len(c["acc"]) + 1), c["acc"], lw=1, alpha=0.8)
    a.set_title(f"recorded digits curves ({len(data['curves'])} configs)")
    a.set_xlabel("epoch")
    a.set_ylabel("acc (top-1, val)")
    a.grid(alpha=0.3)
    kinds = list(summary)
    b.bar(kinds, [100 * summary[k]["fraction"] for k in kinds], color=["tab:gray", "tab:blue", "tab:orange"])
    for i, k in enumerate(kinds):
        b.text(i, 100 * summary[k]["fraction"] + 1, f"best {summary[k]['best']:.3f}\nkept {100 * summary[k]['best_kept']:.0f}%",
               ha="center", fontsize=8)
    b.set_ylabel("% of epochs of a full search")
    b.set_ylim(0, 120)
    b.set_title("epochs consumed (mean over trial orders)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
