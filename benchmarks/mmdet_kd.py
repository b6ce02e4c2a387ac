"""gml-mmdet: box mAP of a RetinaNet-R18 student alone vs. distilled from a RetinaNet-R34 teacher.

Every run is a shipped config of ``configs/mmdet`` through gml's runner (digits-detection set:
400 train / 100 val 64x64 canvases, CPU), with these overrides:

* teacher: ``retinanet_r18_digits.toml`` with ``backbone.depth=34`` (``--teacher-width``: its
  ``base_channels``, 16 like the student by default), seed 0, trained once;
* student alone: ``retinanet_r18_digits.toml``; KD: ``kd_retinanet_r18_digits.toml`` (PKD on the
  three FPN levels + dense sigmoid KD on the class logits of each level) from that teacher;
  same seeds (initial weights and data order) for both; ``--epochs`` epochs each, AdamW lr 0.002,
  cosine, batch 16. The reported mAP is the one after the last epoch (no checkpoint selection).

    OMP_NUM_THREADS=1 python benchmarks/mmdet_kd.py --out work_dirs/bench/mmdet_kd.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "mmdet"


def gml_run(config: Path, overrides: list[str]) -> dict:
    from gml_core._internal.config.loader import load_config
    from gml_core._internal.training.runner import run

    result = run(load_config(config, overrides))
    return dict(result.metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--work-dir", type=Path, default=Path("work_dirs/bench/mmdet_kd"))
    parser.add_argument("--teacher-width", type=int, default=16,
                        help="base_channels of the teacher's ResNet-34 (the student's ResNet-18 has 16)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    base = [f"train.epochs={args.epochs}", "runtime.progress=false", "runtime.log_interval=1000",
            "runtime.max_keep_ckpts=1"]
    teacher_dir = args.work_dir / "teacher"
    w = args.teacher_width
    arch = ["backbone.depth=34", f"backbone.base_channels={w}", f"neck.in_channels=[{2 * w}, {4 * w}, {8 * w}]"]
    teacher = gml_run(CONFIGS / "retinanet_r18_digits.toml",
                      [*base, *(f"algorithm.model.{a}" for a in arch), f'runtime.work_dir="{teacher_dir}"'])
    rows: dict = {f"teacher (R34, width {w})": {"0": teacher["coco/bbox_mAP"]}, "student alone (R18)": {}, "KD (R18)": {}}
    ckpt = teacher_dir / f"epoch_{args.epochs}.pth"
    for seed in args.seeds:
        alone = gml_run(CONFIGS / "retinanet_r18_digits.toml",
                        [*base, f"runtime.seed={seed}", f'runtime.work_dir="{args.work_dir}/alone_{seed}"'])
        kd = gml_run(CONFIGS / "kd_retinanet_r18_digits.toml",
                     [*base, f"runtime.seed={seed}", f'runtime.work_dir="{args.work_dir}/kd_{seed}"',
                      f'algorithm.distiller.distill_cfg.teacher[0].ckpt_path="{ckpt}"',
                      *(f"algorithm.distiller.distill_cfg.teacher[0].model.{a}" for a in arch)])
        rows["student alone (R18)"][str(seed)] = alone["coco/bbox_mAP"]
        rows["KD (R18)"][str(seed)] = kd["coco/bbox_mAP"]
    print("| run | mAP (mean) | per seed |\n|---|---|---|")
    for name, values in rows.items():
        v = list(values.values())
        print(f"| {name} | {statistics.mean(v):.1f} | {', '.join(f'{x:.1f}' for x in v)} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
