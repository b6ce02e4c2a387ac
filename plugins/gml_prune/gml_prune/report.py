"""Resource reports (params, FLOPs, measured CPU latency) and BatchNorm recalibration."""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn


@torch.inference_mode()
def measure_latency(model: nn.Module, input_shape: Sequence[int], repeats: int = 30, warmup: int = 3,
                    budget_s: float = 2.0) -> float:
    """Median wall-clock milliseconds of one forward pass (eval mode): ``repeats`` runs, fewer
    (at least 5) when they would take longer than ``budget_s``."""
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.randn(*input_shape, dtype=param.dtype, device=param.device)
    try:
        for _ in range(warmup):
            model(x)
        start = time.perf_counter()
        model(x)
        once = max(time.perf_counter() - start, 1e-6)
        times = []
        for _ in range(max(5, min(repeats, int(budget_s / once)))):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return 1000.0 * statistics.median(times)


def resources(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """``{"params", "flops"}`` of ``model`` for one input of ``input_shape``."""
    from gml_core.api import count_flops, count_params
    return {"params": count_params(model), "flops": count_flops(model, list(input_shape))}


def interleaved_latency(models: Mapping[str, nn.Module], input_shape: Sequence[int], batches: Iterable[int] = (1,),
                        rounds: int = 3) -> dict[str, dict[str, float]]:
    """``{name: {batch: ms}}``: the median over ``rounds`` of each model's median latency, the
    models measured in turn within each round so that load changes hit them alike."""
    out: dict[str, dict[str, float]] = {name: {} for name in models}
    for batch in batches:
        shape = [batch, *list(input_shape)[1:]]
        per: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(rounds):
            for name, model in models.items():
                per[name].append(measure_latency(model, shape, repeats=20, budget_s=1.0))
        for name in models:
            out[name][str(batch)] = statistics.median(per[name])
    return out


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Before/after resources plus after/before ratios."""
    ratios = {"params": after["params"] / max(before["params"], 1), "flops": after["flops"] / max(before["flops"], 1)}
    for batch, ms in after["latency_ms"].items():
        ratios[f"latency_b{batch}"] = ms / max(before["latency_ms"].get(batch, ms), 1e-9)
    return {"before": dict(before), "after": dict(after), "ratio": ratios}


def format_report(report: Mapping[str, Any], title: str = "pruning report") -> str:
    """A Markdown table of a :func:`compare` result (plus accuracy rows when present)."""
    from gml_core.api import format_count
    b, a, r = report["before"], report["after"], report["ratio"]
    lines = [f"# {title}", "", "| | before | after | after/before |", "|---|---:|---:|---:|",
             f"| params | {format_count(b['params'], 'M')} | {format_count(a['params'], 'M')} | {r['params']:.3f} |",
             f"| FLOPs | {format_count(b['flops'], 'M')} | {format_count(a['flops'], 'M')} | {r['flops']:.3f} |"]
    for batch, ms in a["latency_ms"].items():
        lines.append(f"| CPU latency, batch {batch} (ms) | {b['latency_ms'][batch]:.3f} | {ms:.3f} | "
                     f"{r[f'latency_b{batch}']:.3f} |")
    for key in sorted(set(b) & set(a)):
        if key.startswith("accuracy"):
            lines.append(f"| {key} | {b[key]:.2f} | {a[key]:.2f} | |")
    return "\n".join(lines) + "\n"


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any], num_batches: int) -> int:
    """Re-estimate BatchNorm running statistics from ``num_batches`` training batches.

    Statistics are reset and accumulated as a true average (momentum ``None``), as
    is usual for a sub-network of a weight-sharing model. Returns the batches used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or num_batches <= 0:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    param = next(model.parameters())
    used = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for batch in itertools.islice(batches, num_batches):
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            model(inputs.to(param.device, param.dtype))
            used += 1
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return used


@torch.no_grad()
def batch_scores(model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
    """Top-1 accuracy (percent) and mean cross-entropy over ``(inputs, labels)`` batches, eval mode."""
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    correct = total = 0
    loss = 0.0
    try:
        for inputs, labels in batches:
            logits = model(inputs.to(param.device, param.dtype)).float().cpu()
            correct += int((logits.argmax(1) == labels.cpu()).sum())
            loss += float(torch.nn.functional.cross_entropy(logits, labels.cpu(), reduction="sum"))
            total += len(labels)
    finally:
        model.train(was_training)
    return {"top1": 100.0 * correct / max(total, 1), "loss": loss / max(total, 1)}


def split_batches(loader: Iterable[Any], calib: int, score: int) -> tuple[list[Any], list[Any]]:
    """Fixed calibration and scoring batches from one pass of ``loader`` (scoring gets its share
    of a short loader, at least one batch when asked for)."""
    batches = list(itertools.islice(iter(loader), calib + score))
    if score and len(batches) < calib + score:
        n_score = max(1, round(len(batches) * score / (calib + score)))
        return batches[:-n_score] or batches, batches[-n_score:]
    return batches[:calib], batches[calib:]
