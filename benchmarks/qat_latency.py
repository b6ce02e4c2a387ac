"""gml-qat: int8 vs fp32 CPU latency and size on disk, per quantized engine, in one run.

Models: the digits CNN (``gml.SmallCNN(width=16)``, 1x16x16, as configs/qat/iao_digits.toml;
eager ``TorchDefaultQuantizer`` and ``FxQuantizer``), torchvision ``resnet18`` and
``mobilenet_v2`` (3x224x224, ``FxQuantizer``: their residual additions need FX). Each model is
prepared for QAT by gml's quantizers, calibrated on a few random batches and converted to int8;
latency is measured on the frozen TorchScript artifacts that IAO exports (fp32 eager is shown
too). Latency: median over interleaved rounds of the median of N forward passes, batch 1,
``--threads`` intra-op threads (weights do not change the timing, so random weights are used).

    python benchmarks/qat_latency.py --threads 1 --out work_dirs/bench_qat_latency.json
"""

from __future__ import annotations

import argparse
import io
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
from gml_qat.quantizers.eager import TorchDefaultQuantizer
from gml_qat.quantizers.fx import FxQuantizer

BACKENDS = ("fbgemm", "x86", "onednn", "qnnpack")
FUSE = {"backbone": [["conv1", "bn1", "relu"]],
        **{f"backbone.layer{i}.0": [["conv", "bn", "relu"]] for i in range(1, 5)}}


def models() -> dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...], list[str]]]:
    import torchvision

    return {
        "digits CNN": (lambda: SmallCNN(num_classes=10, in_channels=1, width=16), (1, 1, 16, 16), ["eager", "fx"]),
        "resnet18": (lambda: torchvision.models.resnet18(), (1, 3, 224, 224), ["fx"]),
        "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), (1, 3, 224, 224), ["fx"]),
    }


def quantizer(mode: str, backend: str) -> Any:
    if mode == "eager":
        return TorchDefaultQuantizer(backend, "backbone.conv1", "backbone.layer4", FUSE)
    return FxQuantizer(backend)


def state_bytes(model: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


@torch.inference_mode()
def median_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_model(name: str, make: Callable[[], torch.nn.Module], shape: tuple[int, ...], modes: list[str],
                runs: int, rounds: int, batch: int) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    fp32 = make().eval()
    x = torch.randn(batch, *shape[1:])
    fp32_ts = to_torchscript(fp32, x)
    variants: dict[str, tuple[Any, str | None]] = {"fp32 eager": (fp32, None), "fp32 TorchScript": (fp32_ts, None)}
    sizes = {"fp32": (len(torchscript_bytes(fp32_ts)), state_bytes(fp32))}
    for mode in modes:
        for backend in BACKENDS:
            if backend not in torch.backends.quantized.supported_engines:
                continue
            q = quantizer(mode, backend)
            prepared = q.prepare(make(), (torch.randn(2, *shape[1:]),))
            with torch.no_grad():
                for _ in range(3):
                    prepared(torch.randn(4, *shape[1:]))
            int8 = q.convert(prepared)
            torch.backends.quantized.engine = backend
            ts = to_torchscript(int8, x)
            key = f"int8 {mode} {backend}"
            variants[key] = (ts, backend)
            sizes[key] = (len(torchscript_bytes(ts)), state_bytes(int8))
    for model, backend in variants.values():  # warm-up (TorchScript profiling runs, allocator)
        if backend:
            torch.backends.quantized.engine = backend
        with torch.inference_mode():
            for _ in range(5):
                model(x)
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for key, (model, backend) in variants.items():
            if backend:
                torch.backends.quantized.engine = backend
            samples[key].append(median_ms(lambda: model(x), runs))
    fp32_best = min(statistics.median(samples["fp32 eager"]), statistics.median(samples["fp32 TorchScript"]))
    rows = []
    for key, values in samples.items():
        ms = statistics.median(values)
        size_key = key if key in sizes else "fp32"
        ts_size, sd_size = sizes[size_key]
        rows.append({"model": name, "variant": key, "ms": ms, "speedup_vs_best_fp32": fp32_best / ms,
                     "torchscript_bytes": ts_size, "state_dict_bytes": sd_size})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20, help="forward passes per round (median)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=None, help="subset of: digits CNN, resnet18, mobilenet_v2")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    rows = []
    for name, (make, shape, modes) in models().items():
        if args.models and name not in args.models:
            continue
        rows += bench_model(name, make, shape, modes, args.runs, args.rounds, args.batch)
    meta = {"torch": torch.__version__, "threads": args.threads, "batch": args.batch, "runs": args.runs,
            "rounds": args.rounds, "cpu": platform.processor() or platform.machine(),
            "load_average": os.getloadavg(), "seconds": round(time.time() - start, 1)}
    print("| model | variant | latency (ms) | speed-up vs best fp32 | TorchScript size | state dict size |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['variant']} | {r['ms']:.3f} | {r['speedup_vs_best_fp32']:.2f}x | "
              f"{r['torchscript_bytes'] / 1024:.0f} KiB | {r['state_dict_bytes'] / 1024:.0f} KiB |")
    print(json.dumps(meta))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
