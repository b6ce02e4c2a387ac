"""gml-mmdet: speed of the pure-torch mmcv-op fallbacks, called through mmcv.ops, vs. torchvision / torch directly.

Interleaved (A, B, A, B, ...) after a warm-up; the median of ``--repeats`` timings of each; 1 thread:

* NMS: ``mmcv.ops.nms`` (fallback) vs ``torchvision.ops.nms`` on 2,000 random boxes;
* batched NMS: ``mmcv.ops.batched_nms`` vs ``torchvision.ops.batched_nms`` (2,000 boxes, 10 classes);
* RoIAlign forward+backward: ``mmcv.ops.roi_align`` vs ``torchvision.ops.roi_align`` (256 RoIs on a
  2x64x50x50 map, 7x7, sampling 2);
* sigmoid focal loss forward+backward: ``mmcv.ops.sigmoid_focal_loss`` (fallback kernel formulas)
  vs mmdet's own pure-torch ``py_sigmoid_focal_loss`` (8,000 x 80 logits).

    OMP_NUM_THREADS=1 python benchmarks/mmdet_ops.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def interleaved(a, b, repeats: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from gml_mmdet.ops import install

    install()
    import torchvision
    from mmcv.ops import batched_nms, nms, roi_align, sigmoid_focal_loss
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(2000, 2, generator=g) * 500
    boxes = torch.cat([xy, xy + torch.rand(2000, 2, generator=g) * 100 + 5], 1)
    scores = torch.rand(2000, generator=g)
    idxs = torch.randint(0, 10, (2000,), generator=g)
    feat = torch.rand(2, 64, 50, 50, generator=g, requires_grad=True)
    rxy = torch.rand(256, 2, generator=g) * 30
    rois = torch.cat([torch.randint(0, 2, (256, 1), generator=g).float(), rxy, rxy + 10 + torch.rand(256, 2, generator=g) * 10], 1)
    logits = torch.randn(8000, 80, generator=g, requires_grad=True)
    target = torch.randint(0, 81, (8000,), generator=g)
    onehot = torch.nn.functional.one_hot(target, 81)[:, :80].float()

    def ra(fn):
        def run():
            feat.grad = None
            fn(feat, rois).sum().backward()
        return run

    def fl(fn):
        def run():
            logits.grad = None
            fn().backward()
        return run

    cases = [
        ("NMS (2,000 boxes)", lambda: nms(boxes, scores, 0.5), lambda: torchvision.ops.nms(boxes, scores, 0.5)),
        ("batched NMS (2,000 boxes, 10 classes)",
         lambda: batched_nms(boxes, scores, idxs, dict(type="nms", iou_threshold=0.5)),
         lambda: torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)),
        ("RoIAlign fwd+bwd (256 RoIs, 7x7)", ra(lambda f, r: roi_align(f, r, (7, 7), 1.0, 2, "avg", True)),
         ra(lambda f, r: torchvision.ops.roi_align(f, r, (7, 7), 1.0, 2, True))),
        ("sigmoid focal loss fwd+bwd (8,000 x 80)",
         fl(lambda: sigmoid_focal_loss(logits, target, 2.0, 0.25, None, "mean")),
         fl(lambda: py_sigmoid_focal_loss(logits, onehot, None, 2.0, 0.25, "mean"))),
    ]
    print("| op | gml-mmdet fallback via mmcv.ops (ms) | reference (ms) | ratio |\n|---|---|---|---|")
    for name, a, b in cases:
        ma, mb = interleaved(a, b, args.repeats)
        print(f"| {name} | {ma:.3f} | {mb:.3f} | {ma / mb:.2f} |")


if __name__ == "__main__":
    main()
