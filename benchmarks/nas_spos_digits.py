"""gml-nas: SPOS on digits: top-1 of random paths after the supernet's training budget.

Trains ``configs/nas/spos_digits.toml`` in-process as ``gml run`` does (``nas_recipe.train_supernet``;
``--epochs``, extra config overrides as arguments), then measures ``--paths`` random paths (and the
largest) on the test split after BN re-calibration on 8 training batches.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/nas_spos_digits.py --epochs 40
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/nas_spos_digits.py --epochs 40 'train.optimizer="SGD"' train.lr=0.1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nas_recipe as R  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--paths", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    from gml_nas.mutator import StatelessMutator

    cfg, bundle = R.load(R.REPO / "configs/nas/spos_digits.toml", args.overrides)
    algo, seconds = R.train_supernet(cfg, bundle, args.epochs, args.seed)
    calib = R.calib_batches(bundle.train, cfg.train.batch_size, 8)
    mut = StatelessMutator(5).prepare(algo.model.space)
    accs = sorted(R.supernet_accuracy(algo, mut.random_subnet(), calib, bundle.val) for _ in range(args.paths))
    print(json.dumps({"epochs": args.epochs, "overrides": args.overrides, "train_s": round(seconds),
                      "max_path_top1": R.supernet_accuracy(algo, algo.model.space.max(), calib, bundle.val),
                      "random_paths_top1": [round(a, 1) for a in accs]}))


if __name__ == "__main__":
    main()
