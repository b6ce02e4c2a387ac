"""``LinearClsHeadV2``: a sliceable linear classifier with the in-place distillation losses."""

from __future__ import annotations

from typing import Any, Literal, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .ops.blocks import Pool
from .ops.slice import LinearSlice


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``-sum(softmax(t/T) * log_softmax(s/T)) * T^2``, averaged over the batch (targets detached)."""
    t = temperature
    target = F.softmax(target_logits.detach() / t, dim=1)
    return -(target * F.log_softmax(logits / t, dim=1)).sum(1).mean() * (t * t)


class LinearClsHeadV2(nn.Module):
    """Global pooling, dropout (``drop_ratio``, set per subnet by the algorithm) and a ``LinearSlice``.

    ``label_loss`` is the supervised loss (cross-entropy with ``label_smooth_val``,
    or a registered ``loss``); ``distill_loss`` supervises a subnet with the
    largest subnet's logits: ``distiller_mode = "soft"`` soft-target cross-entropy
    (``soft_loss`` overrides it), ``"hard"`` cross-entropy on its argmax, ``"none"``
    no distillation (every subnet uses the labels).
    """

    def __init__(self, num_classes: int, in_channels: int, distiller_mode: Literal["soft", "hard", "none"] = "soft",
                 label_smooth_val: float = 0.1, loss_weight: float = 1.0, soft_loss_weight: float = 1.0,
                 temperature: float = 1.0, loss: Optional[Mapping[str, Any]] = None,
                 soft_loss: Optional[Mapping[str, Any]] = None, topk: Sequence[int] = (1, 5)):
        # topk: the original system's key, accepted as written; gml always reports top-1 and top-5
        super().__init__()
        from gml_core.api import ConfigError
        problems = []
        if not 0.0 <= label_smooth_val < 1.0:
            problems.append(("label_smooth_val", f"must be in [0, 1), got {label_smooth_val}"))
        if temperature <= 0:
            problems.append(("temperature", f"must be positive, got {temperature}"))
        if problems:
            raise ConfigError(problems)
        self.num_classes = num_classes
        self.distiller_mode = distiller_mode
        self.label_smooth_val = label_smooth_val
        self.loss_weight, self.soft_loss_weight, self.temperature = loss_weight, soft_loss_weight, temperature
        self.loss_module = _build_loss(loss, "loss")
        self.soft_loss_module = _build_loss(soft_loss, "soft_loss")
        self.pool = Pool()
        self.fc = LinearSlice(in_channels, num_classes)
        self.drop_ratio = 0.0

    def connect(self, name: str, value: int) -> None:
        """``connect_head`` wiring: follow the active width of the layer before."""
        if name != "in_channels":
            raise ValueError(f"LinearClsHeadV2 can only connect in_channels, not {name!r}")
        self.fc.set_active(in_features=int(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)
        if self.drop_ratio > 0:
            x = F.dropout(x, self.drop_ratio, self.training)
        return self.fc(x)

    def label_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.loss_module is not None:
            return self.loss_weight * self.loss_module(logits, labels)
        return self.loss_weight * F.cross_entropy(logits, labels, label_smoothing=self.label_smooth_val)

    def distill_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of a non-largest subnet given the largest subnet's (detached) logits."""
        if self.distiller_mode == "none":
            return self.label_loss(logits, labels)
        if self.distiller_mode == "hard":
            return self.soft_loss_weight * F.cross_entropy(logits, teacher_logits.detach().argmax(1))
        if self.soft_loss_module is not None:
            return self.soft_loss_weight * self.soft_loss_module(logits, F.softmax(teacher_logits.detach(), dim=1))
        return self.soft_loss_weight * soft_cross_entropy(logits, teacher_logits, self.temperature)

    def export(self) -> nn.Module:
        return StaticLinearHead(self.fc.export())


class StaticLinearHead(nn.Module):
    """Exported head: global average pooling and ``fc``."""

    def __init__(self, fc: nn.Linear):
        super().__init__()
        self.pool = Pool()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


def _build_loss(spec: Optional[Mapping[str, Any]], key: str) -> Optional[nn.Module]:
    if spec is None:
        return None
    from gml_core.api import build_component

    from .specs import to_spec

    return build_component("loss", to_spec(spec, key), key) if not isinstance(spec, nn.Module) else spec
