"""gml-qat: int8 vs fp32 CPU latency, interleaved, per batch size and thread count, in two call orders.

Models: torchvision ``resnet18`` and ``mobilenet_v2`` (3x224x224, ``FxQuantizer``: their residual
additions need FX) and the digits CNN (``gml.SmallCNN(width=16)``, 1x16x16; eager
``TorchDefaultQuantizer`` with its automatically derived ``fuse_config``). Each model is prepared
by gml's quantizer, calibrated on a few random batches, converted to int8 and exported, fp32 and
int8 alike, as frozen TorchScript (weights do not change the timing, so random weights are used).

Every setting (batch, threads) is timed by ``gml_qat.latency.interleaved_latency`` exactly as the
IAO summary does: fresh copies of both TorchScript files, warm-up, then fp32 and int8 passes
alternating; medians of ``--passes`` passes each, speed-up = median of back-to-back pass ratios.
The settings run in one order and then in the reverse order, to show the figures do not depend on
what ran before. ``--reuse`` also times one int8 copy that has run every earlier setting (what a
long-lived process sees) against a fresh one. ``--sequential N`` also repeats, N times per setting,
the method the IAO summary used before (50 fp32 passes, then 50 int8 passes, after 10 warm-up
passes each) and records the speed-ups it gives.

    python benchmarks/qat_latency.py --out work_dirs/bench/qat_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from gml_core._internal.models.small_cnn import SmallCNN
from gml_qat.export import to_torchscript, torchscript_bytes
from gml_qat.latency import fresh_torchscript, interleaved_latency
from gml_qat.quantizers.eager import TorchDefaultQuantizer
from gml_qat.quantizers.fx import FxQuantizer


def models() -> dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...], str]]:
    import torchvision

    return {
        "resnet18": (lambda: torchvision.models.resnet18(), (3, 224, 224), "fx"),
        "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), (3, 224, 224), "fx"),
        "digits CNN": (lambda: SmallCNN(num_classes=10, in_channels=1, width=16), (1, 16, 16), "eager"),
    }


def export_pair(make: Callable[[], torch.nn.Module], shape: tuple[int, ...], mode: str,
                engine: str) -> tuple[bytes, bytes, dict[str, Any]]:
    """Frozen TorchScript bytes of the fp32 model and of its int8 conversion."""
    torch.manual_seed(0)
    fp32 = make().eval()
    example = torch.randn(1, *shape)
    quantizer = TorchDefaultQuantizer(engine) if mode == "eager" else FxQuantizer(engine)
    prepared = quantizer.prepare(fp32, (torch.randn(2, *shape),))
    with torch.no_grad():
        for _ in range(3):
            prepared(torch.randn(4, *shape))
    torch.backends.quantized.engine = engine
    int8 = quantizer.convert(prepared)
    info = {"quantizer": quantizer.describe()}
    if mode == "eager":
        info["fusions"] = sum(len(v) for v in quantizer.fused.values())
    fp32_bytes, int8_bytes = (torchscript_bytes(to_torchscript(m, example)) for m in (fp32, int8))
    info.update(fp32_torchscript_bytes=len(fp32_bytes), int8_torchscript_bytes=len(int8_bytes))
    return fp32_bytes, int8_bytes, info


@torch.inference_mode()
def sequential_ms(model: Any, x: torch.Tensor, passes: int = 50, warmup: int = 10) -> float:
    """The previous IAO method: warm-up, then the median of ``passes`` passes of this model alone."""
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench(name: str, fp32: bytes, int8: bytes, shape: tuple[int, ...], settings: list[tuple[int, int]],
          passes: int, warmup: int, reuse: bool, sequential: int) -> list[dict[str, Any]]:
    rows = []
    orders = {"forward": settings, "reverse": settings[::-1]}
    for order, sequence in orders.items():
        long_lived = fresh_torchscript(int8)
        for batch, threads in sequence:
            torch.set_num_threads(threads)
            x = torch.randn(batch, *shape)
            lat = interleaved_latency(fresh_torchscript(fp32), fresh_torchscript(int8), x, passes, warmup)
            row = {"model": name, "order": order, "batch": batch, "threads": threads, **lat.to_dict()}
            if reuse:
                stale = interleaved_latency(long_lived, fresh_torchscript(int8), x, passes, warmup)
                row["reused_int8_ms"], row["reused_over_fresh"] = stale.baseline_ms, stale.speedup
            if sequential and order == "forward":
                row["sequential_speedups"] = [
                    sequential_ms(fresh_torchscript(fp32), x) / sequential_ms(fresh_torchscript(int8), x)
                    for _ in range(sequential)]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """One line per (model, batch, threads): both orders side by side and their difference."""
    out = ["| model | batch | threads | fp32 ms | int8 ms | speed-up (forward order) | speed-up (reverse order) "
           "| orders differ | stable |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    keyed = {(r["model"], r["batch"], r["threads"], r["order"]): r for r in rows}
    for (model, batch, threads, order), r in keyed.items():
        if order != "forward":
            continue
        rev = keyed[(model, batch, threads, "reverse")]
        diff = abs(r["speedup"] - rev["speedup"]) / min(r["speedup"], rev["speedup"])
        out.append(f"| {model} | {batch} | {threads} | {r['baseline_ms']:.2f} | {r['candidate_ms']:.2f} | "
                   f"{r['speedup']:.2f}x ({r['paired_quartiles'][0]:.2f}-{r['paired_quartiles'][2]:.2f}) | "
                   f"{rev['speedup']:.2f}x ({rev['paired_quartiles'][0]:.2f}-{rev['paired_quartiles'][2]:.2f}) | "
                   f"{100 * diff:.1f}% | {'yes' if r['stable'] and rev['stable'] else 'no'} |")
    extra = [r for r in rows if r.get("sequential_speedups") or "reused_over_fresh" in r]
    if extra:
        out += ["", "| model | batch | threads | order | previous sequential method, speed-ups | "
                "int8 copy that ran earlier settings / fresh copy |", "|---|---:|---:|---|---|---:|"]
        for r in extra:
            seq = ", ".join(f"{v:.2f}x" for v in r.get("sequential_speedups", [])) or "-"
            reused = f"{r['reused_over_fresh']:.2f}x" if "reused_over_fresh" in r else "-"
            out.append(f"| {r['model']} | {r['batch']} | {r['threads']} | {r['order']} | {seq} | {reused} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["resnet18", "mobilenet_v2"],
                        help="subset of: resnet18, mobilenet_v2, 'digits CNN'")
    parser.add_argument("--engine", default="x86", help="torch.backends.quantized engine of the int8 models")
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--passes", type=int, default=50, help="timed passes per model and setting (median)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="also time an int8 copy that ran earlier settings")
    parser.add_argument("--sequential", type=int, default=0, metavar="N",
                        help="also repeat the previous sequential method N times per setting")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = [(b, t) for b in args.batches for t in args.threads]
    start, load_before = time.time(), os.getloadavg()
    rows, infos = [], {}
    for name in args.models:
        make, shape, mode = models()[name]
        fp32, int8, infos[name] = export_pair(make, shape, mode, args.engine)
        rows += bench(name, fp32, int8, shape, settings, args.passes, args.warmup, args.reuse, args.sequential)
    meta = {"torch": torch.__version__, "engine": args.engine, "passes": args.passes, "warmup": args.warmup,
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "load_average_before": load_before, "load_average_after": os.getloadavg(), "models": infos,
            "seconds": round(time.time() - start, 1)}
    print(table(rows))
    print(json.dumps(meta))
    if args.out:
        from gml_core.api import atomic_write_text

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
