"""gml-qat: Fashion-MNIST top-1 of fp32, post-training quantization (PTQ) and QAT (IAO), all int8 on CPU.

1. fp32: ``gml run configs/qat/fmnist_fp32.toml`` (SmallCNN width 16, 28x28, 8 epochs).
2. PTQ: torch.ao FX static quantization of that model (``get_default_qconfig_mapping`` of the
   engine: histogram activation observers, per-channel weights), calibrated on ``--calib`` training
   images, no training.
3. QAT: ``gml run configs/qat/iao_fmnist.toml`` (IAO, FxQuantizer, same engine, init_from the fp32
   best checkpoint, 2 epochs, ``--qat-lr``); its int8 top-1 comes from the run's qat_report.json.

Every accuracy is on the 10,000-image test split (gml's validation split for this dataset).
``--weight-bits 4`` repeats PTQ and QAT with 4-bit weights (the integer range [-8, 7] inside int8
kernels; activations stay 8-bit), reusing the fp32 model with ``--reuse-fp32``.

    OMP_NUM_THREADS=1 python benchmarks/qat_fashion_mnist.py --out work_dirs/bench/qat_fmnist.json
    OMP_NUM_THREADS=1 python benchmarks/qat_fashion_mnist.py --reuse-fp32 --weight-bits 4 \
        --out work_dirs/bench/qat_fmnist_w4.json
    (add ``--qat-lr 0.005`` for the higher fine-tuning rate)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def gml_run(config: str, work_dir: Path, overrides: list[str]) -> dict:
    from gml_core._internal.config.loader import load_config
    from gml_core._internal.training.runner import run

    cfg = load_config(REPO / config, ["runtime.progress=false", *overrides], work_dir=str(work_dir))
    result = run(cfg)
    return {"metrics": result.metrics, "extra": result.extra}


def ptq_top1(checkpoint: Path, backend: str, calib: int, bundle, weight_bits: int = 8) -> float:
    """Static post-training quantization with torch.ao FX, evaluated in int8."""
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from gml_core._internal.checkpoint import load_weights
    from gml_core._internal.models.small_cnn import SmallCNN
    from gml_qat.engine import quantized_engine, quiet
    from gml_qat.quantizers.fx import backend_config

    model = SmallCNN(num_classes=10, in_channels=1, width=16)
    load_weights(model, checkpoint)
    model.eval()
    x_train = bundle.train.tensors[0]
    mapping = get_default_qconfig_mapping(backend)
    if weight_bits < 8:
        default = mapping.global_qconfig
        half = 2 ** (weight_bits - 1)
        mapping.set_global(QConfig(activation=default.activation,
                                   weight=default.weight.with_args(quant_min=-half, quant_max=half - 1)))
    with quiet(), quantized_engine(backend), torch.no_grad():
        prepared = prepare_fx(copy.deepcopy(model), mapping, (x_train[:2],),
                              backend_config=backend_config(backend))
        for i in range(0, calib, 256):
            prepared(x_train[i:min(i + 256, calib)])
        int8 = convert_fx(prepared, backend_config=backend_config(backend))
        x, y = bundle.val.tensors
        correct = sum(int((int8(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(y), 1000))
    return 100.0 * correct / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=REPO / "work_dirs" / "bench" / "qat_fmnist")
    parser.add_argument("--fp32-epochs", type=int, default=8)
    parser.add_argument("--qat-epochs", type=int, default=2)
    parser.add_argument("--calib", type=int, default=2048, help="PTQ calibration images")
    parser.add_argument("--qat-lr", type=float, default=0.001, help="QAT learning rate (the config's 0.001)")
    parser.add_argument("--weight-bits", type=int, default=8, help="weight bit width for PTQ and QAT (2-8)")
    parser.add_argument("--reuse-fp32", action="store_true", help="skip step 1 when its checkpoint exists")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from gml_core._internal.data.fashion_mnist import fashion_mnist

    start = time.time()
    fp32_dir, qat_dir = args.work_dir / "fp32", args.work_dir / f"iao_w{args.weight_bits}_lr{args.qat_lr:g}"
    ckpt = fp32_dir / "best.pth"
    if not (args.reuse_fp32 and ckpt.is_file()):
        gml_run("configs/qat/fmnist_fp32.toml", fp32_dir, [f"train.epochs={args.fp32_epochs}"])
    fp32_seconds = time.time() - start
    bundle = fashion_mnist()
    ptq = ptq_top1(ckpt, "x86", args.calib, bundle, args.weight_bits)
    bits = [f'algorithm.quantizer.custom_qconfig={{""={{weight={{bits={args.weight_bits}}}}}}}'] \
        if args.weight_bits < 8 else []
    gml_run("configs/qat/iao_fmnist.toml", qat_dir,
            [f'algorithm.model.init_from="{ckpt}"', f"train.epochs={args.qat_epochs}", f"train.lr={args.qat_lr}",
             *bits])
    report = json.loads((qat_dir / "qat_report.json").read_text())
    result = {
        "fp32_top1": report["fp32"]["top1"],  # the init_from checkpoint, evaluated by the QAT run
        "ptq_int8_top1": ptq,
        "qat_int8_top1": report["int8"]["top1"],
        "qat_minus_fp32": report["int8"]["top1"] - report["fp32"]["top1"],
        "weight_bits": args.weight_bits, "fp32_epochs": args.fp32_epochs, "qat_epochs": args.qat_epochs,
        "qat_lr": args.qat_lr, "ptq_calibration_images": args.calib,
        "engine": "x86", "threads": torch.get_num_threads(), "fp32_seconds": round(fp32_seconds, 1),
        "total_seconds": round(time.time() - start, 1), "load_average": os.getloadavg(),
    }
    print("| model | fp32 | PTQ int8 | QAT int8 | QAT - fp32 |")
    print("|---|---:|---:|---:|---:|")
    print(f"| SmallCNN w16, Fashion-MNIST, {args.weight_bits}-bit weights | {result['fp32_top1']:.2f} | "
          f"{ptq:.2f} | {result['qat_int8_top1']:.2f} | "
          f"{result['qat_minus_fp32']:+.2f} |")
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
