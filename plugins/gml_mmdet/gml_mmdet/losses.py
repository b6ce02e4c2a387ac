"""Detection distillation losses, usable as gml-kd distillation-head losses (``loss(student, teacher)``).

- ``PKDLoss``: Cao et al., "PKD: General Distillation Framework for Object Detectors via
  Pearson Correlation Coefficient" (NeurIPS 2022). Each channel of the student and teacher
  FPN features is standardised over (batch, height, width); the loss is half the mean squared
  difference of the standardised features, which equals the mean over channels of
  ``1 - r_c`` (``r_c`` the Pearson correlation of channel ``c``) - invariant to the scale and
  offset of either feature, so teachers of other detector families can teach.
- ``DenseSigmoidKDLoss``: KD for dense heads with sigmoid class scores (RetinaNet, FCOS,
  ATSS): binary cross-entropy of the student's tempered sigmoid against the teacher's
  (every anchor and class is a binary problem), times ``tau^2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PKDLoss(nn.Module):
    """``loss_weight * mean_c (1 - pearson(student[:, c], teacher[:, c]))`` (features N x C x H x W).

    ``resize_student`` bilinearly resizes the student map to the teacher's size first.
    """

    same_shape = True

    def __init__(self, loss_weight: float = 1.0, resize_student: bool = True, eps: float = 1e-6):
        super().__init__()
        self.loss_weight, self.resize_student, self.eps = float(loss_weight), resize_student, eps

    def _standardise(self, feat: torch.Tensor) -> torch.Tensor:
        flat = feat.transpose(0, 1).reshape(feat.shape[1], -1)
        mean = flat.mean(dim=1, keepdim=True)
        std = flat.var(dim=1, unbiased=False, keepdim=True).add(self.eps ** 2).sqrt()
        return (flat - mean) / std

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if self.resize_student and student.shape[2:] != teacher.shape[2:]:
            student = F.interpolate(student, size=teacher.shape[2:], mode="bilinear", align_corners=False)
        if student.shape != teacher.shape:
            raise ValueError(f"PKDLoss: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ; "
                             "add a connector")
        s, t = self._standardise(student), self._standardise(teacher.detach())
        return self.loss_weight * F.mse_loss(s, t) / 2


class DenseSigmoidKDLoss(nn.Module):
    """``loss_weight * tau^2 * mean BCE(sigmoid(s / tau), sigmoid(t / tau))`` over all elements."""

    same_shape = True

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        if tau <= 0:
            raise ValueError(f"DenseSigmoidKDLoss: tau must be > 0, got {tau}")
        self.tau, self.loss_weight = float(tau), float(loss_weight)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        target = torch.sigmoid(teacher.detach() / self.tau)
        bce = F.binary_cross_entropy_with_logits(student / self.tau, target)
        return self.loss_weight * self.tau ** 2 * bce
