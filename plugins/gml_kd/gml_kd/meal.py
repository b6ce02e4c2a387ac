"""MEAL v2 (Shen & Savvides, 2020): a student learns from the averaged soft targets of a
teacher ensemble, without hard labels, with a discriminator on the outputs.

The discriminator is a small MLP that tells the ensemble's averaged logits
("real") from the student's ("fake"). It is trained on the student's detached
logits, and the student is trained to make its logits pass as the ensemble's
through a copy of the discriminator with detached weights, so one backward pass
gives both players their own gradient (the usual GAN split of the objective).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .config import MealConfig


class OutputDiscriminator(nn.Module):
    """MLP ``num_classes -> hidden... -> 1`` (a logit: real ensemble output or not)."""

    def __init__(self, num_classes: int, hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def ensemble_logits(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Average of the teachers' logits (the discriminator's real samples)."""
    return torch.stack(outputs).mean(dim=0)


def ensemble_probs(outputs: list[torch.Tensor], tau: float) -> torch.Tensor:
    """Average of the teachers' softened distributions: MEAL v2's soft target."""
    return torch.stack([F.softmax(o / tau, dim=1) for o in outputs]).mean(dim=0)


class MealLoss(nn.Module):
    """Soft-target loss against the ensemble plus the adversarial pair of losses."""

    def __init__(self, config: MealConfig, num_classes: int):
        super().__init__()
        self.config = config
        self.discriminator = OutputDiscriminator(num_classes, list(config.discriminator_hidden))

    def forward(self, student: torch.Tensor, teachers: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.config
        tau = c.temperature
        target = ensemble_probs(teachers, tau)
        kd = -(target * F.log_softmax(student / tau, dim=1)).sum(dim=1).mean() * tau ** 2
        real = ensemble_logits(teachers)
        d = self.discriminator
        d_real = d(real)
        d_fake = d(student.detach())
        loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        frozen = {k: v.detach() for k, v in d.named_parameters()}
        d_gen = functional_call(d, frozen, (student,))
        loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        return {"loss_meal_kd": c.kd_weight * kd,
                "loss_meal_gen": c.adversarial_weight * loss_g,
                "loss_meal_disc": c.discriminator_weight * loss_d}


__all__ = ["MealLoss", "OutputDiscriminator", "ensemble_logits", "ensemble_probs"]
