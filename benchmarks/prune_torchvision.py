"""gml-prune vs Torch-Pruning: torchvision models pruned to ~50% FLOPs, CPU latency measured interleaved.

Both tools prune the same randomly initialised model (``weights=None``) with L1-norm channel
importance and a uniform per-group ratio found by bisection so that FLOPs <= target; the final
classifier is kept. gml runs once per ``--round-to`` value (its default is the first listed after
1), Torch-Pruning (if installed; else its rows are skipped) with ``round_to`` None and 16
(``--tp-round-to``). ``--latency-batches B ...`` adds gml's ``allocation = "latency"`` (a latency
table measured at batch B, ``round_to`` 16, cached in ``$GML_PRUNE_LATENCY_CACHE``), one model per B;
``B1+B2`` uses the tables of both batches, each relative to its whole model, summed.
Params and FLOPs come from ``gml_core.api`` (torch's flop counter) for every model.

Latency: for each batch size, ``--rounds`` rounds; in each round every model (original and pruned,
order rotated each round) runs ``--warmup`` forward passes and then ``--repeats`` timed ones, and
contributes their median; the figure is the median over rounds. ``torch.inference_mode``,
``--threads`` intra-op threads. Both the wall time and the thread's CPU time are recorded; on a
loaded shared machine the CPU time is the stable one (single thread: all work runs in it).

    OMP_NUM_THREADS=1 python benchmarks/prune_torchvision.py --threads 1 --out work_dirs/bench_prune_tv.json
    OMP_NUM_THREADS=1 python benchmarks/prune_torchvision.py --round-to 16 --latency-batches 1 8 --tp-round-to none
    OMP_NUM_THREADS=1 python benchmarks/prune_torchvision.py --models densenet121 efficientnet_b0 \
        convnext_tiny vit_b_16 --batches 1 --round-to 16 --rounds 3 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

from gml_core.api import atomic_write_text, count_flops, count_params
from gml_prune.oneshot import prune


def classifier(model: nn.Module) -> nn.Module:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def tp_prune(model: nn.Module, shape: list[int], target: float, round_to: int | None) -> tuple[nn.Module, float]:
    """Torch-Pruning's MetaPruner (group L1) at the largest uniform ratio meeting the FLOPs target."""
    import torch_pruning as tp

    full = count_flops(model, shape)
    heads = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}

    def pruned(ratio: float) -> nn.Module:
        m = copy.deepcopy(model)
        mapping = {sub: heads[orig] for sub, orig in zip(m.modules(), model.modules()) if orig in heads}
        extra = {"num_heads": mapping} if mapping else {}
        pruner = tp.pruner.MetaPruner(m, torch.randn(*shape), importance=tp.importance.GroupMagnitudeImportance(p=1),
                                      pruning_ratio=ratio, ignored_layers=[classifier(m)], round_to=round_to, **extra)
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
    if best is None:
        raise RuntimeError(f"no ratio up to {hi} reaches {target:.0%} FLOPs")
    return best


@torch.inference_mode()
def latencies(models: dict[str, nn.Module], shape: list[int], rounds: int, repeats: int, warmup: int) -> dict:
    """``{"wall"|"cpu": {name: median over rounds of the per-round median ms}}``, models interleaved
    (order rotated each round). ``cpu`` is the calling thread's CPU time (``time.thread_time``): with
    one intra-op thread all work runs there, and it is far less disturbed by other jobs on a shared
    machine than wall time."""
    x = torch.randn(*shape)
    names = list(models)
    per = {clock: {k: [] for k in names} for clock in ("wall", "cpu")}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            model = models[name]
            for _ in range(warmup):
                model(x)
            wall, cpu = [], []
            for _ in range(repeats):
                start, start_cpu = time.perf_counter(), time.thread_time()
                model(x)
                wall.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
            per["wall"][name].append(1000 * statistics.median(wall))
            per["cpu"][name].append(1000 * statistics.median(cpu))
    return {clock: {k: statistics.median(v) for k, v in d.items()} for clock, d in per.items()}


def exports(model: nn.Module, shape: list[int]) -> bool:
    try:
        torch.export.export(model, (torch.randn(*shape),))
        return True
    except Exception:                                                # noqa: BLE001 - reported as "no"
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "mobilenet_v2"])
    parser.add_argument("--target", type=float, default=0.5, help="FLOPs fraction to keep")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--round-to", type=int, nargs="+", default=[1, 8, 16, 32])
    parser.add_argument("--latency-batches", nargs="*", default=[],
                        help="also gml allocation=\"latency\" with a table measured at each of these batches "
                             "(\"1+8\": both tables, mixed)")
    parser.add_argument("--no-tp", action="store_true", help="skip Torch-Pruning even when installed")
    parser.add_argument("--tp-round-to", nargs="+", default=["none", "16"], help="Torch-Pruning round_to values")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--export-check", action="store_true", help="also check torch.export of every model")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    try:
        import torch_pruning  # noqa: F401
        have_tp = not args.no_tp
    except ImportError:
        have_tp = False
        print("Torch-Pruning is not installed: its rows are skipped")
    shape = [1, 3, args.size, args.size]
    tp_rounds = [None if v.lower() == "none" else int(v) for v in args.tp_round_to]
    load = [os.getloadavg()]
    rows = []
    for name in args.models:
        base = torchvision.models.get_model(name, weights=None, num_classes=1000).eval()
        models, seconds, notes = {"original": base}, {"original": 0.0}, {}
        for round_to in args.round_to:
            start = time.perf_counter()
            key = f"gml-prune L1 uniform, round_to {round_to}"
            models[key] = prune(base, shape, args.target, round_to=round_to).eval()
            seconds[key] = time.perf_counter() - start
        for batch in args.latency_batches:
            start = time.perf_counter()
            key = f"gml-prune L1 latency (table b{batch}), round_to 16"
            batches = [int(b) for b in str(batch).split("+")]
            models[key] = prune(base, shape, args.target, allocation="latency",
                                latency_batch=batches[0] if len(batches) == 1 else batches).eval()
            seconds[key] = time.perf_counter() - start
        for round_to in (tp_rounds if have_tp else ()):
            start = time.perf_counter()
            try:
                theirs, ratio = tp_prune(base, shape, args.target, round_to)
            except Exception as exc:                                 # noqa: BLE001 - reported in the table
                notes[f"Torch-Pruning round_to {round_to}"] = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
                continue
            key = f"Torch-Pruning L1, round_to {round_to}, ratio {ratio:.3f}"
            models[key] = theirs.eval()
            seconds[key] = time.perf_counter() - start
        with torch.inference_mode():
            x = torch.randn(*shape)
            assert all(m(x).shape == base(x).shape for m in models.values())
        lat = {b: latencies(models, [b, *shape[1:]], args.rounds, args.repeats, args.warmup) for b in args.batches}
        ref = {"params": count_params(base), "flops": count_flops(base, shape)}
        for method, m in models.items():
            row = {"model": name, "method": method, "params": count_params(m), "flops": count_flops(m, shape),
                   "prune_s": seconds[method]}
            row["flops_ratio"] = row["flops"] / ref["flops"]
            row["conv_out"] = [c.out_channels for c in m.modules() if isinstance(c, nn.Conv2d)]
            for b in args.batches:
                for clock in ("cpu", "wall"):
                    row[f"{clock}_b{b}_ms"] = lat[b][clock][method]
                    row[f"{clock}_b{b}_ratio"] = lat[b][clock][method] / lat[b][clock]["original"]
            if args.export_check:
                row["torch_export"] = exports(m, shape)
            rows.append(row)
        for method, note in notes.items():
            rows.append({"model": name, "method": method, "note": note})
        load.append(os.getloadavg())
    lat_cols = " | ".join(f"b{b} CPU ms | b{b} ratio (CPU) | b{b} ratio (wall)" for b in args.batches)
    exp = " torch.export |" if args.export_check else ""
    print(f"| model | method | params (M) | FLOPs (G) | FLOPs ratio | {lat_cols} | prune s |{exp}")
    print("|---|---|---:|---:|---:|" + "---:|---:|---:|" * len(args.batches) + "---:|" + ("---|" if exp else ""))
    for r in rows:
        if "note" in r:
            print(f"| {r['model']} | {r['method']} | {r['note']} |")
            continue
        lats = " | ".join(f"{r[f'cpu_b{b}_ms']:.1f} | {r[f'cpu_b{b}_ratio']:.3f} | {r[f'wall_b{b}_ratio']:.3f}"
                          for b in args.batches)
        print(f"| {r['model']} | {r['method']} | {r['params'] / 1e6:.2f} | {r['flops'] / 1e9:.3f} | "
              f"{r['flops_ratio']:.3f} | {lats} | {r['prune_s']:.1f} |"
              + (f" {'yes' if r['torch_export'] else 'no'} |" if exp else ""))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), input {args.size}x{args.size}, "
          f"batches {args.batches}, {args.rounds} interleaved rounds x ({args.warmup} warm-up + "
          f"{args.repeats} timed) forward passes, median of round medians; CPU = thread CPU time; "
          f"load average (1, 5, 15 min) at start and after each model: {[tuple(round(v, 2) for v in a) for a in load]}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps({"rows": rows, "threads": torch.get_num_threads(), "shape": shape,
                                              "batches": args.batches, "rounds": args.rounds, "load": load,
                                              "repeats": args.repeats}, indent=2))


if __name__ == "__main__":
    main()
