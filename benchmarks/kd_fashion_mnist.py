"""gml-kd: Fashion-MNIST top-1 of a small student alone vs. distilled by each gml-kd method.

Every run is a shipped ``configs/kd/*_digits.toml`` (or ``teacher_digits.toml``) through gml's
runner with these overrides, so any row can be re-run with ``gml run CONFIG --cfg-options ...``
(the exact overrides of each run are stored in the ``--out`` file):

* data: ``fashion_mnist``, 28x28, all 60,000 training images (``--train-limit N``: the first N),
  evaluated once, after the last epoch, on the 10,000-image test split (no checkpoint selection on it);
* teachers: SmallCNN width 16, ``--teacher-epochs`` epochs, seeds 0 and 1 (the second only for
  MEAL v2's two-teacher ensemble; every other method distils teacher seed 0), trained once and
  reused by every method and seed (``--reuse-teachers`` also reuses them across invocations);
* students: SmallCNN width 4, ``--epochs`` epochs, batch 128, SGD lr 0.1, cosine, for each of
  ``--seeds``; a seed fixes the student's initial weights and the data order, identical across
  methods; "student alone" is ``Supervised`` with the same settings. Stages a method runs before
  the main schedule (FitNet's hint stage, AB's initialisation, FT's paraphraser) are extra passes.

Variants (``VARIANTS``, run only when named in ``--methods``) change one setting of a shipped config;
``kd_unlabelled*`` give the student the teacher's outputs on training images whose labels it does not
have (``data.label_limit``: the first 10,000 keep their labels, as the student alone's set), at the
step count of the student-alone row they are compared with (``alone_iter``, ``alone_long``).

The table gives mean ± std over seeds, the per-seed values, and the paired difference to the
student alone (same seed: same initial weights and data order) with its std, the number of seeds
the method wins, and a paired t-test's p-value.

    OMP_NUM_THREADS=1 python benchmarks/kd_fashion_mnist.py --out work_dirs/bench/kd_fmnist.json
    python benchmarks/kd_fashion_mnist.py --workers 12 --out kd_fmnist.json   # on a machine with a GPU
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
METHODS = ["alone", "kd", "meal", "at", "ft", "fitnet", "ab"]
AT_POSITIONS = (14 * 14, 7 * 7)   # stages 2 and 3 of SmallCNN on 28x28 inputs
_HEADS = "algorithm.distiller.distill_cfg.teacher[0].distill_head_cfg"
#: ablation rows against the shipped configs (not run by default): the former KD temperature, and
#: AT / FT without the KD term that their shipped configs add (its weight set to 0)
# the teacher labels images the student has no labels for (the first 10,000 keep theirs, the student
# alone's set); the learning rate follows its cosine per iteration (with 2-4 epochs a per-epoch cosine
# ends high); paired with "alone_iter" / "alone_long", the student alone at the same step count
_UNL = ["data.label_limit=10000", 'train.lr_schedule="cosine_iter"']
_MEAN_LABELLED = 'algorithm.label_loss_norm="labelled"'
VARIANTS = {"kd_tau4": ("kd", [f"{_HEADS}[0].head.loss.tau=4.0"]),
            "at_only": ("at", [f"{_HEADS}[2].head.loss.loss_weight=0.0"]),
            "ft_only": ("ft", [f"{_HEADS}[1].head.loss.loss_weight=0.0"]),
            "kd_only": ("kd", ["algorithm.student_loss_weight=0.0"]),
            "ab_grown_norms": ("ab", ["algorithm.init_keep_norms=false", "algorithm.init_lr=0.1"]),
            # 40,000 images (the first 10,000 labelled), 2 passes = 625 steps (the student alone: 632)
            "kd_unlabelled": ("kd", _UNL + ["data.train_limit=40000", "train.epochs=2", "train.val_interval=2"]),
            "kd_unlabelled_labelled_norm": ("kd", _UNL + ["data.train_limit=40000", "train.epochs=2",
                                                          "train.val_interval=2", _MEAN_LABELLED]),
            "alone_iter": ("alone", ['train.lr_schedule="cosine_iter"']),
            # a longer budget: all 60,000 images (the first 10,000 labelled), 4 passes = 1,876 steps,
            # against the student alone on its 10,000 images for 24 epochs = 1,896 steps
            "kd_unlabelled_long": ("kd", _UNL + ["data.train_limit=0", "train.epochs=4", "train.val_interval=4"]),
            "kd_unlabelled_long_labelled_norm": ("kd", _UNL + ["data.train_limit=0", "train.epochs=4",
                                                               "train.val_interval=4", _MEAN_LABELLED]),
            # twice that: 8 passes over the 60,000 images (3,752 steps) against 48 epochs (3,792 steps)
            "kd_unlabelled_xl": ("kd", _UNL + ["data.train_limit=0", "train.epochs=8", "train.val_interval=8"]),
            # the same at tau = 2 (on 50,000 unlabelled images the teacher's softened outputs carry more)
            "kd_unlabelled_xl_tau2": ("kd", _UNL + ["data.train_limit=0", "train.epochs=8", "train.val_interval=8",
                                                    f"{_HEADS}[0].head.loss.tau=2.0"]),
            # the same with function matching (Beyer et al. 2022): teacher and student see one mixup batch
            "kd_unlabelled_xl_tau2_mixup": ("kd", _UNL + ["data.train_limit=0", "train.epochs=8", "train.val_interval=8",
                                                          f"{_HEADS}[0].head.loss.tau=2.0", "algorithm.mixup_alpha=0.2"]),
            # twice as long again: 16 passes (7,504 steps) against 96 epochs (7,584 steps)
            "kd_unlabelled_xxl_tau2": ("kd", _UNL + ["data.train_limit=0", "train.epochs=16", "train.val_interval=16",
                                                     f"{_HEADS}[0].head.loss.tau=2.0"]),
            "alone_xxl": ("alone", ["train.epochs=96", "train.val_interval=96", 'train.lr_schedule="cosine_iter"']),
            "alone_xl": ("alone", ["train.epochs=48", "train.val_interval=48", 'train.lr_schedule="cosine_iter"']),
            "alone_long": ("alone", ["train.epochs=24", "train.val_interval=24", 'train.lr_schedule="cosine_iter"']),
            "ab_init_lr_0.1": ("ab", ["algorithm.init_lr=0.1"]),     # the former default (= train.lr)
            "ab_init_lr_0.01": ("ab", ["algorithm.init_lr=0.01"]),
            "kd_tau4_only": ("kd", [f"{_HEADS}[0].head.loss.tau=4.0", "algorithm.student_loss_weight=0.0"])}
#: rows compared with a student-alone row other than ``alone`` (same step count and schedule)
BASELINE = {"kd_unlabelled": "alone_iter", "kd_unlabelled_labelled_norm": "alone_iter",
            "kd_unlabelled_long": "alone_long", "kd_unlabelled_long_labelled_norm": "alone_long",
            "kd_unlabelled_xl": "alone_xl", "kd_unlabelled_xl_tau2": "alone_xl", "kd_unlabelled_xl_tau2_mixup": "alone_xl",
            "kd_unlabelled_xxl_tau2": "alone_xxl"}
LABELS = {"alone": "student alone", "kd": "KD", "fitnet": "FitNet (hint stage, then KD)", "at": "AT + KD",
          "ab": "AB (init stage at lr 0.001, then KD)", "ft": "FT + KD", "meal": "MEAL v2 (2 teachers)",
          "kd_tau4": "KD, tau = 4 (former default)", "at_only": "AT alone (no KD term)",
          "ft_only": "FT alone (no KD term)", "kd_only": "KD only (no label term)",
          "kd_tau4_only": "KD only, tau = 4",
          "ab_grown_norms": "AB, weight norms left as the init stage made them",
          "alone_iter": "student alone, cosine per iteration",
          "kd_unlabelled_long": "KD + 50,000 images without labels (60,000 images, 4 passes, 1,876 steps)",
          "kd_unlabelled_long_labelled_norm": "the same, label term / labelled images",
          "kd_unlabelled_xl": "KD + 50,000 images without labels (60,000 images, 8 passes, 3,752 steps)",
          "kd_unlabelled_xl_tau2": "the same at tau = 2",
          "kd_unlabelled_xl_tau2_mixup": "the same at tau = 2 with mixup (alpha 0.2, function matching)",
          "alone_xl": "student alone, 48 epochs (3,792 steps)",
          "kd_unlabelled_xxl_tau2": "KD, tau = 2, + 50,000 images without labels (60,000 images, 16 passes, 7,504 steps)",
          "alone_xxl": "student alone, 96 epochs (7,584 steps)",
          "alone_long": "student alone, 24 epochs (1,896 steps)",
          "kd_unlabelled": "KD + 30,000 images without labels (40,000 images, 2 passes, 625 steps)",
          "kd_unlabelled_labelled_norm": "the same, label term / labelled images",
          "ab_init_lr_0.01": "AB, init stage at lr 0.01", "ab_init_lr_0.1": "AB, init stage at lr 0.1 (former default)"}


def common(args: argparse.Namespace, epochs: int, work_dir: Path, seed: int, limit: int | None = None) -> list[str]:
    limit = args.train_limit if limit is None else limit
    return ['data.type="fashion_mnist"', "data.resize=0", f"data.train_limit={limit}",
            f"train.epochs={epochs}", "train.batch_size=128", "train.lr=0.1", f"train.val_interval={epochs}",
            "runtime.progress=false", "runtime.log_interval=1000", "runtime.max_keep_ckpts=1",
            f'runtime.work_dir="{work_dir}"', f"runtime.seed={seed}"]


def gml_run(config: Path, overrides: list[str], threads: int = 1) -> dict:
    import torch

    from gml_core._internal.config.loader import load_config
    from gml_core._internal.training.runner import run

    torch.set_num_threads(threads)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(load_config(config, overrides))
    return {"top1": result.metrics["accuracy/top1"], "seconds": round(time.perf_counter() - start, 1)}


def method_overrides(method: str, teachers: list[Path]) -> tuple[Path, list[str]]:
    if method in VARIANTS:
        base, extra = VARIANTS[method]
        config, out = method_overrides(base, teachers)
        return config, out + extra
    if method == "alone":
        return CONFIGS / "teacher_digits.toml", ["algorithm.model.width=4"]
    t = "algorithm.distiller.distill_cfg.teacher"
    out = [f'{t}[0].ckpt_path="{teachers[0]}"', "algorithm.eval_teachers=false"]
    if method == "meal":  # one teacher: the same checkpoint twice, an ensemble equal to that teacher
        out.append(f'{t}[1].ckpt_path="{teachers[-1]}"')
    if method == "at":  # beta = 1000 scaled to the positions of 28x28 inputs' maps, as the config does for 16x16
        out += [f"{t}[0].distill_head_cfg[{i}].head.loss.loss_weight={1000 * n / 1024:.1f}"
                for i, n in enumerate(AT_POSITIONS)]
    return CONFIGS / f"{method}_digits.toml", out


def choose(path: Path) -> dict[str, dict]:
    """Per method, the shipped-config variant of ``kd_ablation.py`` with the best held-out mean.

    Only variants run for every seed of the ablation count (the held-out split, never the test
    split, decides).
    """
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    seeds = {r["seed"] for r in rows if "top1" in r and not r["name"].startswith("teacher")}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "top1" in r and r.get("ship"):
            groups.setdefault((r["ship"], r["name"]), []).append(r)
    best: dict[str, dict] = {}
    for (method, name), rs in groups.items():
        if {r["seed"] for r in rs} != seeds:
            continue
        mean = statistics.mean(r["top1"] for r in rs)
        if method not in best or mean > best[method]["held_out_mean"]:
            best[method] = {"variant": name, "overrides": rs[0]["overrides"], "held_out_mean": round(mean, 2)}
    return best


def _job(spec: tuple) -> dict:
    kind, method, seed, config, overrides = spec
    row = gml_run(Path(config), overrides)
    return {"kind": kind, "method": method, "seed": seed, **row}


def run_jobs(specs: list[tuple], workers: int) -> list[dict]:
    """Run ``specs`` in this process (``workers <= 1``) or in a pool of spawned processes."""
    if workers <= 1:
        out = []
        for spec in specs:
            out.append(_job(spec))
            print(json.dumps(out[-1]), flush=True)
        return out
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers, maxtasksperchild=1) as pool:
        out = []
        for row in pool.imap_unordered(_job, specs):
            out.append(row)
            print(json.dumps(row), flush=True)
        return out


def paired(rows: list[dict], base: list[dict]) -> dict:
    """Differences to the student alone, seed by seed."""
    by_seed = {r["seed"]: r["top1"] for r in base}
    diffs = [r["top1"] - by_seed[r["seed"]] for r in rows if r["seed"] in by_seed]
    out = {"mean_diff": round(statistics.mean(diffs), 2) if diffs else None,
           "std_diff": round(statistics.stdev(diffs), 2) if len(diffs) > 1 else None,
           "wins": sum(d > 0 for d in diffs), "n": len(diffs), "p_value": None}
    if len(diffs) > 1 and statistics.stdev(diffs) > 0:
        from scipy import stats

        out["p_value"] = round(float(stats.ttest_1samp(diffs, 0.0).pvalue), 4)
    return out


def previous_runs(paths: list[str]) -> dict[tuple, dict]:
    """``(method, seed, overrides)`` -> result row, from earlier ``--out`` files."""
    out: dict[tuple, dict] = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        for method, rows in data["runs"].items():
            extra = json.dumps(data["commands"][method]["overrides"])
            for row in rows:
                out[(method, row["seed"], extra)] = {**row, "from": str(path)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS + list(VARIANTS))
    parser.add_argument("--train-limit", type=int, default=10000, help="first N training images (0: all 60,000)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--teacher-train-limit", type=int, default=None,
                        help="first N training images for the teachers (default: --train-limit; 0: all 60,000)")
    parser.add_argument("--meal-teachers", type=int, default=2, choices=(1, 2),
                        help="MEAL v2's ensemble: teachers of seeds 0 and 1, or teacher 0 alone")
    parser.add_argument("--workers", type=int, default=1, help="parallel runs (processes)")
    parser.add_argument("--work-dir", default="work_dirs/bench/kd_fmnist")
    parser.add_argument("--reuse-teachers", action="store_true",
                        help="use teachers already trained in --work-dir (their summary.json) instead of retraining")
    parser.add_argument("--teachers-only", action="store_true", help="train (or check) the teachers and stop")
    parser.add_argument("--choose-from", default="",
                        help="a kd_ablation.py results file: run each method with its best held-out variant")
    parser.add_argument("--previous", nargs="*", default=[],
                        help="--out files of earlier invocations: reuse their runs of the same method, seed and "
                             "overrides instead of running them again (to split a long benchmark into several runs)")
    parser.add_argument("--join-only", action="store_true",
                        help="run nothing: tabulate the runs of --previous (missing method/seed runs are left out)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    root = Path(args.work_dir).resolve()
    needed = (0, 1) if (("meal" in args.methods and args.meal_teachers == 2) or args.teachers_only) else (0,)
    if args.methods == ["alone"] and not args.teachers_only:
        needed = ()
    teachers, teacher_rows, pending = [], [], []
    for seed in needed:
        wd = root / f"teacher_s{seed}"
        teachers.append(wd / "best.pth")
        if args.reuse_teachers and (wd / "summary.json").is_file() and (wd / "best.pth").is_file():
            top1 = json.loads((wd / "summary.json").read_text())["metrics"]["accuracy/top1"]
            teacher_rows.append({"seed": seed, "top1": top1, "seconds": None})
        else:
            pending.append(("teacher", "teacher", seed, str(CONFIGS / "teacher_digits.toml"),
                            common(args, args.teacher_epochs, wd, seed, args.teacher_train_limit)))
    for row in run_jobs(pending, min(args.workers, len(pending))):
        teacher_rows.append({"seed": row["seed"], "top1": row["top1"], "seconds": row["seconds"]})
    teacher_rows.sort(key=lambda r: r["seed"])
    if args.teachers_only:
        print(json.dumps({"teachers": teacher_rows}))
        return
    chosen = choose(Path(args.choose_from)) if args.choose_from else {}
    if chosen:
        print(json.dumps({"chosen": chosen}), flush=True)
    specs, commands = [], {}
    results: dict[str, list[dict]] = {}
    reused = previous_runs(args.previous)
    for method in args.methods:
        config, extra = method_overrides(method, teachers)
        extra = extra + chosen.get(method, {}).get("overrides", [])
        for seed in args.seeds:
            key = (method, seed, json.dumps(extra))
            if key in reused:
                results.setdefault(method, []).append(reused[key])
                continue
            if args.join_only:
                continue
            overrides = common(args, args.epochs, root / f"{method}_s{seed}", seed) + extra
            specs.append(("student", method, seed, str(config), overrides))
        commands[method] = {"config": str(config.relative_to(REPO)), "overrides": extra}
    start = time.perf_counter()
    for row in run_jobs(specs, args.workers):
        results.setdefault(row["method"], []).append({"seed": row["seed"], "top1": row["top1"],
                                                      "seconds": row["seconds"]})
    wall = time.perf_counter() - start
    for rows in results.values():
        rows.sort(key=lambda r: r["seed"])
    table = []
    for method in args.methods:
        rows = results.get(method, [])
        if not rows:
            continue
        base_key = BASELINE.get(method, "alone")   # the student alone with the same steps and schedule
        base = results.get(base_key, [])
        base_mean = statistics.mean(r["top1"] for r in base) if base else None
        accs = [r["top1"] for r in rows]
        mean = statistics.mean(accs)
        label = "MEAL v2 (1 teacher)" if method == "meal" and args.meal_teachers == 1 else LABELS[method]
        entry = {"method": label, "key": method, "mean": round(mean, 2),
                 "std": round(statistics.stdev(accs), 2) if len(accs) > 1 else 0.0,
                 "per_seed": {r["seed"]: r["top1"] for r in rows},
                 "baseline": base_key,
                 "delta_vs_alone": None if base_mean is None else round(mean - base_mean, 2),
                 "seconds_per_run": round(statistics.mean(r["seconds"] for r in rows), 1)}
        if base and method != base_key and not method.startswith("alone"):
            entry["paired"] = paired(rows, base)
        table.append(entry)
    print("\n| method | top-1 mean ± std | per seed | vs alone (paired mean ± std) | wins | p |\n|---|---|---|---|---|---|")
    for t in teacher_rows:
        print(f"| teacher SmallCNN w16, seed {t['seed']} | {t['top1']:.2f} | | | | |")
    for t in table:
        seeds = " / ".join(f"{v:.2f}" for v in t["per_seed"].values())
        p = t.get("paired")
        vs = "" if not p else f"{p['mean_diff']:+.2f} ± {p['std_diff'] or 0:.2f}"
        wins = "" if not p else f"{p['wins']}/{p['n']}"
        pv = "" if not p or p["p_value"] is None else f"{p['p_value']:.3f}"
        print(f"| {t['method']} | {t['mean']:.2f} ± {t['std']:.2f} | {seeds} | {vs} | {wins} | {pv} |")
    print(f"students: {len(specs)} runs in {wall:.0f} s with {args.workers} worker(s)")
    if args.out:
        out = {"args": vars(args), "teachers": teacher_rows, "runs": results, "alone": results.get("alone", []),
               "table": table, "commands": commands, "chosen": chosen, "wall_seconds": round(wall, 1)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        # paths relative to the repository, so the file names no path of the machine that ran it
        Path(args.out).write_text(json.dumps(out, indent=2).replace(f"{REPO}/", ""))


if __name__ == "__main__":
    main()
