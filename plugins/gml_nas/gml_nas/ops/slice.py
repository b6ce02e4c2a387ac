"""Slice ops: one shared weight, any sub-configuration.

Input channels always follow the input tensor; output channels, kernel size and
resolution are the ``active_*`` attributes a supernet sets for its current
subnet. Slicing rules (they define the weight sharing, and ``export`` applies the
same rules to produce plain torch modules):

* output / input channels: the first ``n`` (per group for grouped convs);
* kernel size: the centre ``k x k`` crop of the largest kernel, padding ``(k-1)//2``;
* depthwise convs: groups follow the active channel count.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class Conv2dSlice(nn.Conv2d):
    """``nn.Conv2d`` at its largest size; runs any prefix of channels and centre crop of the kernel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: Optional[int] = None, dilation: int = 1, groups: int = 1, bias: bool = False):
        self.auto_padding = padding is None
        pad = (kernel_size - 1) // 2 * dilation if padding is None else padding
        super().__init__(in_channels, out_channels, kernel_size, stride, pad, dilation, groups, bias)
        self.depthwise = groups > 1 and groups == in_channels == out_channels
        self.active_in = in_channels
        self.active_out = out_channels
        self.active_kernel = kernel_size

    def set_active(self, in_channels: Optional[int] = None, out_channels: Optional[int] = None,
                   kernel_size: Optional[int] = None) -> None:
        """Choose the sub-configuration; a depthwise conv's output follows its input."""
        if in_channels is not None:
            self.active_in = in_channels
        if self.depthwise:
            self.active_out = self.active_in
        elif out_channels is not None:
            self.active_out = out_channels
        if kernel_size is not None:
            self.active_kernel = kernel_size
        self._validate()

    def _validate(self) -> None:
        k, kmax = self.active_kernel, self.kernel_size[0]
        if k > kmax or (kmax - k) % 2:
            raise ValueError(f"kernel {k} cannot be cropped from the centre of {kmax}x{kmax}")
        if k != kmax and not self.auto_padding:
            raise ValueError("kernel-size search needs automatic ('same') padding")
        if self.active_in > self.in_channels or self.active_out > self.out_channels:
            raise ValueError(f"active channels {self.active_in}->{self.active_out} exceed "
                             f"{self.in_channels}->{self.out_channels}")
        g = self.groups
        if g > 1 and not self.depthwise and (self.active_in % g or self.active_out % g):
            raise ValueError(f"active channels {self.active_in}->{self.active_out} not divisible by groups={g}")

    def sliced(self, in_channels: int) -> tuple[torch.Tensor, Optional[torch.Tensor], int, int]:
        """(weight, bias, groups, padding) of the active sub-configuration for ``in_channels`` inputs."""
        k, kmax = self.active_kernel, self.kernel_size[0]
        s = (kmax - k) // 2
        w = self.weight
        if self.depthwise:
            out, groups = in_channels, in_channels
            w = w[:out]
        elif self.groups == 1:
            out, groups = self.active_out, 1
            w = w[:out, :in_channels]
        else:
            g = self.groups
            out, groups = self.active_out, g
            w = w.view(g, self.out_channels // g, self.in_channels // g, kmax, kmax)
            w = w[:, :out // g, :in_channels // g].reshape(out, in_channels // g, kmax, kmax)
        if k != kmax:
            w = w[:, :, s:s + k, s:s + k]
        bias = self.bias
        if bias is not None:
            if self.groups > 1 and not self.depthwise:
                bias = bias.view(self.groups, -1)[:, :out // self.groups].reshape(out)
            else:
                bias = bias[:out]
        pad = (k - 1) // 2 * self.dilation[0] if self.auto_padding else self.padding[0]
        return w.contiguous(), bias, groups, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if (c == self.in_channels and self.active_out == self.out_channels
                and self.active_kernel == self.kernel_size[0]):
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        w, b, groups, pad = self.sliced(c)
        return F.conv2d(x, w, b, self.stride, pad, self.dilation, groups)

    def export(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding a copy of the active weights."""
        w, b, groups, pad = self.sliced(self.active_in)
        conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], w.shape[-1], self.stride, pad, self.dilation, groups,
                         bias=b is not None)
        conv.weight.data.copy_(w.detach())
        if b is not None:
            conv.bias.data.copy_(b.detach())
        return conv


class LinearSlice(nn.Linear):
    """``nn.Linear`` whose input width follows the input and whose output width is ``active_out``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.active_in = in_features
        self.active_out = out_features

    def set_active(self, in_features: Optional[int] = None, out_features: Optional[int] = None) -> None:
        if in_features is not None:
            self.active_in = in_features
        if out_features is not None:
            self.active_out = out_features
        if self.active_in > self.in_features or self.active_out > self.out_features:
            raise ValueError(f"active features {self.active_in}->{self.active_out} exceed "
                             f"{self.in_features}->{self.out_features}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        if c == self.in_features and self.active_out == self.out_features:
            return F.linear(x, self.weight, self.bias)
        b = self.bias[:self.active_out] if self.bias is not None else None
        return F.linear(x, self.weight[:self.active_out, :c], b)

    def export(self) -> nn.Linear:
        lin = nn.Linear(self.active_in, self.active_out, bias=self.bias is not None)
        lin.weight.data.copy_(self.weight.detach()[:self.active_out, :self.active_in])
        if self.bias is not None:
            lin.bias.data.copy_(self.bias.detach()[:self.active_out])
        return lin


class BatchNorm2dSlice(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over the first ``C`` channels of its input.

    ``update_stats = False`` makes training-mode forwards normalise with batch
    statistics without touching the running ones (BigNAS keeps the running
    statistics of the largest subnet; every other subnet is re-calibrated).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1):
        super().__init__(num_features, eps, momentum)
        self.active_features = num_features
        self.update_stats = True

    def set_active(self, num_features: int) -> None:
        if num_features > self.num_features:
            raise ValueError(f"active features {num_features} exceed {self.num_features}")
        self.active_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features and self.update_stats:
            return super().forward(x)
        update = self.training and self.update_stats and self.track_running_stats
        factor = 0.0 if self.momentum is None else self.momentum
        if update:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        if use_batch and not update:
            mean = var = None
        else:
            mean, var = self.running_mean[:c], self.running_var[:c]
        w = self.weight[:c] if self.weight is not None else None
        b = self.bias[:c] if self.bias is not None else None
        return F.batch_norm(x, mean, var, w, b, use_batch, factor, self.eps)

    def export(self) -> nn.BatchNorm2d:
        c = self.active_features
        bn = nn.BatchNorm2d(c, self.eps, self.momentum, self.affine, self.track_running_stats)
        if self.affine:
            bn.weight.data.copy_(self.weight.detach()[:c])
            bn.bias.data.copy_(self.bias.detach()[:c])
        if self.track_running_stats:
            bn.running_mean.copy_(self.running_mean[:c])
            bn.running_var.copy_(self.running_var[:c])
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn.train(self.training)


class Resize(nn.Module):
    """Bilinear resize to a fixed square ``resolution`` (identity when already that size)."""

    def __init__(self, resolution: int):
        super().__init__()
        self.resolution = resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        if x.shape[-1] == r and x.shape[-2] == r:
            return x
        return F.interpolate(x, size=[r, r], mode="bilinear", align_corners=False)


class ResizeSlice(nn.Module):
    """Searchable input resolution: ``resolution`` is a search-space table (e.g. ``Int``)."""

    def __init__(self, resolution: object):
        super().__init__()
        from ..space import SearchSpace

        self.space = SearchSpace({"resolution": resolution}, "resize_process")
        self.active_resolution = self.space.max()["resolution"] if self.space.items else resolution

    def set_arch(self, values: dict) -> None:
        self.active_resolution = int(self.space.resolve(values)["resolution"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = int(self.active_resolution)
        if x.shape[-1] == r and x.shape[-2] == r:
            return x
        return F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)

    def export(self) -> Resize:
        return Resize(int(self.active_resolution))
