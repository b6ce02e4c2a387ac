"""Distillation losses: ``loss(student_feature, teacher_feature)`` -> weighted scalar.

Every loss takes ``loss_weight`` and has ``same_shape``: whether student and
teacher features must have equal shapes (the distiller checks this at build time
and suggests a connector when they do not).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class DistillLoss(nn.Module):
    """Base: holds ``loss_weight``; subclasses implement ``compute``."""

    same_shape = True

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = float(loss_weight)

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * self.compute(student, teacher)


class DistillKLDivLoss(DistillLoss):
    """Vanilla KD (Hinton et al., 2015): ``tau^2 * KL(softmax(t / tau) || softmax(s / tau))``.

    Class scores are along dimension 1. ``reduction = "batchmean"`` sums the KL over
    classes (and any further dimensions) and averages over the batch; ``"mean"``
    averages over every element. The ``tau^2`` factor keeps gradient magnitudes
    independent of the temperature.
    """

    def __init__(self, tau: float = 4.0, loss_weight: float = 1.0,
                 reduction: Literal["batchmean", "mean", "sum"] = "batchmean"):
        super().__init__(loss_weight)
        if tau <= 0:
            raise ValueError(f"DistillKLDivLoss: tau must be > 0, got {tau}")
        self.tau = float(tau)
        self.reduction = reduction

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        log_p_s = F.log_softmax(student / self.tau, dim=1)
        log_p_t = F.log_softmax(teacher / self.tau, dim=1)
        kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True)
        if self.reduction == "batchmean":
            total = kl.sum() / student.shape[0]
        elif self.reduction == "mean":
            total = kl.mean()
        else:
            total = kl.sum()
        return total * self.tau ** 2


class MSELoss(DistillLoss):
    """FitNet hint loss (Romero et al., 2015): squared error between (connected) features."""

    def __init__(self, loss_weight: float = 1.0, reduction: Literal["mean", "batchmean", "sum"] = "mean"):
        super().__init__(loss_weight)
        self.reduction = reduction

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if self.reduction == "mean":
            return F.mse_loss(student, teacher)
        total = F.mse_loss(student, teacher, reduction="sum")
        return total / student.shape[0] if self.reduction == "batchmean" else total


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Spatial attention of Zagoruyko & Komodakis: ``mean_c |F_c|^p``, flattened, L2-normalised."""
    am = feature.abs().pow(p).mean(dim=1).flatten(1)
    return F.normalize(am, p=2.0, dim=1)


class ATLoss(DistillLoss):
    """Attention transfer (Zagoruyko & Komodakis, 2017).

    ``Q = vec(mean_c |F_c|^p) / ||vec(mean_c |F_c|^p)||_2`` for student and teacher;
    the loss is ``beta / 2 * mean((Q_s - Q_t)^2)``, the mean taken over the batch and
    positions, with ``beta = loss_weight``: the paper's ``beta / 2`` factor as its
    authors' release applies it (``beta = 1000`` there, for 32x32 maps). Channel counts
    may differ; spatial sizes must match.
    """

    same_shape = False

    def __init__(self, p: float = 2.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.p = float(p)

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
            raise ValueError(f"ATLoss needs equal batch and spatial sizes, got {tuple(student.shape)} "
                             f"and {tuple(teacher.shape)}")
        return 0.5 * (attention_map(student, self.p) - attention_map(teacher, self.p)).pow(2).mean()


class ABLoss(DistillLoss):
    """Activation-boundary loss (Heo et al., 2019) on pre-ReLU features.

    Per neuron: ``max(0, margin - s)^2`` where the teacher is active (``t > 0``) and
    ``max(0, margin + s)^2`` where it is not, summed over neurons and averaged over the
    batch: the student's activation boundary is pushed to the teacher's with a margin.
    """

    def __init__(self, margin: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        if margin < 0:
            raise ValueError(f"ABLoss: margin must be >= 0, got {margin}")
        self.margin = float(margin)

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        active = (teacher > 0).to(student.dtype)
        on = F.relu(self.margin - student).pow(2)
        off = F.relu(self.margin + student).pow(2)
        return (active * on + (1.0 - active) * off).sum() / student.shape[0]


class FTLoss(DistillLoss):
    """Factor transfer (Kim et al., 2018): ``|| F_s/||F_s||_2 - F_t/||F_t||_2 ||_p`` per sample.

    ``F_s`` is the translator's output (student factor), ``F_t`` the paraphraser's
    (teacher factor); each is flattened per sample and L2-normalised; ``p = 1`` as in the
    paper. Averaged over the batch.
    """

    def __init__(self, p: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.p = float(p)

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        f_s = F.normalize(student.flatten(1), p=2.0, dim=1)
        f_t = F.normalize(teacher.flatten(1), p=2.0, dim=1)
        return torch.linalg.vector_norm(f_s - f_t, ord=self.p, dim=1).mean()


class SoftTargetCrossEntropy(DistillLoss):
    """Cross-entropy with the teacher's softened distribution as target (MEAL v2's soft loss).

    ``-sum_c softmax(t / tau)_c * log softmax(s / tau)_c``, averaged over the batch and
    scaled by ``tau^2``. Its gradient equals the KD loss's; it differs by the teacher's
    entropy, a constant.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau = float(tau)

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        target = F.softmax(teacher / self.tau, dim=1)
        return -(target * F.log_softmax(student / self.tau, dim=1)).sum(dim=1).mean() * self.tau ** 2
