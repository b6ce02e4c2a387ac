"""Coverage of gml-prune over torchvision classification models: pruned to the target or a clear error.

For every model (``weights=None``): ``gml_prune.oneshot.prune`` to ``--target`` FLOPs (L1, uniform,
default round_to), the FLOPs ratio reached, prunable / all channel groups (and how many are split
by grouped convolutions), whether the pruned model runs and whether ``torch.export`` accepts it.
Errors are the one-line message a user gets.

``--models all`` walks ``torchvision.models.list_models(module=torchvision.models)``; ``--isolate``
runs each model in its own forked process (address space capped at ``--mem-gb``, ``--timeout`` seconds)
so that one huge model cannot take the machine's memory; such a row then says "not run".

    OMP_NUM_THREADS=1 python benchmarks/prune_coverage.py --out work_dirs/bench_prune_coverage.json
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/prune_coverage.py --models all --isolate --size 112 \
        --out work_dirs/bench_prune_coverage_all.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time

import torch
import torchvision

from gml_core.api import atomic_write_text, count_flops, count_params
from gml_prune.graph import analyze
from gml_prune.oneshot import prune

DEFAULT = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "regnet_y_400mf", "shufflenet_v2_x1_0",
           "mobilenet_v2", "mobilenet_v3_large", "mnasnet1_0", "efficientnet_b0", "densenet121", "googlenet",
           "squeezenet1_1", "vgg11_bn", "alexnet", "convnext_tiny", "vit_b_16", "swin_t", "swin_v2_t", "maxvit_t"]
#: models whose architecture fixes the input size (``input_size`` / ``image_size`` set at construction)
FIXED_SIZE = {"maxvit_t": 224}


def build(name: str, size: int) -> tuple[torch.nn.Module, list[int]]:
    kwargs: dict = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    size = FIXED_SIZE.get(name, size)
    if name.startswith("vit_"):                     # a multiple of the patch size (vit_b_32: 128 for 112)
        patch = int(name.rsplit("_", 1)[1])
        size = -(-size // patch) * patch
        kwargs["image_size"] = size
    if name == "inception_v3":
        size = max(size, 160)                       # its stem and reductions need at least ~75 pixels
    return torchvision.models.get_model(name, weights=None, **kwargs).eval(), [1, 3, size, size]


def channel_shares(model: torch.nn.Module, graph) -> tuple[float, float]:
    """Channels in prunable groups: share of all groups' channels (the input image and the classifier's
    outputs included), and share of the convolutions' output channels."""
    groups = [g for g in graph.groups if g.members]
    total, free = sum(g.size for g in groups), sum(g.size for g in groups if g.prunable)
    conv = [(g.size, g.prunable) for g in groups for m in g.members
            if m.role == "out" and isinstance(model.get_submodule(m.module), torch.nn.modules.conv._ConvNd)]
    return free / max(total, 1), sum(n for n, p in conv if p) / max(sum(n for n, _ in conv), 1)


def check(name: str, target: float, export: bool, size: int = 224) -> dict:
    try:
        model, shape = build(name, size)
    except Exception as exc:                                         # noqa: BLE001 - the row reports it
        return {"model": name, "status": "not run", "message": f"cannot build: {str(exc).splitlines()[0][:150]}"}
    row: dict = {"model": name, "input": shape[-1], "params_m": count_params(model) / 1e6}
    start = time.perf_counter()
    try:
        graph = analyze(model, shape)
        row["groups"] = f"{len(graph.prunable)} / {len([g for g in graph.groups if g.members])}"
        row["grouped"] = len(graph.blocks())
        row["channel_share"], row["conv_channel_share"] = channel_shares(model, graph)
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


def _child(conn, name: str, args: argparse.Namespace) -> None:
    import resource
    cap = int(args.mem_gb * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        conn.send(check(name, args.target, not args.no_export, args.size))
    except MemoryError:
        conn.send({"model": name, "status": "not run", "message": f"MemoryError (address space capped at "
                                                                  f"{args.mem_gb} GiB)"})


def isolated(name: str, args: argparse.Namespace) -> dict:
    """``check`` in a forked child with capped memory and time; a crash becomes a "not run" row."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, name, args))
    proc.start()
    child.close()
    ready = parent.poll(args.timeout)
    try:
        row = parent.recv() if ready else None
    except EOFError:                                                 # the child died without a result
        row = None
    if proc.is_alive():
        proc.kill()
    proc.join()
    if row is None:
        why = f"the process died (exit code {proc.exitcode}; memory capped at {args.mem_gb} GiB)" if ready \
            else f"over the {args.timeout} s limit"
        row = {"model": name, "status": "not run", "message": why}
    return row


def print_row(r: dict, shares: bool = False) -> None:
    if r["status"] != "pruned":
        print(f"| {r['model']} | {r.get('input', '')} | {r['status']}: {r['message']} | {r.get('groups', '-')} | "
              f"{r.get('grouped', '')} | | | | |", flush=True)
        return
    export = "ok" if r.get("export") is True else r.get("export", "-")
    share = f" {100 * r['channel_share']:.1f} | {100 * r['conv_channel_share']:.1f} |" if shares else ""
    print(f"| {r['model']} | {r['input']} | pruned | {r['groups']} | {r['grouped']} | {r['flops_ratio']:.3f} | "
          f"{'ok' if r['forward'] else 'FAIL'} | {export} | {r['prune_s']:.1f} |{share}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT, help="model names, or 'all'")
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--isolate", action="store_true", help="one forked process per model")
    parser.add_argument("--mem-gb", type=float, default=8.0, help="address-space cap of an isolated model")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per isolated model")
    parser.add_argument("--shares", action="store_true", help="also print the shares of prunable channels (%%)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = torchvision.models.list_models(module=torchvision.models) if args.models == ["all"] else args.models
    rows = []
    print("| model | input | result | prunable / all groups | grouped-conv groups | FLOPs ratio | forward | "
          "torch.export | prune s |" + (" channels prunable % | conv out-channels prunable % |" if args.shares else ""))
    print("|---|---:|---|---|---:|---:|---|---|---:|" + ("---:|---:|" if args.shares else ""))
    for name in names:
        r = isolated(name, args) if args.isolate else check(name, args.target, not args.no_export, args.size)
        rows.append(r)
        print_row(r, args.shares)
        if args.out:
            atomic_write_text(args.out, json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
