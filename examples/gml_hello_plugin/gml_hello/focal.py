"""Focal loss (Lin et al. 2017): ``-(1 - p_t)^gamma * log(p_t)`` averaged over the batch."""

import torch
import torch.nn.functional as F
from torch import nn


class HelloFocalLoss(nn.Module):
    def __init__(self, gamma: float = 2.0, loss_weight: float = 1.0):
        super().__init__()
        self.gamma = gamma
        self.loss_weight = loss_weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_pt = F.log_softmax(logits, dim=1).gather(1, labels.view(-1, 1)).squeeze(1)
        return self.loss_weight * (-(1 - log_pt.exp()) ** self.gamma * log_pt).mean()
