"""Channel masks applied with forward hooks, without changing the model's layers.

Each prunable group has a binary keep mask (a buffer, so it is checkpointed) and
optionally a soft per-channel scale (DMCP's marginal probabilities). Hooks on the
graph's mask points multiply outputs by the mask; the soft scale is applied only at
*primary* points (the BN right after a producing layer), as DMCP scales BN outputs.
A masked model computes exactly what the exported, physically smaller model does.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch
from torch import nn

from .attention import masked_attention_hook
from .graph import ChannelGraph, MaskPoint
from .groups import block_prefix


class ChannelMasker(nn.Module):
    """Holds masks for the prunable groups of ``graph`` and hooks them into ``model``.

    The masker is a sibling of the model (not its child), so the model's own
    ``state_dict`` stays unchanged.
    """

    def __init__(self, model: nn.Module, graph: ChannelGraph):
        super().__init__()
        self.graph = graph
        self.sizes = {g.index: g.size for g in graph.prunable}
        for gi, size in self.sizes.items():
            self.register_buffer(f"mask{gi}", torch.ones(size))
        self._soft: dict[int, torch.Tensor] = {}
        self._model = [model]                                  # not a submodule
        self._handles: list = []
        self.attach()

    # -- state ---------------------------------------------------------------------
    def mask(self, gi: int) -> torch.Tensor:
        return getattr(self, f"mask{gi}")

    def set_masks(self, masks: Mapping[int, torch.Tensor]) -> None:
        for gi, m in masks.items():
            self.mask(gi).copy_(m.to(self.mask(gi)))

    def set_counts(self, counts: Mapping[int, int]) -> None:
        """Keep the first ``counts[g]`` channels of each listed group (others unchanged); a group split
        by grouped convolutions keeps the first ``counts[g] / blocks`` of each block."""
        blocks = self.graph.blocks()
        for gi, n in counts.items():
            buf = self.mask(gi)
            buf.zero_()
            if gi in blocks:
                buf[block_prefix(buf.numel(), blocks[gi], int(n)).to(buf.device)] = 1.0
            else:
                buf[: int(n)] = 1.0

    def set_soft(self, scales: Mapping[int, torch.Tensor]) -> None:
        """Soft scales (differentiable) multiplied in at primary points."""
        self._soft = dict(scales)

    def clear_soft(self) -> None:
        self._soft = {}

    def keep_indices(self) -> dict[int, torch.Tensor]:
        return {gi: torch.nonzero(self.mask(gi) > 0).flatten().cpu() for gi in self.sizes}

    def counts(self) -> dict[int, int]:
        return {gi: int((self.mask(gi) > 0).sum()) for gi in self.sizes}

    # -- hooks -----------------------------------------------------------------------
    def _scale(self, point: MaskPoint, like: torch.Tensor) -> torch.Tensor | None:
        if any(not isinstance(r[0], int) for r in point.ranges):
            return self._scattered_scale(point, like)
        parts, pos, active = [], 0, False
        for offset, size, gi, primary in point.ranges:
            if offset > pos:
                parts.append(like.new_ones(offset - pos))
            scale = self.mask(gi).to(like.dtype)
            if primary and gi in self._soft:
                scale = scale * self._soft[gi].to(like.dtype)
                active = True
            elif not active:
                active = bool((scale != 1).any())
            parts.append(scale)
            pos = offset + size
        if not active:
            return None
        if pos < point.channels:
            parts.append(like.new_ones(point.channels - pos))
        return torch.cat(parts)

    def _scattered_scale(self, point: MaskPoint, like: torch.Tensor) -> torch.Tensor | None:
        """Scales where groups sit at scattered positions (channels moved by a shuffle)."""
        scale, active = like.new_ones(point.channels), False
        for offset, size, gi, primary in point.ranges:
            part = self.mask(gi).to(like.dtype)
            if primary and gi in self._soft:
                part = part * self._soft[gi].to(like.dtype)
                active = True
            active = active or bool((part != 1).any())
            rows = torch.arange(offset, offset + size) if isinstance(offset, int) else torch.tensor(offset)
            scale = scale.index_copy(0, rows.to(like.device), part)
        return scale if active else None

    def _hook(self, point: MaskPoint):
        def hook(module: nn.Module, inputs, output):
            scale = self._scale(point, output)
            if scale is None:
                return None
            if point.axis == -1:
                return output * scale
            return output * scale.view(1, -1, *([1] * (output.dim() - 2)))
        return hook

    def attach(self) -> None:
        if self._handles:
            return
        model = self._model[0]
        for point in self.graph.mask_points:
            module = model.get_submodule(point.module)
            if point.axis is None:
                hook = masked_attention_hook(lambda x, point=point: self._scale(point, x))
                self._handles.append(module.register_forward_hook(hook, with_kwargs=True))
            else:
                self._handles.append(module.register_forward_hook(self._hook(point)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Temporarily remove the hooks (e.g. to deep-copy or export the plain model)."""
        attached = bool(self._handles)
        self.detach()
        try:
            yield
        finally:
            if attached:
                self.attach()
