"""SmallCNN: a plain conv net sized for 8x8 to 32x32 images.

Layout (module paths used by configs): ``backbone.conv1/bn1/relu``, then
``backbone.layer1..layer4`` (``Sequential`` of ``ConvBNReLU`` blocks with
``conv``/``bn``/``relu``; layers 2-4 halve the resolution), then ``head``
(global average pool and ``fc``). ``width`` scales every stage, ``depth`` is the
number of blocks per stage.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBNReLU(nn.Module):
    """Conv 3x3 - BatchNorm - ReLU, the unit of every stage."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SmallCNNBackbone(nn.Module):
    """Stem plus four stages of widths ``width * (1, 1, 2, 4, 8)``."""

    def __init__(self, in_channels: int = 1, width: int = 8, depth: int = 1):
        super().__init__()
        widths = [width, width, width * 2, width * 4, width * 8]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        for i in range(1, 5):
            blocks = [ConvBNReLU(widths[i - 1], widths[i], 1 if i == 1 else 2)]
            blocks += [ConvBNReLU(widths[i], widths[i]) for _ in range(depth - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.feat_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ClsHead(nn.Module):
    """Global average pooling and a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


class SmallCNN(nn.Module):
    """``backbone`` + ``head``; ``SmallCNN(width=16)`` is a teacher, ``width=4`` a student."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 8, depth: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"SmallCNN: width and depth must be >= 1, got width={width}, depth={depth}")
        self.backbone = SmallCNNBackbone(in_channels, width, depth)
        self.head = ClsHead(self.backbone.feat_dim, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
