"""Does torchao's pt2e QAT flow earn a place next to gml-qat's torch.ao quantizers? (digits CNN, CPU)

prepare_qat_pt2e with ``X86InductorQuantizer`` (torchao), one calibration batch, convert_pt2e;
then batch-1 latency of: fp32 eager, pt2e int8 eager, and both after ``torch.compile`` (with the
compile time). Compare with benchmarks/qat_latency.py (FX/eager int8 without compilation).

    OMP_NUM_THREADS=1 python benchmarks/qat_pt2e_check.py
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time
import warnings

import torch

from gml_core._internal.models.small_cnn import SmallCNN


def median_ms(fn, x: torch.Tensor, runs: int = 30) -> float:
    with torch.inference_mode():
        for _ in range(5):
            fn(x)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    warnings.simplefilter("ignore")
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    model = SmallCNN(width=16)
    x = torch.randn(1, 1, 16, 16)
    out: dict[str, float] = {}
    start = time.time()
    batch = torch.export.Dim("batch")
    exported = torch.export.export(copy.deepcopy(model).train(), (torch.randn(8, 1, 16, 16),),
                                   dynamic_shapes=({0: batch},)).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_qat=True))
    prepared = prepare_qat_pt2e(exported, quantizer)
    prepared(torch.randn(8, 1, 16, 16))
    int8 = convert_pt2e(prepared)
    out["export_prepare_convert_s"] = time.time() - start
    out["fp32_eager_ms"] = median_ms(model.eval(), x)
    out["pt2e_int8_eager_ms"] = median_ms(int8, x)
    start = time.time()
    compiled = torch.compile(int8)
    median_ms(compiled, x, 3)
    out["pt2e_int8_compile_s"] = time.time() - start
    out["pt2e_int8_compiled_ms"] = median_ms(compiled, x)
    start = time.time()
    compiled_fp32 = torch.compile(model.eval())
    median_ms(compiled_fp32, x, 3)
    out["fp32_compile_s"] = time.time() - start
    out["fp32_compiled_ms"] = median_ms(compiled_fp32, x)
    out["load_average"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
