"""Coverage of gml-prune over torchvision classification models: pruned to the target or a clear error.

For every model (``weights=None``): ``gml_prune.oneshot.prune`` to ``--target`` FLOPs, the FLOPs
ratio reached, prunable / all channel groups, whether the pruned model runs and whether
``torch.export`` accepts it. Errors are the one-line message a user gets.

    OMP_NUM_THREADS=1 python benchmarks/prune_coverage.py --out work_dirs/bench_prune_coverage.json
    OMP_NUM_THREADS=1 python benchmarks/prune_coverage.py --models all     # every torchvision classifier
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchvision

from gml_core.api import atomic_write_text, count_flops
from gml_prune.graph import analyze
from gml_prune.oneshot import prune

DEFAULT = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "regnet_y_400mf", "shufflenet_v2_x1_0",
           "mobilenet_v2", "mobilenet_v3_large", "mnasnet1_0", "efficientnet_b0", "densenet121", "googlenet",
           "squeezenet1_1", "vgg11_bn", "alexnet", "convnext_tiny", "vit_b_16", "swin_t", "swin_v2_t", "maxvit_t"]


def check(name: str, target: float, export: bool) -> dict:
    size = 299 if name == "inception_v3" else 224
    shape = [1, 3, size, size]
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    row: dict = {"model": name}
    start = time.perf_counter()
    try:
        graph = analyze(model, shape)
        row["groups"] = f"{len(graph.prunable)} / {len([g for g in graph.groups if g.members])}"
        small = prune(model, shape, target).eval()
    except Exception as exc:                                         # noqa: BLE001 - the row reports it
        row.update(status="error", message=str(exc).splitlines()[0][:200])
        return row
    row["prune_s"] = time.perf_counter() - start
    row["flops_ratio"] = count_flops(small, shape) / count_flops(model, shape)
    x = torch.randn(*shape)
    with torch.inference_mode():
        row["forward"] = small(x).shape == model(x).shape
    if export:
        try:
            torch.export.export(small, (x,))
            row["export"] = True
        except Exception as exc:                                     # noqa: BLE001
            row["export"] = f"no: {type(exc).__name__}"
    row["status"] = "pruned"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT, help="model names, or 'all'")
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    names = torchvision.models.list_models(module=torchvision.models) if args.models == ["all"] else args.models
    rows = []
    print("| model | result | prunable / all groups | FLOPs ratio | forward | torch.export | prune s |")
    print("|---|---|---|---:|---|---|---:|")
    for name in names:
        r = check(name, args.target, not args.no_export)
        rows.append(r)
        if r["status"] == "error":
            print(f"| {name} | error: {r['message']} | {r.get('groups', '-')} | | | | |", flush=True)
        else:
            print(f"| {name} | pruned | {r['groups']} | {r['flops_ratio']:.3f} | {'ok' if r['forward'] else 'FAIL'} | "
                  f"{'ok' if r.get('export') is True else r.get('export', '-')} | {r['prune_s']:.1f} |", flush=True)
    if args.out:
        atomic_write_text(args.out, json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
