"""gml-kd: Fashion-MNIST top-1 of a small student alone vs. distilled by each gml-kd method.

Every run is the shipped ``configs/kd/*_digits.toml`` (or ``teacher_digits.toml``) through gml's
runner with these overrides, so any row can be re-run with ``gml run CONFIG --cfg-options ...``:

* data: ``fashion_mnist``, 28x28, the first ``--train-limit`` training images (default 10,000 of
  60,000), evaluated on the full 10,000-image test split;
* teachers: SmallCNN width 16 (101k params), ``--teacher-epochs`` epochs, seeds 0 and 1 (the
  second only for MEAL v2's two-teacher ensemble; every other method distils teacher seed 0);
* students: SmallCNN width 4 (7k params), ``--epochs`` epochs, batch 128, SGD lr 0.1, cosine,
  one evaluation at the end, for each of ``--seeds``; "student alone" is ``Supervised``.
  FitNet and AB spend their first epoch in the hint / initialisation stage (inside the same
  budget); FT pre-trains its paraphraser for one extra pass over the training subset. AT's beta is
  1000 x positions / 1024 (the paper's value is meant for 32x32 maps).

    OMP_NUM_THREADS=1 python benchmarks/kd_fashion_mnist.py --out work_dirs/bench/kd_fmnist.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "kd"
METHODS = ["alone", "kd", "fitnet", "at", "ab", "ft", "meal"]
LABELS = {"alone": "student alone", "kd": "KD", "fitnet": "FitNet (hint stage + KD)", "at": "AT", "ab": "AB",
          "ft": "FT", "meal": "MEAL v2 (2 teachers)"}
AT_LAYERS = {"at2": 14 * 14, "at3": 7 * 7}


def common(args: argparse.Namespace, epochs: int, work_dir: Path, seed: int) -> list[str]:
    return ['data.type="fashion_mnist"', "data.resize=0", f"data.train_limit={args.train_limit}",
            f"train.epochs={epochs}", "train.batch_size=128", "train.lr=0.1", f"train.val_interval={epochs}",
            "runtime.progress=false", "runtime.log_interval=1000", "runtime.max_keep_ckpts=1",
            f'runtime.work_dir="{work_dir}"', f"runtime.seed={seed}"]


def gml_run(config: Path, overrides: list[str]) -> dict:
    from gml_core._internal.config.loader import load_config
    from gml_core._internal.training.runner import run

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(load_config(config, overrides))
    return {"top1": result.metrics["accuracy/top1"], "extra": result.extra,
            "seconds": round(time.perf_counter() - start, 1)}


def method_overrides(method: str, teachers: list[Path]) -> tuple[Path, list[str]]:
    if method == "alone":
        return CONFIGS / "teacher_digits.toml", ['algorithm.model.width=4']
    t = 'algorithm.distiller.distill_cfg.teacher'
    out = [f'{t}[0].ckpt_path="{teachers[0]}"', "algorithm.eval_teachers=false"]
    if method == "meal":
        out.append(f'{t}[1].ckpt_path="{teachers[1]}"')
    if method in ("fitnet", "ab"):
        out.append("algorithm.init_epochs=1")
    if method == "ft":
        out.append(f"{t}[0].distill_head_cfg[0].head.tea_connector.pretrain_epochs=1")
    if method == "at":
        out += [f"{t}[0].distill_head_cfg[{i}].head.loss.loss_weight={1000 * n / 1024:.1f}"
                for i, n in enumerate(AT_LAYERS.values())]
    return CONFIGS / f"{method}_digits.toml", out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--train-limit", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--teacher-epochs", type=int, default=8)
    parser.add_argument("--work-dir", default="work_dirs/bench/kd_fmnist")
    parser.add_argument("--reuse-teachers", action="store_true",
                        help="use teachers already trained in --work-dir (their summary.json) instead of retraining")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    root = Path(args.work_dir)
    teachers, teacher_rows = [], []
    for seed in (0, 1) if "meal" in args.methods else (0,):
        wd = root / f"teacher_s{seed}"
        if args.reuse_teachers and (wd / "summary.json").is_file() and (wd / "best.pth").is_file():
            row = {"top1": json.loads((wd / "summary.json").read_text())["metrics"]["accuracy/top1"],
                   "seconds": None}
        else:
            row = gml_run(CONFIGS / "teacher_digits.toml", common(args, args.teacher_epochs, wd, seed))
        teachers.append(wd / "best.pth")
        teacher_rows.append({"seed": seed, "top1": row["top1"], "seconds": row["seconds"]})
        print(json.dumps({"teacher": teacher_rows[-1]}), flush=True)
    results: dict[str, list[dict]] = {}
    for method in args.methods:
        config, extra = method_overrides(method, teachers)
        for seed in args.seeds:
            wd = root / f"{method}_s{seed}"
            row = gml_run(config, common(args, args.epochs, wd, seed) + extra)
            results.setdefault(method, []).append({"seed": seed, "top1": row["top1"], "seconds": row["seconds"]})
            print(json.dumps({"method": method, **results[method][-1]}), flush=True)
    table = []
    base = statistics.mean(r["top1"] for r in results.get("alone", [])) if "alone" in results else None
    for method, rows in results.items():
        accs = [r["top1"] for r in rows]
        mean = statistics.mean(accs)
        table.append({"method": LABELS[method], "mean": round(mean, 2),
                      "std": round(statistics.stdev(accs), 2) if len(accs) > 1 else 0.0,
                      "min": round(min(accs), 2), "max": round(max(accs), 2),
                      "delta_vs_alone": None if base is None else round(mean - base, 2),
                      "seconds_per_run": round(statistics.mean(r["seconds"] for r in rows), 1)})
    print("\n| method | top-1 mean ± std (min-max) | vs alone | s/run |\n|---|---|---|---|")
    for t in teacher_rows:
        print(f"| teacher SmallCNN w16, seed {t['seed']} | {t['top1']:.2f} | | {t['seconds']} |")
    for t in table:
        delta = "" if t["delta_vs_alone"] is None else f"{t['delta_vs_alone']:+.2f}"
        print(f"| {t['method']} | {t['mean']:.2f} ± {t['std']:.2f} ({t['min']:.2f}-{t['max']:.2f}) | {delta} | "
              f"{t['seconds_per_run']} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "teachers": teacher_rows, "runs": results,
                                              "table": table}, indent=2))


if __name__ == "__main__":
    main()
