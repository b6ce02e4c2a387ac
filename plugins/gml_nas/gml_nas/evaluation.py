"""BN re-calibration, subnet evaluation and ``DynamicDistEvalHook`` / ``NaiveEvaluator``.

A weight-sharing supernet's BatchNorm running statistics do not belong to any
single subnet, so every subnet is evaluated after re-estimating them on training
batches (cumulative average, as in BigNAS and SPOS). Under torch.distributed the
statistics and the accuracy counts are averaged / summed over ranks.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Literal, Mapping, Optional, Sequence

import attrs
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .mutator import dist_ready


@contextmanager
def preserved_bn_state(model: nn.Module) -> Iterator[None]:
    """Restore every BatchNorm's buffers, momentum and slice update flag afterwards."""
    saved = []
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            buffers = {n: b.clone() for n, b in m.named_buffers(recurse=False) if b is not None}
            saved.append((m, buffers, m.momentum, getattr(m, "update_stats", None)))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers, momentum, update in saved:
                for n, b in buffers.items():
                    getattr(m, n).copy_(b)
                m.momentum = momentum
                if update is not None:
                    m.update_stats = update


def _inputs(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (list, tuple)) else batch


@torch.no_grad()
def calibrate_bn(model: nn.Module, loader: Iterable, num_iters: int = -1, sync: bool = True) -> int:
    """Re-estimate BatchNorm statistics of the active subnet on ``num_iters`` batches (-1: all).

    Returns the number of batches used. Dropout and drop-path should be off (the
    caller activates the subnet without them). Momentum and update flags are restored.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    saved = [(bn.momentum, getattr(bn, "update_stats", None)) for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        if hasattr(bn, "update_stats"):
            bn.update_stats = True
    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    used = 0
    try:
        for batch in loader:
            if 0 <= num_iters <= used:
                break
            model(_inputs(batch).to(device))
            used += 1
    finally:
        model.train(was_training)
        for bn, (momentum, update) in zip(bns, saved):
            bn.momentum = momentum
            if update is not None:
                bn.update_stats = update
    if sync and dist_ready():
        import torch.distributed as dist

        world = dist.get_world_size()
        for bn in bns:
            for buf in (bn.running_mean, bn.running_var):
                dist.all_reduce(buf)
                buf.div_(world)
    return used


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, loader: Iterable, num_classes: int,
                      max_batches: int = -1) -> dict[str, float]:
    """Top-1 (and top-5 with more than 5 classes) accuracy in percent, summed over ranks."""
    was_training = model.training
    model.eval()
    topk = (1, 5) if num_classes > 5 else (1,)
    counts = torch.zeros(len(topk) + 1, dtype=torch.float64)
    device = next(model.parameters()).device
    try:
        for i, (inputs, labels) in enumerate(loader):
            if 0 <= max_batches <= i:
                break
            logits = model(inputs.to(device)).float().cpu()
            top = logits.topk(max(topk), dim=1).indices
            hits = top.eq(labels.view(-1, 1).cpu())
            for j, k in enumerate(topk):
                counts[j] += hits[:, :k].any(dim=1).sum().item()
            counts[-1] += len(labels)
    finally:
        model.train(was_training)
    if dist_ready():
        import torch.distributed as dist

        dist.all_reduce(counts)
    total = max(counts[-1].item(), 1.0)
    return {f"accuracy/top{k}": 100.0 * counts[j].item() / total for j, k in enumerate(topk)}


@attrs.frozen(kw_only=True)
class NaiveEvaluatorConfig:
    """``NaiveEvaluator``: FLOPs and parameters in ``units`` for an input of ``default_shape``."""

    type: Literal["NaiveEvaluator", "gml.NaiveEvaluator"] = "NaiveEvaluator"
    units: Literal["", "K", "M", "G"] = "M"
    default_shape: Optional[list[int]] = None


class NaiveEvaluator:
    """Counts FLOPs (torch's flop counter; a multiply-add is 2 FLOPs) and parameters of a model."""

    def __init__(self, units: str = "M", default_shape: Optional[Sequence[int]] = None):
        self.units = units
        self.default_shape = tuple(default_shape) if default_shape else None

    def measure(self, model: nn.Module, input_shape: Optional[Sequence[int]] = None) -> dict[str, float]:
        """``{"flops": ..., "params": ...}`` scaled to ``units``."""
        from gml_core.api import COUNT_UNITS, count_flops, count_params
        shape = self.default_shape or tuple(input_shape or ())
        scale = COUNT_UNITS[self.units]
        return {"flops": count_flops(model, shape) / scale, "params": count_params(model) / scale}


@attrs.frozen(kw_only=True)
class BNCalibConfig:
    """``bn_stats_calib_kwargs``: training batches for re-calibration (-1: all) and rank syncing."""

    num_iters: int = -1
    sync_params: bool = True


@attrs.frozen(kw_only=True)
class DynamicEvalConfig:
    """``search_eval_cfg``: which subnets to evaluate, how often, and how to calibrate BN."""

    type: Literal["DynamicDistEvalHook", "gml.DynamicDistEvalHook"] = "DynamicDistEvalHook"
    interval: int = 1
    evaluate_max: bool = True
    evaluate_min: bool = True
    subnets: list[dict[str, Any]] = attrs.field(factory=list)
    evaluator: NaiveEvaluatorConfig = attrs.field(factory=NaiveEvaluatorConfig)
    bn_stats_calib_kwargs: BNCalibConfig = attrs.field(factory=BNCalibConfig)
    gpu_collect: bool = attrs.field(default=False, validator=lambda _i, _a, v: _no_effect("gpu_collect", v))


def _no_effect(key: str, value: Any) -> None:
    """The original system's keys that gml accepts but does not need (results are gathered anyway)."""
    if value:
        import warnings

        warnings.warn(f"search_eval_cfg.{key} has no effect in gml (every rank's results are gathered)",
                      stacklevel=2)


class DynamicDistEvalHook:
    """Evaluates the max, min and listed subnets of a supernet after BN re-calibration.

    ``run`` leaves the supernet as it found it (subnet, BatchNorm statistics).
    """

    def __init__(self, config: DynamicEvalConfig, space: Any):
        from .specs import key_prefix

        self.config = config
        self.evaluator = NaiveEvaluator(config.evaluator.units, config.evaluator.default_shape)
        self.subnets: list[tuple[str, dict[str, Any]]] = []
        # where a key lists named choices (SPOS's ops), "max" / "min" are the last / first listed, not
        # the largest / smallest subnet: the summary says so
        named = not all(item.extremes_by_size for item in space.items.values())
        self.labels = {"max": "max subnet (last listed choices)", "min": "min subnet (first listed choices)"} \
            if named else {}
        if config.evaluate_max:
            self.subnets.append(("max", space.max()))
        if config.evaluate_min:
            self.subnets.append(("min", space.min()))
        for i, table in enumerate(config.subnets):
            with key_prefix(f"algorithm.search_eval_cfg.subnets[{i}]"):
                self.subnets.append((f"subnet{i}", space.parse_subnet(table, "")))

    def run(self, algorithm: Any, train_loader: Iterable, val_loader: Iterable, num_classes: int,
            input_shape: Sequence[int]) -> dict[str, dict[str, float]]:
        """``{name: {"accuracy/top1": .., "flops": .., "params": ..}}`` for every configured subnet."""
        model = algorithm.model
        calib = self.config.bn_stats_calib_kwargs
        if calib.sync_params and dist_ready():
            import torch.distributed as dist

            with torch.no_grad():
                for t in list(model.parameters()) + list(model.buffers()):
                    dist.broadcast(t.data, src=0)
        previous = dict(model.subnet)
        results: dict[str, dict[str, float]] = {}
        try:
            for name, subnet in self.subnets:
                with preserved_bn_state(model):
                    algorithm.activate(subnet, largest=False)
                    calibrate_bn(model, train_loader, calib.num_iters, sync=True)
                    metrics = evaluate_accuracy(model, val_loader, num_classes)
                    metrics.update(self.evaluator.measure(model.export(), input_shape))
                results[name] = metrics
        finally:
            algorithm.activate(previous, largest=False)
        return results


def format_results(results: Mapping[str, Mapping[str, float]], units: str,
                   labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """Summary rows: ``"max subnet (BN calibrated)" -> "top-1 97.50%, 1.234 MFLOPs, 0.056 M params"``
    (``labels``: another name than "NAME subnet" for some)."""
    out = {}
    for name, m in results.items():
        label = (labels or {}).get(name, f"{name} subnet")
        out[f"{label} (BN calibrated)"] = (f"top-1 {m['accuracy/top1']:.2f}%, {m['flops']:.3f} {units}FLOPs, "
                                           f"{m['params']:.3f} {units} params")
    return out
