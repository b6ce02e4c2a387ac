"""Small models and helpers shared by the gml-prune tests."""

from __future__ import annotations

import torch
from torch import nn


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so masking errors show."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model


class ConcatNet(nn.Module):
    """Two branches concatenated along channels, BN after the concat, then a conv and a head."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(10)
        self.conv = nn.Conv2d(10, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], dim=1)))
        y = torch.relu(self.bn2(self.conv(y)))
        return self.fc(torch.flatten(y, 1))


class TwoConv(nn.Module):
    """conv(3->8) BN ReLU conv(8->8) BN ReLU pool fc(8->2): a case small enough to compute by hand."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Dynamic(nn.Module):
    """Data-dependent control flow: not traceable by torch.fx."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


class WithDynamic(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.body = Dynamic()
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.body(torch.relu(self.bn(self.stem(x))))
        x = torch.relu(self.bn2(self.mid(x)))
        return self.fc(x.mean((2, 3)))


def assert_steps_nest(algo, steps: int) -> None:
    """Run ``steps`` iterative pruning steps: each meets its FLOPs target, and pruned channels stay pruned."""
    import torch

    previous = {gi: torch.ones(n, dtype=torch.bool) for gi, n in algo.masker.sizes.items()}
    for k in range(steps):
        counts = algo.prune_step(k)
        assert algo.flops(counts) <= algo.step_target(k)
        alive = {gi: algo.masker.mask(gi) > 0 for gi in algo.masker.sizes}
        assert all(bool((previous[gi] | ~alive[gi]).all()) for gi in alive)
        previous = alive
