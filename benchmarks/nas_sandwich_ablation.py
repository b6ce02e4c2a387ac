"""gml-nas: what the sandwich rule costs the largest subnet at a small training budget.

Trains the supernet of configs/nas/bignas_fashion_mnist.toml (6,000 Fashion-MNIST images at 16x16,
AdamW lr 0.01, batch 64, no dropout / drop-path, constant learning rate) for ``--epochs`` epochs
with one of these per-step subnet plans, through ``BigNAS.train_step``:

* ``max``: the largest subnet alone (plain training of that network, through the slice ops);
* ``max+min``: sandwich with 2 subnets;
* ``max+random``: the largest and one random subnet;
* ``sandwich4``: the configured rule, max + 2 random + min (in-place distillation: the smaller
  subnets learn the largest one's soft predictions);
* ``sandwich4-labels``: the same subnets, all trained on the labels (``distiller_mode = "none"``).

After each epoch the largest subnet is evaluated on the 2,000 test images after BN re-calibration
on 10 training batches.

    OMP_NUM_THREADS=1 python benchmarks/nas_sandwich_ablation.py --out work_dirs/bench/nas_sandwich_ablation.json
    (``--plans sandwich4-labels`` runs one plan)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
PLANS = {"max": lambda p: p[:1], "max+min": lambda p: [p[0], p[-1]], "max+random": lambda p: p[:2],
         "sandwich4": lambda p: p, "sandwich4-labels": lambda p: p}
OVERRIDES = {"sandwich4-labels": ['algorithm.model.head.distiller_mode="none"']}


def run(plan: str, epochs: int) -> list[float]:
    from gml_core._internal.algorithms import BuildContext
    from gml_core._internal.components import build
    from gml_core._internal.config.loader import load_config
    from gml_core._internal.plugins import get_host
    from gml_nas.evaluation import calibrate_bn, evaluate_accuracy

    cfg = load_config(REPO / "configs/nas/bignas_fashion_mnist.toml",
                      ["algorithm.drop_ratio=0.0", "algorithm.drop_path_ratio=0.0",
                       'algorithm.model.head.distiller_mode="soft"', *OVERRIDES.get(plan, [])])
    data = build("dataset", cfg.data, "data")
    torch.manual_seed(0)
    algo = get_host().hook.gml_build_algorithm(config=cfg.algorithm, context=BuildContext(data.info, cfg.train))
    sandwich = algo.mutator.sandwich
    algo.mutator.sandwich = lambda n: PLANS[plan](sandwich(n))
    wrapper = algo.build_optim_wrapper(cfg.train)
    loader = DataLoader(data.train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(data.val, batch_size=256)
    accs = []
    for _ in range(epochs):
        for batch in loader:
            algo.train_step(batch, wrapper)
        algo.activate(algo.model.space.max())
        calibrate_bn(algo.model, list(loader)[:10], -1)
        accs.append(evaluate_accuracy(algo.model, val, 10)["accuracy/top1"])
        print(plan, len(accs), accs[-1], flush=True)
    return accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--plans", default=",".join(PLANS), help="comma-separated subset of " + ", ".join(PLANS))
    parser.add_argument("--out", default="work_dirs/bench/nas_sandwich_ablation.json")
    args = parser.parse_args()
    results = {plan: run(plan, args.epochs) for plan in args.plans.split(",")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"epochs": args.epochs, "max_subnet_top1_per_epoch": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
