"""``BigNAS`` (Yu et al., 2020): sandwich-rule supernet training with in-place distillation.

Each step runs ``max``, ``n - 2`` random and the ``min`` subnet on the same batch
(``strategy = "sandwichN"``; the original system's spelling ``"sandwishN"`` is
accepted). The largest subnet learns from the labels (with the head's label
smoothing) under dropout (``drop_ratio``) and drop-path (``drop_path_ratio``);
every other subnet learns from the largest one's detached predictions
(``distiller_mode`` of the head). Gradients of all subnets accumulate and the
optimiser steps once. Only the largest subnet updates BatchNorm running
statistics; the others are re-calibrated when evaluated. As in the paper, every residual
branch starts at zero (its last BatchNorm scale is 0, ``zero_init_residual``), so a block
is initially the identity whatever the subnet's depth.

``distill_warmup`` (a fraction of the training iterations, default 0 = the paper's
recipe) lets the smaller subnets learn from the labels until the largest subnet's
predictions are worth imitating: at a small budget, distilling from a nearly uniform
teacher from the first step slows every subnet down (benchmarks/nas_recipe_ablation.py).
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import torch

from gml_core.api import ConfigError

from .base import OneShotConfig, OneShotNAS, _ratio

_STRATEGY = re.compile(r"^sandwi(?:ch|sh)(\d+)$")


def sandwich_size(strategy: str) -> int:
    """``"sandwich4"`` (or ``"sandwish4"``) -> 4."""
    m = _STRATEGY.match(strategy)
    n = int(m.group(1)) if m else 0
    if n < 2:
        raise ConfigError([("algorithm.strategy", f"{strategy!r} is not a sandwich rule; accepted: sandwichN with "
                            "N >= 2 (max, N-2 random, min), e.g. \"sandwich4\" (legacy spelling \"sandwish4\")")])
    return n


@attrs.frozen(kw_only=True)
class BigNASConfig(OneShotConfig):
    """``[algorithm]`` of ``type = "BigNAS"``."""

    strategy: str = "sandwich4"
    drop_path_ratio: float = attrs.field(default=0.0, validator=_ratio("drop_path_ratio"))
    zero_init_residual: bool = True
    distill_warmup: float = attrs.field(default=0.0, validator=_ratio("distill_warmup"))

    def __attrs_post_init__(self) -> None:
        sandwich_size(self.strategy)


class BigNAS(OneShotNAS):
    """Sandwich rule + in-place distillation; see the module docstring."""

    config_class = BigNASConfig

    def __init__(self, config: BigNASConfig, context: Any):
        super().__init__(config, context)
        self.num_subnets = sandwich_size(config.strategy)
        self._distill = config.distill_warmup == 0.0
        if config.zero_init_residual and not config.model.args.get("init_from"):
            with torch.no_grad():
                for bn in self.model.backbone.residual_branch_norms():
                    bn.weight.zero_()

    def drop_settings(self, largest: bool) -> tuple[float, float]:
        return (self.config.drop_ratio, self.config.drop_path_ratio) if largest else (0.0, 0.0)

    def before_train_iter(self, iteration: int, epoch: int, max_iters: int) -> None:
        super().before_train_iter(iteration, epoch, max_iters)
        self._distill = iteration >= self.config.distill_warmup * max_iters

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of one sandwich without stepping (for callers that use ``mode="loss"``)."""
        return self._sandwich(inputs, labels, backward=None)

    def _sandwich(self, inputs: torch.Tensor, labels: torch.Tensor, backward: Any) -> dict[str, torch.Tensor]:
        head = self.model.head
        losses: dict[str, torch.Tensor] = {}
        teacher = None
        try:
            for i, (kind, subnet) in enumerate(self.mutator.sandwich(self.num_subnets)):
                largest = kind == "max"
                self.activate(subnet, largest=largest, training=True)
                self.model.set_bn_update(largest)
                logits = self.model(inputs)
                if largest:
                    loss = head.label_loss(logits, labels)
                    teacher = logits.detach()
                elif self._distill:
                    loss = head.distill_loss(logits, teacher, labels)
                else:
                    loss = head.label_loss(logits, labels)
                name = "loss_max" if largest else ("loss_min" if kind == "min" else f"loss_random{i - 1}")
                if backward is not None:
                    backward(loss)
                    losses[name] = loss.detach()
                else:
                    losses[name] = loss
        finally:
            self.model.set_bn_update(True)
        return losses

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """One sandwich: every subnet's backward accumulates, then a single optimiser step."""
        inputs, labels = self.data_preprocessor(data, True)
        with optim_wrapper.optim_context(self):
            losses = self._sandwich(inputs, labels, backward=optim_wrapper.backward)
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        _, log_vars = self.parse_losses(losses)
        return log_vars
