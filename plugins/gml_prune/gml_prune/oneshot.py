"""One-shot pruning as a library call: ``prune(model, input_shape, target_flops=0.5)``.

The same analysis, criteria, allocation and export as ``MagnitudePruning`` without a
training run. It returns a physically smaller copy or raises a one-line
``ConfigError``: never the unpruned model in silence.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

import torch
from torch import nn

from gml_core.api import ConfigError

from .budget import resolve_target
from .export import prune_model
from .flops import FlopsModel
from .graph import ChannelGraph, analyze
from .importance import DEFAULT_ROUND_TO, channel_scores, search_global, search_uniform, top_masks


def fixed_summary(graph: ChannelGraph, limit: int = 3) -> str:
    """The most common reasons why groups are fixed, for error messages."""
    reasons = Counter(g.fixed_reason.split(" (")[0] for g in graph.groups if g.members and not g.prunable)
    return "; ".join(f"{n} x {r}" for r, n in reasons.most_common(limit))


def prune(model: nn.Module, input_shape: Sequence[int], target_flops: Any = 0.5, criterion: str = "l1",
          allocation: str = "uniform", round_to: int = DEFAULT_ROUND_TO, min_keep: float = 0.05,
          exclude: Sequence[str] = (), latency_batch: int | Sequence[int] = 1,
          latency: Callable[..., float] | None = None) -> nn.Module:
    """A smaller copy of ``model`` with at most ``target_flops`` (fraction, ``"50%"`` or ``"300M"``).

    ``round_to``: every group keeps a multiple of this many channels (attention heads: any
    count); the default is the CPU-friendly multiple measured in ``docs/benchmarks.md``.
    ``allocation = "latency"``: a latency table measured at batch ``latency_batch`` (cached, see
    ``latency.py``; a list of batch sizes: their tables, each relative to its whole model, summed)
    decides where the FLOPs are cut; ``latency(layer, cin, cout)`` in ms replaces it.
    """
    if allocation not in ("uniform", "global", "latency"):
        raise ConfigError([("allocation", f"'{allocation}' is not one of: uniform, global, latency")])
    from .latency import check_batches
    check_batches(latency_batch, "latency_batch")
    if criterion not in ("l1", "l2", "bn_scale"):
        raise ConfigError([("criterion", f"'{criterion}' is not one of: l1, l2, bn_scale")])
    if int(round_to) < 1:
        raise ConfigError([("round_to", f"must be at least 1, got {round_to}")])
    graph = analyze(model, input_shape, exclude, shape_key="input_shape", exclude_key="exclude")
    if not graph.prunable:
        raise ConfigError([("model", f"{type(model).__name__} has no prunable channel group "
                                     f"({fixed_summary(graph)}); nothing to prune")])
    flops = FlopsModel(graph, model)
    target = resolve_target(target_flops, flops.full, "target_flops")
    scores = {g.index: channel_scores(model, g, criterion) for g in graph.prunable}
    cost = lambda counts: float(flops(counts))                        # noqa: E731
    if allocation == "uniform":
        masks = top_masks(scores, search_uniform(graph, cost, target, min_keep, round_to), blocks=graph.blocks())
    elif allocation == "latency":
        from .latency import measured_latency, search_latency
        table = latency or measured_latency(model, graph, latency_batch, round_to, min_keep)
        counts = search_latency(graph, scores, cost, target, min_keep, table, round_to)
        masks = top_masks(scores, counts, blocks=graph.blocks())
    else:
        masks = search_global(graph, scores, cost, target, min_keep, round_to=round_to)
    reached = cost({gi: int(m.sum()) for gi, m in masks.items()})
    if reached > target * (1 + 1e-9):
        raise ConfigError([("target_flops", f"{target:.4g} FLOPs ({100 * target / flops.full:.1f}%) is out of reach: "
                                            f"the prunable groups of {type(model).__name__} go down to {reached:.4g} "
                                            f"({100 * reached / flops.full:.1f}%) with min_keep = {min_keep}, "
                                            f"round_to = {round_to}; fixed: {fixed_summary(graph)}")])
    was_training = model.training
    small = prune_model(model, graph, {gi: torch.nonzero(m).flatten() for gi, m in masks.items()})
    small.train(was_training)
    return small
