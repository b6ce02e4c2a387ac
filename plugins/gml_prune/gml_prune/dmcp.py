"""DMCP (Guo et al., CVPR 2020): channel pruning as a differentiable Markov process.

For a group of ``C`` channels, the channels above a minimum width are split into
equal chunks. Keeping chunk ``k`` is a state of a Markov chain that can only be
entered from chunk ``k - 1``: ``p(k | k-1) = sigmoid(alpha_k)`` (architecture
parameters), so the marginal ``p(k) = prod_{i<=k} sigmoid(alpha_i)``. During the
architecture step the outputs of the BN after each producing layer are scaled by
these marginals, the expected channels ``E[c] = c_min + chunk * sum_k p(k)`` enter
a differentiable FLOPs model, and the loss is task loss + FLOPs loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gml_core.api import ConfigError

from .budget import resolve_target
from .flops import FlopsModel
from .graph import ChannelGraph

SAMPLE_TYPES = ("max", "min", "scheduled_random", "non_uni_random", "arch_random")


@dataclass(frozen=True)
class WidthPlan:
    """How one group's channels are cut into Markov states."""

    size: int
    max_ch: int
    min_ch: int
    step: int
    steps: int
    blocks: int = 1                            # grouped convs: every block keeps counts / blocks

    def candidates(self) -> list[int]:
        return [self.min_ch + k * self.step for k in range(self.steps + 1)]

    def nearest(self, channels: float) -> int:
        return min(self.candidates(), key=lambda c: (abs(c - channels), c))


def width_plan(size: int, wmax: float, wmin: float, offset: float) -> WidthPlan:
    """Equal chunks between ``lowest = ceil(wmin * size)`` and ``max_ch = round(wmax * size)``: chunk size
    ``floor(span / n)`` for ``n = round((wmax - wmin) / offset)`` chunks (at least one channel), as many
    chunks as fit, so ``lowest <= min_ch < lowest + step``."""
    max_ch = size if wmax >= 1.0 else max(1, int(round(size * wmax)))
    lowest = min(max_ch, max(1, math.ceil(size * wmin - 1e-9)))
    chunks = max(1, int(round((wmax - wmin) / offset)))
    step = max(1, (max_ch - lowest) // chunks)
    steps = (max_ch - lowest) // step
    return WidthPlan(size, max_ch, max_ch - steps * step, step, steps)


def block_plan(size: int, blocks: int, wmax: float, wmin: float, offset: float) -> WidthPlan:
    """:func:`width_plan` of one block of a group split by grouped convolutions, scaled to all blocks."""
    p = width_plan(size // blocks, wmax, wmin, offset)
    return WidthPlan(size, p.max_ch * blocks, p.min_ch * blocks, p.step * blocks, p.steps, blocks)


def flops_loss(expected: torch.Tensor, target: float, full: float, kind: str = "log_l1") -> torch.Tensor:
    """DMCP's FLOPs regulariser, in units of the full model's FLOPs.

    ``log_l1`` (the paper's piecewise log): ``log(t - e)`` below ``0.95 t``, zero in
    ``[0.95 t, t)``, ``log(e - 0.95 t)`` from ``t`` up. ``l1``/``l2``: ``|e - t|``, ``(e - t)^2``.
    """
    e, t = expected / full, target / full
    if kind == "l1":
        return (e - t).abs()
    if kind == "l2":
        return (e - t) ** 2
    lower, value = 0.95 * t, float(e.detach())
    if value < lower:
        return torch.log(t - e)
    if value < t:
        return e * 0.0
    return torch.log(e - lower)


class DMCPMutator(nn.Module):
    """Architecture parameters, sampling and expected FLOPs for the prunable groups of a graph.

    ``config`` is a :class:`gml_prune.config.DMCPMutatorConfig`.
    """

    def __init__(self, config: Any, graph: ChannelGraph, flops: FlopsModel, key: str = "algorithm.mutator"):
        super().__init__()
        self.config = config
        self.flops = flops
        w = config.width
        self.plans = {g.index: block_plan(g.size, g.blocks, w.max, w.min, w.offset) for g in graph.prunable}
        self.alphas = nn.ParameterDict({f"g{gi}": nn.Parameter(torch.zeros(p.steps))
                                        for gi, p in self.plans.items() if p.steps > 0})
        self.target = resolve_target(config.target_flops, flops.full, f"{key}.target_flops")
        self.min_flops = float(flops(self.min_counts()))
        if self.target < self.min_flops:
            raise ConfigError([(f"{key}.target_flops",
                                f"{self.target:.4g} FLOPs is below the {self.min_flops:.4g} FLOPs "
                                f"({100 * self.min_flops / flops.full:.1f}% of the full model) that the minimum "
                                f"width allows (width.min = {w.min}); raise target_flops or lower width.min")])
        self.sample_widths = list(config.sample_width) if config.sample_width else None

    # -- Markov chain ----------------------------------------------------------------------
    def cond_prob(self, gi: int) -> torch.Tensor:
        return torch.sigmoid(self.alphas[f"g{gi}"])

    def marginal(self, gi: int) -> torch.Tensor:
        return torch.cumprod(self.cond_prob(gi), dim=0)

    def expected_channels(self, gi: int) -> torch.Tensor:
        plan = self.plans[gi]
        if plan.steps == 0:
            return torch.tensor(float(plan.min_ch))
        return plan.min_ch + plan.step * self.marginal(gi).sum()

    def expected_counts(self) -> dict[int, torch.Tensor]:
        return {gi: self.expected_channels(gi) for gi in self.plans}

    def expected_flops(self) -> torch.Tensor:
        return self.flops(self.expected_counts())

    def channel_scales(self) -> dict[int, torch.Tensor]:
        """Per-channel marginal keep probability (1 for the minimum width, 0 above the maximum)."""
        out = {}
        for gi, plan in self.plans.items():
            if plan.steps == 0:
                continue
            marg, b = self.marginal(gi), plan.blocks
            ones = marg.new_ones(plan.min_ch // b)
            zeros = marg.new_zeros((plan.size - plan.max_ch) // b)
            out[gi] = torch.cat([ones, marg.repeat_interleave(plan.step // b), zeros]).repeat(b)
        return out

    # -- sampling ------------------------------------------------------------------------
    def max_counts(self) -> dict[int, int]:
        return {gi: p.max_ch for gi, p in self.plans.items()}

    def min_counts(self) -> dict[int, int]:
        return {gi: p.min_ch for gi, p in self.plans.items()}

    def chain_sample(self) -> dict[int, int]:
        """Direct sampling: walk each chain, keeping chunk k with probability p(k | k-1)."""
        counts = {}
        for gi, plan in self.plans.items():
            n = plan.min_ch
            if plan.steps:
                probs = self.cond_prob(gi).detach().cpu()
                for k in range(plan.steps):
                    if float(torch.rand(())) >= float(probs[k]):
                        break
                    n += plan.step
            counts[gi] = n
        return counts

    def non_uniform_sample(self) -> dict[int, int]:
        """Each group independently takes a random width (of ``sample_width`` when given)."""
        counts = {}
        for gi, plan in self.plans.items():
            if self.sample_widths:
                w = self.sample_widths[int(torch.randint(len(self.sample_widths), ()))]
                counts[gi] = plan.nearest(w / self.config.width.max * plan.max_ch)
            else:
                counts[gi] = plan.candidates()[int(torch.randint(plan.steps + 1, ()))]
        return counts

    def expected_sample(self) -> dict[int, int]:
        """Expected channels of each group, rounded to the nearest chunk boundary."""
        with torch.no_grad():
            return {gi: self.plans[gi].nearest(float(c)) for gi, c in self.expected_counts().items()}

    def sample(self, kind: str, arch_training: bool, sample_prob: float = 1.0) -> dict[int, int]:
        """Channel counts for one sandwich sample of type ``kind``.

        Before the architecture parameters train, the chain-based types fall back to
        non-uniform random widths. ``scheduled_random`` samples non-uniformly with
        probability ``sample_prob`` (decaying during training), otherwise from the chain.
        """
        if kind == "max":
            return self.max_counts()
        if kind == "min":
            return self.min_counts()
        if kind == "non_uni_random" or not arch_training:
            return self.non_uniform_sample()
        if kind == "arch_random":
            return self.chain_sample()
        if kind == "scheduled_random":
            return self.non_uniform_sample() if float(torch.rand(())) < sample_prob else self.chain_sample()
        raise ValueError(f"unknown sample type '{kind}'")
