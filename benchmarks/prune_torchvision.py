"""gml-prune vs Torch-Pruning: torchvision models pruned to ~50% FLOPs, measured on CPU.

Both tools prune the same randomly initialised model with L1-norm channel importance
and a uniform per-layer ratio found by bisection so that FLOPs <= target; the final
classifier is kept. Params and FLOPs use gml_core._internal.resources (torch's flop counter)
for both. Latency: median of interleaved rounds (unpruned, gml, Torch-Pruning) of
median-of-N forward passes, batch 1, in this process's thread setting.

    OMP_NUM_THREADS=1 python benchmarks/prune_torchvision.py --out work_dirs/bench_prune_tv.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torchvision

from gml_core._internal.resources import count_flops, count_params
from gml_prune.export import prune_model
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.importance import channel_scores, search_uniform, top_masks
from gml_prune.report import measure_latency


def classifier(model: torch.nn.Module) -> torch.nn.Module:
    return model.fc if hasattr(model, "fc") else model.classifier[-1]


def gml_prune(model: torch.nn.Module, shape: list[int], target: float, round_to: int) -> torch.nn.Module:
    graph = analyze(model, shape)
    flops = FlopsModel(graph, model)
    counts = search_uniform(graph, lambda c: float(flops(c)), target * flops.full, 0.05, round_to)
    scores = {g.index: channel_scores(model, g, "l1") for g in graph.prunable}
    keep = {gi: torch.nonzero(m).flatten() for gi, m in top_masks(scores, counts).items()}
    return prune_model(model, graph, keep)


def tp_prune(model: torch.nn.Module, shape: list[int], target: float, round_to: int | None) -> tuple[torch.nn.Module, float]:
    import torch_pruning as tp

    full = count_flops(model, shape)

    def pruned(ratio: float) -> torch.nn.Module:
        m = copy.deepcopy(model)
        pruner = tp.pruner.MetaPruner(m, torch.randn(*shape), importance=tp.importance.GroupMagnitudeImportance(p=1),
                                      pruning_ratio=ratio, ignored_layers=[classifier(m)], round_to=round_to)
        pruner.step()
        return m

    lo, hi, best = 0.0, 0.95, None
    for _ in range(10):
        mid = (lo + hi) / 2
        m = pruned(mid)
        if count_flops(m, shape) <= target * full:
            hi, best = mid, (m, mid)
        else:
            lo = mid
    return best


def latencies(models: dict[str, torch.nn.Module], shape: list[int], rounds: int, repeats: int) -> dict[str, float]:
    per = {k: [] for k in models}
    for _ in range(rounds):
        for name, m in models.items():
            per[name].append(measure_latency(m, shape, repeats=repeats, budget_s=5.0))
    return {k: statistics.median(v) for k, v in per.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "mobilenet_v2"])
    parser.add_argument("--target", type=float, default=0.5, help="FLOPs fraction to keep")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.manual_seed(0)
    shape = [1, 3, args.size, args.size]
    rows = []
    for name in args.models:
        base = torchvision.models.get_model(name, num_classes=1000).eval()
        models, seconds = {"unpruned": base}, {"unpruned": 0.0}
        for round_to in (1, 16):
            start = time.perf_counter()
            key = f"gml-prune (L1, uniform, round_to {round_to})"
            models[key] = gml_prune(base, shape, args.target, round_to).eval()
            seconds[key] = time.perf_counter() - start
            start = time.perf_counter()
            theirs, ratio = tp_prune(base, shape, args.target, None if round_to == 1 else round_to)
            key = f"Torch-Pruning (L1, round_to {round_to}, ratio {ratio:.3f})"
            models[key] = theirs.eval()
            seconds[key] = time.perf_counter() - start
        x = torch.randn(*shape)
        with torch.no_grad():
            assert all(m(x).shape == base(x).shape for m in models.values())
        lat = latencies(models, shape, args.rounds, args.repeats)
        ref = {"params": count_params(base), "flops": count_flops(base, shape), "latency": lat["unpruned"]}
        for method, m in models.items():
            row = {"model": name, "method": method, "params": count_params(m), "flops": count_flops(m, shape),
                   "latency_ms": lat[method]}
            row.update(params_ratio=row["params"] / ref["params"], flops_ratio=row["flops"] / ref["flops"],
                       latency_ratio=row["latency_ms"] / ref["latency"])
            row["goal_met"] = row["latency_ratio"] <= row["flops_ratio"] + 0.1
            row["prune_s"] = seconds[method]
            rows.append(row)
    print("| model | method | params (M) | FLOPs (G) | FLOPs ratio | CPU latency b1 (ms) | latency ratio | "
          "latency <= FLOPs ratio + 0.1 | prune time (s) |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['method']} | {r['params'] / 1e6:.2f} | {r['flops'] / 1e9:.3f} | "
              f"{r['flops_ratio']:.3f} | {r['latency_ms']:.2f} | {r['latency_ratio']:.3f} | "
              f"{'yes' if r['goal_met'] else 'no'} | {r['prune_s']:.1f} |")
    print(f"torch threads: {torch.get_num_threads()}, input {shape}, {args.rounds} rounds x {args.repeats} runs")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"rows": rows, "threads": torch.get_num_threads(), "shape": shape}, indent=2))


if __name__ == "__main__":
    main()
