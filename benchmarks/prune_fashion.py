"""Fashion-MNIST: accuracy vs FLOPs of DMCP and L1 pruning at several targets, same budget.

Pipeline, all through ``gml run`` (each config is written to the work dir and its
command printed):
  1. baseline   Supervised SmallCNN, ``--base-epochs``
  2. prune      from the baseline, ``--prune-epochs`` of DMCP (sandwich + architecture
                training) or of iterative L1 pruning (one step per epoch, fine-tuning
                in between) to each FLOPs target; the pruned model is exported
  3. fine-tune  the exported model, ``--ft-epochs`` of Supervised training (same for both)

    OMP_NUM_THREADS=1 python benchmarks/prune_fashion.py --out work_dirs/bench/prune_fashion.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DATA = """[data]
type = "fashion_mnist"
train_limit = {train_limit}
val_limit = {val_limit}

[train]
epochs = {epochs}
batch_size = 128
lr = {lr}

[runtime]
work_dir = "{work_dir}"
seed = 0
progress = false
log_interval = 50
"""

BASELINE = DATA + """
[algorithm]
type = "Supervised"
model = {{ type = "gml.SmallCNN", width = {width} }}
"""

DMCP = DATA + """
[algorithm]
type = "DMCP"
arch_start_training = {arch_start}
arch_train_freq = 1
arch_sample_num = 10
latency_batches = [1, 64]
model = {{ type = "gml.SmallCNN", width = {width}, init_from = "{init}" }}

[algorithm.mutator]
type = "DMCPMutator"
num_sample = 4
arch_sample_type = ["max", "min", "scheduled_random", "scheduled_random"]
width = {{ max = 1.0, min = 0.1, offset = 0.1 }}
arch_learning_rate = 0.5
input_shape = [1, 1, 28, 28]
target_flops = {target}
sample_prob_decay = 0.97
"""

L1 = DATA + """
[algorithm]
type = "MagnitudePruning"
criterion = "l1"
allocation = "uniform"
round_to = 1
target_flops = {target}
steps = {epochs}
step_interval = 1
latency_batches = [1, 64]
model = {{ type = "gml.SmallCNN", width = {width}, init_from = "{init}" }}
"""

#: the same, channels allocated by a measured latency table (batch 1) instead of uniformly
L1_LATENCY = L1.replace('allocation = "uniform"', 'allocation = "latency"\nlatency_batch = 1')
TEMPLATES = {"DMCP": DMCP, "L1": L1, "L1-latency": L1_LATENCY}

FINETUNE = DATA + """
[algorithm]
type = "Supervised"
model = {{ type = "gml.SmallCNN", width = {width}, init_from = "{init}" }}
"""


def gml_run(config: Path, text: str) -> dict:
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    print(f"$ gml run {config}", flush=True)
    start = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run([sys.executable, "-m", "gml_core", "run", str(config)], capture_output=True, text=True,
                            env=env)
    if result.returncode:
        raise SystemExit(f"{config} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    work_dir = Path(text.split('work_dir = "')[1].split('"')[0])
    summary = json.loads((work_dir / "summary.json").read_text())
    summary["seconds"] = time.time() - start
    report = work_dir / "prune_report.json"
    if report.is_file():
        summary["prune_report"] = json.loads(report.read_text())
    return summary


def measure_latencies(root: Path, names: list[str], width: int, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Latency of every exported model, interleaved with the unpruned one (median of rounds)."""
    import statistics

    import torch

    from gml_core._internal.algorithms import BuildContext, DataInfo
    from gml_core._internal.config.spec import ComponentSpec
    from gml_prune.report import measure_latency

    torch.set_num_threads(1)
    context = BuildContext(DataInfo(10, 1, (28, 28)))
    models = {"unpruned": context.build_model(ComponentSpec("gml.SmallCNN", {"width": width}))}
    for name in names:
        models[name] = context.build_model(ComponentSpec("gml.SmallCNN", {"init_from": str(root / name / "pruned.pth")}))
    out = {}
    for batch in (1, 64):
        per = {k: [] for k in models}
        for _ in range(rounds):
            for k, m in models.items():
                per[k].append(measure_latency(m, (batch, 1, 28, 28), repeats=20, budget_s=2.0))
        ref = statistics.median(per["unpruned"])
        for k in models:
            out.setdefault(k, {})[f"b{batch}"] = statistics.median(per[k]) / ref
    return out


def print_table(rows: list[dict]) -> None:
    full = rows[0]["flops"]
    print("| method | FLOPs target | FLOPs (M) | FLOPs ratio | params (K) | top-1 after pruning | "
          "top-1 after fine-tuning | CPU latency ratio b1 / b64 |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        lat = f"{r['latency_ratio_b1']:.2f} / {r['latency_ratio_b64']:.2f}" if "latency_ratio_b1" in r else "1 / 1"
        print(f"| {r['method']} | {r['target']:.2f} | {r['flops'] / 1e6:.3f} | {r['flops'] / full:.3f} | "
              f"{r['params'] / 1e3:.1f} | {r['top1_pruned']:.2f} | {r['top1_finetuned']:.2f} | {lat} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--methods", nargs="+", default=["DMCP", "L1"], choices=list(TEMPLATES))
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--train-limit", type=int, default=10000)
    p.add_argument("--val-limit", type=int, default=2000)
    p.add_argument("--base-epochs", type=int, default=6)
    p.add_argument("--prune-epochs", type=int, default=2)
    p.add_argument("--ft-epochs", type=int, default=2)
    p.add_argument("--work-dir", default="work_dirs/bench/prune_fashion")
    p.add_argument("--out", default="")
    p.add_argument("--latency-only", action="store_true",
                   help="re-measure latency ratios of the exported models of a previous run (--out JSON)")
    args = p.parse_args()
    root = Path(args.work_dir).resolve()
    names = [f"{m.lower()}_{int(t * 100)}" for t in args.targets for m in args.methods]
    if args.latency_only:
        data = json.loads(Path(args.out).read_text())
        lat = measure_latencies(root, names, args.width)
        for row, name in zip(data["rows"][1:], names):
            row["latency_ratio_b1"], row["latency_ratio_b64"] = lat[name]["b1"], lat[name]["b64"]
        data["latency"] = "interleaved re-measurement (--latency-only), 5 rounds, 1 thread"
        Path(args.out).write_text(json.dumps(data, indent=2))
        print_table(data["rows"])
        return
    common = dict(train_limit=args.train_limit, val_limit=args.val_limit, width=args.width)
    iters = -(-args.train_limit // 128)
    base = gml_run(root / "baseline.toml", BASELINE.format(epochs=args.base_epochs, lr=0.1,
                                                             work_dir=root / "baseline", **common))
    init = root / "baseline" / "best.pth"
    rows = [{"method": "unpruned", "target": 1.0, "flops": base["flops"], "params": base["params"],
             "top1_pruned": base["metrics"]["accuracy/top1"], "top1_finetuned": base["metrics"]["accuracy/top1"]}]
    for target in args.targets:
        for method in args.methods:
            template = TEMPLATES[method]
            name = f"{method.lower()}_{int(target * 100)}"
            pruned = gml_run(root / f"{name}.toml", template.format(
                epochs=args.prune_epochs, lr=0.02, work_dir=root / name, init=init, target=target,
                arch_start=iters * max(1, args.prune_epochs // 2), **common))
            tuned = gml_run(root / f"{name}_ft.toml", FINETUNE.format(
                epochs=args.ft_epochs, lr=0.02, work_dir=root / f"{name}_ft", init=root / name / "pruned.pth",
                **common))
            rep = pruned["prune_report"]
            rows.append({"method": method, "target": target, "flops": tuned["flops"], "params": tuned["params"],
                         "flops_ratio": rep["ratio"]["flops"], "latency_ratio_b1": rep["ratio"]["latency_b1"],
                         "latency_ratio_b64": rep["ratio"]["latency_b64"],
                         "top1_pruned": rep["after"]["accuracy/top1"],
                         "top1_finetuned": tuned["metrics"]["accuracy/top1"],
                         "seconds": pruned["seconds"] + tuned["seconds"]})
    print_table(rows)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
