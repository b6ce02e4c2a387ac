"""Building blocks shared by the searchable backbones and by their static exports."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .slice import BatchNorm2dSlice, Conv2dSlice

ACTIVATIONS = ("relu", "relu6", "hswish", "hsigmoid", "swish", "sigmoid", "none")


def make_act(name: str) -> nn.Module:
    """An activation module by name (one of ``ACTIVATIONS``)."""
    table = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "hsigmoid": nn.Hardsigmoid,
             "swish": nn.SiLU, "sigmoid": nn.Sigmoid, "none": nn.Identity}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; accepted: {', '.join(ACTIVATIONS)}")
    return table[name]()


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` (never below 90% of it), as in MobileNet."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``p``, rescale the rest."""
    if p <= 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class ConvBNActSlice(nn.Module):
    """Slice conv, slice batch norm (optional) and an activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 act: str = "relu", bn: bool = True, bias: bool = False):
        super().__init__()
        self.conv = Conv2dSlice(in_channels, out_channels, kernel_size, stride, groups=groups, bias=bias)
        self.bn = BatchNorm2dSlice(out_channels) if bn else None
        self.act = make_act(act)

    def set_active(self, in_channels: int, out_channels: int, kernel_size: Optional[int] = None) -> None:
        self.conv.set_active(in_channels, out_channels, kernel_size)
        if self.bn is not None:
            self.bn.set_active(self.conv.active_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    def export(self) -> nn.Sequential:
        layers = [self.conv.export()]
        if self.bn is not None:
            layers.append(self.bn.export())
        if not isinstance(self.act, nn.Identity):
            layers.append(make_act(_act_name(self.act)))
        return nn.Sequential(*layers)


def _act_name(module: nn.Module) -> str:
    names = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardswish: "hswish", nn.Hardsigmoid: "hsigmoid",
             nn.SiLU: "swish", nn.Sigmoid: "sigmoid", nn.Identity: "none"}
    return names[type(module)]


class SqueezeExcite(nn.Module):
    """Static squeeze-and-excitation: pool, 1x1 reduce + ReLU, 1x1 expand + hard sigmoid, rescale."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class SESlice(nn.Module):
    """Squeeze-and-excitation over the first ``C`` channels; the squeeze width follows ``C`` (``C/reduction``)."""

    def __init__(self, channels: int, reduction: int = 4, divisor: int = 8):
        super().__init__()
        self.reduction, self.divisor = reduction, divisor
        squeeze = make_divisible(channels / reduction, divisor)
        self.reduce = Conv2dSlice(channels, squeeze, 1, bias=True)
        self.act = nn.ReLU()
        self.expand = Conv2dSlice(squeeze, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()
        self.active_channels = channels

    def set_active(self, channels: int) -> None:
        self.active_channels = channels
        squeeze = make_divisible(channels / self.reduction, self.divisor)
        self.reduce.set_active(channels, squeeze)
        self.expand.set_active(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))

    def export(self) -> SqueezeExcite:
        out = SqueezeExcite(self.active_channels, self.reduce.active_out)
        out.reduce = self.reduce.export()
        out.expand = self.expand.export()
        return out


class Residual(nn.Module):
    """Static residual unit: ``act(body(x) + shortcut(x))`` (identity shortcut / act by default)."""

    def __init__(self, body: nn.Module, shortcut: Optional[nn.Module] = None, act: Optional[nn.Module] = None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Pool(nn.Module):
    """Global average pooling to ``N x C`` (a static head's first step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.mean((2, 3))
        return x
