"""``InplaceDistiller``: in-place distillation of slimmable networks (Yu et al., 2018/2019).

In every step the full-width network learns from the labels; its detached soft
logits then supervise narrower sub-networks of the same weights (the smallest width
and ``num_random`` random widths: the sandwich rule), all gradients accumulated into
one optimiser step.

A sub-network of width ``w`` keeps the first ``ceil(w * C)`` channels of every
BatchNorm layer and zeroes the rest (forward hooks, so any BN model works): the same
function as the narrower network with those weights, without its speed-up. Only the
full-width pass updates BatchNorm running statistics; a narrow width is evaluated
after re-estimating them on training batches (US-Nets' BN calibration).
"""

from __future__ import annotations

import copy
import math
import random
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from gml_core.api import GmlUserError


class WidthMasker:
    """Run ``model`` as its sub-network of width ``w`` inside ``with masker.width(w):``."""

    def __init__(self, model: nn.Module):
        self.bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        if not self.bns:
            raise GmlUserError("InplaceDistiller: the student has no BatchNorm layers to slim "
                               "(sub-networks are made by keeping a fraction of each BatchNorm's channels)")

    @staticmethod
    def kept(channels: int, width: float) -> int:
        return max(1, min(channels, math.ceil(width * channels)))

    @contextmanager
    def width(self, width: float, update_stats: bool = False) -> Iterator[None]:
        if width >= 1.0:
            yield
            return
        handles, saved = [], []
        for bn in self.bns:
            keep = self.kept(bn.num_features, width)

            def hook(_m: nn.Module, _i: Any, out: torch.Tensor, keep: int = keep) -> torch.Tensor:
                mask = torch.zeros(out.shape[1], device=out.device, dtype=out.dtype)
                mask[:keep] = 1.0
                return out * mask.view(1, -1, *([1] * (out.dim() - 2)))

            handles.append(bn.register_forward_hook(hook))
            if not update_stats:
                saved.append((bn, bn.momentum, None if bn.num_batches_tracked is None
                              else bn.num_batches_tracked.clone()))
                bn.momentum = 0.0  # batch statistics are used, running statistics stay as they are
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            for bn, momentum, tracked in saved:
                bn.momentum = momentum
                if tracked is not None:
                    bn.num_batches_tracked.copy_(tracked)


class InplaceDistiller(nn.Module):
    """Sandwich-rule widths and the soft loss of in-place distillation."""

    def __init__(self, config: Any, student: nn.Module, context: Any):
        super().__init__()
        self.config = config
        self.masker = WidthMasker(student)
        self.soft_loss = context.build("loss", config.soft_loss, "algorithm.distiller.soft_loss")

    def sample_widths(self) -> list[float]:
        """The smallest width, then ``num_random`` uniform widths in ``[min_width, 1)``."""
        lo = self.config.min_width
        return [lo] + [random.uniform(lo, 1.0) for _ in range(self.config.num_random)]

    def eval_widths(self) -> list[float]:
        return list(self.config.eval_widths) or [self.config.min_width]

    @torch.no_grad()
    def calibrated_copy(self, student: nn.Module, width: float, loader: Any, device: torch.device) -> nn.Module:
        """A copy of ``student`` whose BN statistics are re-estimated at ``width``."""
        model = copy.deepcopy(student)
        bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batches
        model.train()
        masker = WidthMasker(model)
        with masker.width(width, update_stats=True):
            for i, batch in enumerate(loader):
                if i >= self.config.calib_batches:
                    break
                model(batch[0].to(device))
        model.eval()
        return model
