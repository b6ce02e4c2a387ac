"""Magnitude criteria for channels of a group, and channel allocation to a budget.

Criteria (summed over the group's coupled layers):
  ``l1``       L1 norm of each output filter (Li et al., 2017, "Pruning Filters for Efficient ConvNets")
  ``l2``       L2 norm of each output filter
  ``bn_scale`` |gamma| of the BatchNorm channels (Liu et al., 2017, "Network Slimming"); groups
               without BatchNorm fall back to ``l1``.
Allocation: ``uniform`` keeps the same fraction of every group (bisection on that
fraction to meet the FLOPs target); ``global`` ranks all channels by their score
normalised by their group's mean and drops the lowest until the target is met.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
from torch import nn

from .attention import head_scores
from .budget import DEFAULT_ROUND_TO  # noqa: F401  (re-exported)
from .graph import DW, HEADS, NORM, OUT, ChannelGraph, ChannelGroup
from .groups import block_topk


@torch.no_grad()
def channel_scores(model: nn.Module, group: ChannelGroup, criterion: str) -> torch.Tensor:
    """One score per channel of ``group`` (higher = more important)."""
    if criterion == "bn_scale":
        gammas = []
        for m in group.members:
            bn = model.get_submodule(m.module) if m.role == NORM else None
            if bn is not None and bn.weight is not None:
                gammas.append(bn.weight.detach()[m.rows(group.size)].abs().float().cpu())
        if gammas:
            return torch.stack(gammas).sum(0)
        criterion = "l1"
    total = torch.zeros(group.size)
    for m in group.members:
        if m.role == HEADS:
            total += head_scores(model.get_submodule(m.module), criterion)
        if m.role not in (OUT, DW):
            continue
        w = model.get_submodule(m.module).weight.detach()[m.rows(group.size)].float().cpu()
        w = w.flatten(1)
        total += w.abs().sum(1) if criterion == "l1" else w.pow(2).sum(1).sqrt()
    return total


def group_round(group: ChannelGroup, round_to: int) -> int:
    """The channel multiple of a group: ``round_to``, at most a quarter of the group (a power of
    two, so small groups can still be pruned); attention heads (already wide units): 1. A group
    split into ``blocks`` by grouped convolutions keeps the same count per block, the fewest per
    block that make the total a multiple of ``round_to`` (the dense layers around a grouped conv
    see the total), capped at a quarter of a block."""
    if any(m.role == HEADS for m in group.members):
        return 1
    width = group.size // group.blocks
    quarter = 1 << max(0, (width // 4).bit_length() - 1)
    per_block = max(1, round_to // math.gcd(max(1, round_to), group.blocks))
    return group.blocks * max(1, min(per_block, quarter))


def lowest_count(group: ChannelGroup, min_keep: float, multiple: int = 1) -> int:
    """The fewest channels a group may keep: ``min_keep`` of it, at least one (one per conv group)."""
    lower = max(1, math.ceil(min_keep * group.size - 1e-9))
    return -(-lower // group.blocks) * group.blocks if group.blocks > 1 else lower


def _rounded(n: float, size: int, lower: int, round_to: int) -> int:
    n = int(math.ceil(n / round_to - 1e-9) * round_to) if round_to > 1 else int(round(n))
    return max(lower, min(size, n))


def uniform_counts(graph: ChannelGraph, ratio: float, min_keep: float, round_to: int,
                   cap: Mapping[int, int] | None = None) -> dict[int, int]:
    """Channels kept per group when every group keeps ``ratio`` of its channels."""
    out = {}
    for g in graph.prunable:
        lower = lowest_count(g, min_keep)
        n = _rounded(ratio * g.size, g.size, lower, group_round(g, round_to))
        out[g.index] = min(n, cap[g.index]) if cap else n
    return out


def search_uniform(graph: ChannelGraph, flops: Callable[[dict], float], target: float, min_keep: float,
                   round_to: int, cap: Mapping[int, int] | None = None) -> dict[int, int]:
    """The largest uniform ratio whose pruned FLOPs are <= ``target`` (bisection, FLOPs monotone)."""
    lo, hi = 0.0, 1.0
    best = uniform_counts(graph, 0.0, min_keep, round_to, cap)
    for _ in range(40):
        mid = (lo + hi) / 2
        counts = uniform_counts(graph, mid, min_keep, round_to, cap)
        if flops(counts) <= target:
            lo, best = mid, counts
        else:
            hi = mid
    full = uniform_counts(graph, 1.0, min_keep, round_to, cap)
    return full if flops(full) <= target else best


def search_global(graph: ChannelGraph, scores: Mapping[int, torch.Tensor], flops: Callable[[dict], float],
                  target: float, min_keep: float, alive: Mapping[int, torch.Tensor] | None = None,
                  round_to: int = 1) -> dict[int, torch.Tensor]:
    """Keep masks from a global threshold on group-normalised scores (smallest threshold meeting ``target``);
    each group's count is then rounded up to its multiple of ``round_to`` (highest scores first)."""
    norm, lower, rounding = {}, {}, {}
    for g in graph.prunable:
        s = scores[g.index].clone().float()
        live = alive[g.index].bool() if alive else torch.ones(g.size, dtype=torch.bool)
        mean = s[live].mean() if live.any() else s.mean()
        s = s / (mean + 1e-12)
        s[~live] = -math.inf
        norm[g.index] = s
        lower[g.index] = lowest_count(g, min_keep)
        rounding[g.index] = group_round(g, round_to)
    blocks = graph.blocks()

    def masks_at(threshold: float) -> dict[int, torch.Tensor]:
        out = {}
        for gi, s in norm.items():
            keep = s >= threshold
            n = _rounded(int(keep.sum()), s.numel(), lower[gi], rounding[gi])
            n = min(n, max(int(torch.isfinite(s).sum()), 1))
            if gi in blocks:
                n = min(n // blocks[gi] * blocks[gi], int(torch.isfinite(s.view(blocks[gi], -1)).sum(1).min())
                        * blocks[gi])
                keep = block_topk(s, n, blocks[gi])
            elif n != int(keep.sum()):
                keep = block_topk(s, n)
            out[gi] = keep
        return out

    def cost(threshold: float) -> float:
        return flops({gi: int(m.sum()) for gi, m in masks_at(threshold).items()})

    values = torch.cat([s[torch.isfinite(s)] for s in norm.values()]).unique().sort().values
    lo, hi = 0, len(values) - 1
    if cost(float(values[0])) <= target:
        return masks_at(float(values[0]))
    while lo < hi:                                   # first index whose threshold meets the target
        mid = (lo + hi) // 2
        if cost(float(values[mid])) <= target:
            hi = mid
        else:
            lo = mid + 1
    return masks_at(float(values[lo]) if cost(float(values[lo])) <= target else math.inf)


def top_masks(scores: Mapping[int, torch.Tensor], counts: Mapping[int, int],
              alive: Mapping[int, torch.Tensor] | None = None,
              blocks: Mapping[int, int] | None = None) -> dict[int, torch.Tensor]:
    """Keep the ``counts[g]`` highest-scoring (still alive) channels of each group; ``blocks[g]``
    (``ChannelGraph.blocks()``): the same number in each block of a grouped-conv group."""
    out = {}
    for gi, n in counts.items():
        s = scores[gi].clone().float()
        if alive is not None:
            s[~alive[gi].bool()] = -math.inf
        out[gi] = block_topk(s, int(n), (blocks or {}).get(gi, 1))
    return out
