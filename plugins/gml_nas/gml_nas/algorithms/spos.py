"""``SPOS`` (Guo et al., 2020): single-path one-shot training with uniform path sampling.

Every step trains one subnet drawn uniformly from the search space (the same on
every rank) on the labels; the search afterwards ranks subnets by validation
accuracy after BatchNorm re-calibration.
"""

from __future__ import annotations

import attrs
import torch

from .base import OneShotConfig, OneShotNAS


@attrs.frozen(kw_only=True)
class SPOSConfig(OneShotConfig):
    """``[algorithm]`` of ``type = "SPOS"`` (``drop_ratio`` applies to every sampled path)."""


class SPOS(OneShotNAS):
    """Uniform single-path sampling; one forward/backward per step."""

    config_class = SPOSConfig

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        self.activate(self.mutator.sample("random"), largest=False, training=True)
        logits = self.model(inputs)
        return {"loss_cls": self.model.head.label_loss(logits, labels)}
