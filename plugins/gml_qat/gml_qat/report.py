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

from .counts import int8_flops, int8_params
from .engine import quantized_engine
from .export import format_size, save_bytes, save_int8_state, to_torchscript, torchscript_bytes
from .latency import describe, fresh_torchscript, interleaved_latency

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


#: how top-1 is decided when several classes share the maximal logit (frequent with int8 logits)
TIE_RULE = "argmax: among equal maximal logits the lowest class index is the prediction"


@torch.no_grad()
def top1(model: nn.Module, loader: Any) -> tuple[float, int]:
    """Top-1 accuracy (%) under ``TIE_RULE`` and the number of samples whose maximal logit is shared."""
    model.eval()
    correct = ties = total = 0
    for inputs, labels in loader:
        logits = model(inputs).float()
        top = logits.max(dim=1, keepdim=True).values
        first = (logits == top).int().argmax(dim=1)  # the first maximal index, whatever argmax's kernel does
        correct += int((first == labels).sum())
        ties += int(((logits == top).sum(dim=1) > 1).sum())
        total += len(labels)
    return 100.0 * correct / max(total, 1), ties


def score(model: nn.Module, run: Any) -> tuple[float, int | None]:
    """``(value, tied samples)`` of ``metric_name(run)``: top-1 under ``TIE_RULE`` for classification, the
    data's own metric otherwise (e.g. detection mAP, which has no ties to count)."""
    if run.metric is None:
        return top1(model, run.val_loader)
    return run.evaluate(model).get(run.indicator, float("nan")), None


def metric_name(run: Any) -> str:
    """The name the report gives its quality metric: ``top1`` or the data's indicator."""
    return "top1" if run.metric is None else run.indicator


def warmup_passes(passes: int) -> int:
    """Warm-up passes per model before timing: 10, fewer for tiny ``latency_runs`` (at least 2)."""
    return max(2, min(10, passes // 5))


def _counts(model: nn.Module, input_shape: tuple[int, ...], int8: bool) -> dict[str, Any]:
    """``{"params", "flops"}`` at batch 1 (None when a count fails: the report must not)."""
    from gml_core.api import count_flops, count_params

    shape = (1, *input_shape[1:])
    try:
        if int8:
            return {"params": int8_params(model), "flops": int8_flops(model, shape)}
        return {"params": count_params(model), "flops": count_flops(model, shape)}
    except Exception as exc:
        _log(f"IAO: cannot count FLOPs/params ({type(exc).__name__}: {exc})", logging.WARNING)
        return {"params": None, "flops": None}


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
    metric = metric_name(run)
    with quantized_engine(backend):
        int8 = quantizer.convert(prepared)
        int8_top1, int8_ties = score(int8, run)
        counts = {"fp32": _counts(copy.deepcopy(float_start), input_shape, int8=False),
                  "int8": _counts(int8, input_shape, int8=True)}
        if from_checkpoint:
            fp32_model, weights = float_start, "init_from"
        else:
            fp32_model, weights = quantizer.fake_quant_disabled(prepared).cpu().eval(), "QAT weights, fake quant off"
        fp32_top1, fp32_ties = score(fp32_model, run)
        meta = {"backend": backend, "quantizer": quantizer.spec(), "input_shape": list(shape)}
        fp32_eager = copy.deepcopy(float_start).eval()
        int8_ts, int8_why = _scripted(int8, example, "int8")
        fp32_ts, _ = _scripted(copy.deepcopy(float_start), example, "fp32")
        int8_bytes = torchscript_bytes(int8_ts, meta) if int8_ts is not None else None
        fp32_bytes = torchscript_bytes(fp32_ts) if fp32_ts is not None else None
        scripted = int8_ts is not None and fp32_ts is not None
        if scripted:  # fresh copies: the int8 one has run at no other batch size or thread count
            timed = fresh_torchscript(fp32_bytes), fresh_torchscript(int8_bytes)
        else:
            timed = fp32_eager, copy.deepcopy(int8)
        lat = interleaved_latency(*timed, example, config.latency_runs, warmup_passes(config.latency_runs))
    files: dict[str, str] = {}
    if config.export:
        if int8_bytes is not None:
            files["int8_torchscript"] = str(save_bytes(int8_bytes, work_dir / INT8_TORCHSCRIPT).resolve())
        files["int8_state_dict"] = str(save_int8_state(int8, work_dir / INT8_STATE, float_spec, quantizer.spec(),
                                                       input_shape).resolve())
    report = {
        "quantizer": quantizer.spec(),
        "metric": metric,
        "tie_rule": TIE_RULE,
        "fp32": {metric: fp32_top1, "tied_samples": fp32_ties, "weights": weights,
                 **counts["fp32"], "torchscript_bytes": fp32_bytes and len(fp32_bytes),
                 "state_dict_bytes": _state_bytes(float_start)},
        "int8": {metric: int8_top1, "tied_samples": int8_ties, **counts["int8"],
                 "torchscript_bytes": int8_bytes and len(int8_bytes),
                 "state_dict_bytes": _state_bytes(int8), "torchscript_error": int8_why or None},
        "latency": {**_renamed(lat.to_dict()), "engine": backend,
                    "executed": "TorchScript (frozen, freshly loaded)" if scripted else "eager"},
        "files": files,
    }
    files["report"] = str(atomic_write_text(work_dir / REPORT, json.dumps(report, indent=2)).resolve())
    _log(f"IAO: int8 {metric} {int8_top1:.2f} vs fp32 {fp32_top1:.2f} ({weights}); "
         f"fp32 / int8 latency {describe(lat)}")
    return report


def _renamed(latency: dict[str, Any]) -> dict[str, Any]:
    names = {"baseline_ms": "fp32_ms", "candidate_ms": "int8_ms"}
    return {names.get(k, k): v for k, v in latency.items()}


def summary_rows(quantizer: Any, report: Mapping[str, Any]) -> dict[str, str]:
    """The rows IAO adds to the ``gml run`` summary."""
    fp32, int8, lat = report["fp32"], report["int8"], report["latency"]
    rows = {"quantizer": quantizer.describe()}
    metric = report.get("metric", "top1")  # reports written before detection: always top1
    rows[f"fp32 {metric} ({fp32['weights']})"] = f"{fp32[metric]:.2f}"
    rows[f"int8 {metric}"] = f"{int8[metric]:.2f} ({int8[metric] - fp32[metric]:+.2f})"
    kind = "torchscript_bytes" if fp32["torchscript_bytes"] and int8["torchscript_bytes"] else "state_dict_bytes"
    label = "TorchScript" if kind == "torchscript_bytes" else "state dict"
    rows[f"fp32 / int8 size ({label})"] = (f"{format_size(fp32[kind])} / {format_size(int8[kind])} "
                                          f"({fp32[kind] / int8[kind]:.1f}x)")
    threads = f"{lat['threads']} thread{'s' if lat['threads'] != 1 else ''}"
    rows[f"fp32 / int8 CPU latency (batch {lat['batch_size']}, {threads}, interleaved)"] = describe(lat, "fp32_ms", "int8_ms")
    if fp32.get("flops") and int8.get("flops"):
        from gml_core.api import format_count

        rows["fp32 / int8 FLOPs, params (batch 1)"] = (
            f"{format_count(fp32['flops'])} / {format_count(int8['flops'])}, "
            f"{format_count(fp32['params'])} / {format_count(int8['params'])} (int8: BN folded into conv)")
    if int8.get("torchscript_error"):
        rows["int8 TorchScript"] = f"not exported ({int8['torchscript_error']})"
    for key in ("int8_torchscript", "int8_state_dict", "report"):
        if report["files"].get(key):
            rows[key.replace("_", " ")] = report["files"][key]
    return rows
