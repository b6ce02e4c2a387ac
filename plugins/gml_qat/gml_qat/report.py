"""After QAT: convert to int8, evaluate fp32 and int8, measure size and CPU latency, export, summarise."""

from __future__ import annotations

import copy
import io
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from gml_core.api import atomic_write_text

from .engine import quantized_engine
from .export import format_size, latency_ms, save_bytes, save_int8_state, to_torchscript, torchscript_bytes

INT8_TORCHSCRIPT = "model_int8.ts"
INT8_STATE = "model_int8.pth"
REPORT = "qat_report.json"


def _log(message: str, level: int = logging.INFO) -> None:
    from mmengine.logging import print_log

    print_log(message, logger="current", level=level)


def _state_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


def _scripted(model: nn.Module, example: torch.Tensor, what: str) -> tuple[Any, str]:
    """Frozen TorchScript of ``model``, or ``(None, reason)`` when the model cannot be traced/scripted."""
    try:
        return to_torchscript(model, example), ""
    except Exception as exc:
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}"
        _log(f"IAO: no TorchScript for the {what} model ({reason}); timing eager execution", logging.WARNING)
        return None, reason


def int8_report(quantizer: Any, prepared: nn.Module, float_start: nn.Module, from_checkpoint: bool, run: Any,
                work_dir: Path, config: Any, float_spec: Mapping[str, Any],
                input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Everything the summary shows, also written to ``qat_report.json``."""
    backend = quantizer.backend
    shape = (config.latency_batch_size, *input_shape[1:])
    example = torch.randn(shape)
    with quantized_engine(backend):
        int8 = quantizer.convert(prepared)
        int8_top1 = run.evaluate(int8).get("accuracy/top1", float("nan"))
        if from_checkpoint:
            fp32_model, weights = float_start, "init_from"
        else:
            fp32_model, weights = quantizer.fake_quant_disabled(prepared).cpu().eval(), "QAT weights, fake quant off"
        fp32_top1 = run.evaluate(fp32_model).get("accuracy/top1", float("nan"))
        meta = {"backend": backend, "quantizer": quantizer.spec(), "input_shape": list(shape)}
        fp32_eager = copy.deepcopy(float_start).eval()
        int8_ts, int8_why = _scripted(int8, example, "int8")
        fp32_ts, _ = _scripted(copy.deepcopy(float_start), example, "fp32")
        int8_bytes = torchscript_bytes(int8_ts, meta) if int8_ts is not None else None
        fp32_bytes = torchscript_bytes(fp32_ts) if fp32_ts is not None else None
        scripted = int8_ts is not None and fp32_ts is not None
        runs = config.latency_runs
        fp32_ms = latency_ms(fp32_ts if scripted else fp32_eager, example, runs)
        int8_ms = latency_ms(int8_ts if scripted else int8, example, runs)
    files: dict[str, str] = {}
    if config.export:
        if int8_bytes is not None:
            files["int8_torchscript"] = str(save_bytes(int8_bytes, work_dir / INT8_TORCHSCRIPT).resolve())
        files["int8_state_dict"] = str(save_int8_state(int8, work_dir / INT8_STATE, float_spec, quantizer.spec(),
                                                       input_shape).resolve())
    report = {
        "quantizer": quantizer.spec(),
        "fp32": {"top1": fp32_top1, "weights": weights, "torchscript_bytes": fp32_bytes and len(fp32_bytes),
                 "state_dict_bytes": _state_bytes(float_start)},
        "int8": {"top1": int8_top1, "torchscript_bytes": int8_bytes and len(int8_bytes),
                 "state_dict_bytes": _state_bytes(int8), "torchscript_error": int8_why or None},
        "latency": {"batch_size": shape[0], "threads": torch.get_num_threads(), "runs": runs,
                    "fp32_ms": fp32_ms, "int8_ms": int8_ms, "engine": backend,
                    "executed": "TorchScript (frozen)" if scripted else "eager"},
        "files": files,
    }
    files["report"] = str(atomic_write_text(work_dir / REPORT, json.dumps(report, indent=2)).resolve())
    _log(f"IAO: int8 top1 {int8_top1:.2f} vs fp32 {fp32_top1:.2f} ({weights}); "
         f"latency {fp32_ms:.3f} -> {int8_ms:.3f} ms")
    return report


def summary_rows(quantizer: Any, report: Mapping[str, Any]) -> dict[str, str]:
    """The rows IAO adds to the ``gml run`` summary."""
    fp32, int8, lat = report["fp32"], report["int8"], report["latency"]
    rows = {"quantizer": quantizer.describe()}
    rows[f"fp32 top1 ({fp32['weights']})"] = f"{fp32['top1']:.2f}"
    rows["int8 top1"] = f"{int8['top1']:.2f} ({int8['top1'] - fp32['top1']:+.2f})"
    kind = "torchscript_bytes" if fp32["torchscript_bytes"] and int8["torchscript_bytes"] else "state_dict_bytes"
    label = "TorchScript" if kind == "torchscript_bytes" else "state dict"
    rows[f"fp32 / int8 size ({label})"] = (f"{format_size(fp32[kind])} / {format_size(int8[kind])} "
                                          f"({fp32[kind] / int8[kind]:.1f}x)")
    threads = f"{lat['threads']} thread{'s' if lat['threads'] != 1 else ''}"
    rows[f"fp32 / int8 CPU latency (batch {lat['batch_size']}, {threads})"] = (
        f"{lat['fp32_ms']:.3f} / {lat['int8_ms']:.3f} ms ({lat['fp32_ms'] / lat['int8_ms']:.2f}x)")
    if int8.get("torchscript_error"):
        rows["int8 TorchScript"] = f"not exported ({int8['torchscript_error']})"
    for key in ("int8_torchscript", "int8_state_dict", "report"):
        if report["files"].get(key):
            rows[key.replace("_", " ")] = report["files"][key]
    return rows
