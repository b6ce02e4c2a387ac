"""``MobileNetV3Slice``: a BigNAS / OFA-style searchable MobileNetV3.

The four search-space lists have one entry per stage: the stem conv first, then
every inverted-residual stage, then the last conv stage.

* ``MB_stage_blocks``: blocks per stage (the first ``d`` blocks of a stage run);
  stem and last entries must be 1.
* ``MB_kernel_size``: depthwise kernel of the stage (stem: its conv kernel;
  last: the kernel of the final expansion conv, usually 1).
* ``MB_expand_ratio``: inverted-bottleneck expansion (stem: must be 1; last: the
  final 1x1 expansion, e.g. 6).
* ``MB_out_channels``: output width (stem width, stage widths, and the feature
  width of the last conv, ``feat_dim``).

Each stage's stride, squeeze-and-excitation flag and activation come from
``strides``, ``use_se`` and ``acts`` (MobileNetV3-Large's when there are 6 stages).
Blocks after the first of a stage are residual. Output: ``N x feat_dim x 1 x 1``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Optional

import torch
from torch import nn

from ..ops.blocks import ACTIVATIONS, ConvBNActSlice, Residual, SESlice, drop_path, make_divisible
from ..space import SearchSpace
from .base import Problems, SearchableBackbone, largest, odd_int, positive_int, positive_number

KEYS = ("MB_stage_blocks", "MB_kernel_size", "MB_expand_ratio", "MB_out_channels")
#: MobileNetV3-Large's six inverted-residual stages (16, 24, 40, 80, 112, 160 channels)
LARGE_STRIDES = [1, 2, 2, 2, 1, 2]
LARGE_SE = [False, False, True, False, True, True]
LARGE_ACTS = ["relu", "relu", "relu", "hswish", "hswish", "hswish"]


class MBBlockSlice(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, optional SE, 1x1 project (all sliceable)."""

    def __init__(self, in_max: int, out_max: int, kernel_max: int, expand_max: float, stride: int, act: str,
                 use_se: bool, shortcut: bool, divisor: int = 8, se_reduction: int = 4):
        super().__init__()
        self.divisor = divisor
        self.stride = stride
        if expand_max != 1:
            mid_max = make_divisible(in_max * expand_max, divisor)
            self.expand: Optional[ConvBNActSlice] = ConvBNActSlice(in_max, mid_max, 1, act=act)
        else:
            mid_max = in_max
            self.expand = None
        self.depthwise = ConvBNActSlice(mid_max, mid_max, kernel_max, stride, groups=mid_max, act=act)
        self.se = SESlice(mid_max, se_reduction, divisor) if use_se else None
        self.project = ConvBNActSlice(mid_max, out_max, 1, act="none")
        self.shortcut = shortcut
        self.drop_path = 0.0

    def set_active(self, in_ch: int, out_ch: int, kernel: int, expand: float) -> None:
        mid = make_divisible(in_ch * expand, self.divisor) if self.expand is not None else in_ch
        if self.expand is not None:
            self.expand.set_active(in_ch, mid)
        self.depthwise.set_active(mid, mid, kernel)
        if self.se is not None:
            self.se.set_active(mid)
        self.project.set_active(mid, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        if self.shortcut:
            y = drop_path(y, self.drop_path, self.training) + x
        return y

    def export(self) -> nn.Module:
        layers = [] if self.expand is None else [self.expand.export()]
        layers.append(self.depthwise.export())
        if self.se is not None:
            layers.append(self.se.export())
        layers.append(self.project.export())
        body = nn.Sequential(*layers)
        return Residual(body) if self.shortcut else body


class MobileNetV3Slice(SearchableBackbone):
    """Searchable MobileNetV3 (kernel, expansion, width and depth per stage; SE and h-swish as in V3)."""

    def __init__(self, search_space: Mapping[str, Any], in_channels: int = 3, stem_stride: int = 2,
                 strides: Optional[list[int]] = None, use_se: Optional[list[bool]] = None,
                 acts: Optional[list[str]] = None, divisor: int = 8, se_reduction: int = 4,
                 conv_cfg: Optional[Mapping[str, Any]] = None):
        super().__init__()
        self.space = SearchSpace(search_space, "search_space")
        tree = self.space.tree
        n_mb = self._validate(tree, strides, use_se, acts, conv_cfg, divisor, se_reduction, stem_stride)
        strides = strides if strides is not None else LARGE_STRIDES
        use_se = use_se if use_se is not None else LARGE_SE
        acts = acts if acts is not None else LARGE_ACTS
        blocks, kernels, expands, chans = (tree[k] for k in KEYS)
        self.stem = ConvBNActSlice(in_channels, largest(chans[0]), largest(kernels[0]), stem_stride, act="hswish")
        self.stages = nn.ModuleList()
        in_max = largest(chans[0])
        for i in range(1, n_mb + 1):
            out_max, k_max, e_max = largest(chans[i]), largest(kernels[i]), largest(expands[i])
            stage = nn.ModuleList()
            for j in range(largest(blocks[i])):
                stage.append(MBBlockSlice(in_max if j == 0 else out_max, out_max, k_max, e_max,
                                          strides[i - 1] if j == 0 else 1, acts[i - 1], use_se[i - 1],
                                          shortcut=j > 0, divisor=divisor, se_reduction=se_reduction))
            self.stages.append(stage)
            in_max = out_max
        last_mid = make_divisible(in_max * largest(expands[-1]), divisor)
        self.final_expand = ConvBNActSlice(in_max, last_mid, largest(kernels[-1]), act="hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = ConvBNActSlice(last_mid, largest(chans[-1]), 1, act="hswish", bn=False, bias=True)
        self.divisor = divisor
        self.set_arch(self.space.max())

    @staticmethod
    def _validate(tree: Any, strides, use_se, acts, conv_cfg, divisor, se_reduction, stem_stride) -> int:
        p = Problems()
        if not isinstance(tree, dict):
            p.add("search_space", "expected a table with keys " + ", ".join(KEYS))
            p.raise_if_any()
        p.keys(tree, KEYS, KEYS, "search_space")
        p.raise_if_any()
        n = len(tree["MB_out_channels"]) if isinstance(tree["MB_out_channels"], list) else 0
        for key in KEYS:
            p.length(tree[key], n, f"search_space.{key}", "one per stage: stem, stages..., last conv, like "
                     "MB_out_channels")
        p.raise_if_any()
        if n < 3:
            p.add("search_space.MB_out_channels", f"expected at least 3 entries (stem, one stage, last conv), got {n}")
            p.raise_if_any()
        for i in range(n):
            p.values(tree["MB_stage_blocks"][i], f"search_space.MB_stage_blocks[{i}]",
                     (lambda v: v == 1) if i in (0, n - 1) else positive_int,
                     "1 (the stem and the last conv are single layers)" if i in (0, n - 1) else "a positive integer")
            p.values(tree["MB_kernel_size"][i], f"search_space.MB_kernel_size[{i}]", odd_int, "an odd kernel size")
            p.values(tree["MB_expand_ratio"][i], f"search_space.MB_expand_ratio[{i}]",
                     (lambda v: v == 1) if i == 0 else positive_number,
                     "1 (the stem is a plain conv)" if i == 0 else "a positive number")
            p.values(tree["MB_out_channels"][i], f"search_space.MB_out_channels[{i}]", positive_int,
                     "a positive integer")
        n_mb = n - 2
        if (strides is None or use_se is None or acts is None) and n_mb != len(LARGE_STRIDES):
            for name, value in (("strides", strides), ("use_se", use_se), ("acts", acts)):
                if value is None:
                    p.add(name, f"required: one entry per inverted-residual stage ({n_mb}); only 6-stage spaces "
                                "default to MobileNetV3-Large's")
        for name, value in (("strides", strides), ("use_se", use_se), ("acts", acts)):
            if value is not None:
                p.length(value, n_mb, name, "one per inverted-residual stage")
        if strides and any(s not in (1, 2) for s in strides):
            p.add("strides", f"each stride must be 1 or 2, got {strides}")
        if acts and any(a not in ACTIVATIONS for a in acts):
            p.add("acts", f"unknown activation in {acts}; accepted: {', '.join(ACTIVATIONS)}")
        if stem_stride not in (1, 2):
            p.add("stem_stride", f"must be 1 or 2, got {stem_stride}")
        if divisor < 1 or se_reduction < 1:
            p.add("divisor", "divisor and se_reduction must be positive")
        if conv_cfg is not None and conv_cfg.get("type") not in ("Conv2dSlice", "gml.Conv2dSlice"):
            p.add("conv_cfg.type", f"{conv_cfg.get('type')!r} is not supported; accepted: Conv2dSlice")
        p.raise_if_any()
        return n_mb

    def _apply_arch(self, arch: Any) -> None:
        blocks, kernels, expands, chans = (arch[k] for k in KEYS)
        self.stem.set_active(self.stem.conv.in_channels, chans[0], kernels[0])
        in_ch = chans[0]
        for i, stage in enumerate(self.stages, start=1):
            for j, block in enumerate(stage):
                block.set_active(in_ch if j == 0 else chans[i], chans[i], kernels[i], expands[i])
            in_ch = chans[i]
        mid = make_divisible(in_ch * expands[-1], self.divisor)
        self.final_expand.set_active(in_ch, mid, kernels[-1])
        self.feature_mix.set_active(mid, chans[-1])
        self._depths = [int(blocks[i]) for i in range(1, len(self.stages) + 1)]
        self._feat_dim = int(chans[-1])

    def residual_branch_norms(self) -> list[nn.Module]:
        return [b.project.bn for stage in self.stages for b in stage if b.shortcut]

    @property
    def feat_dim(self) -> int:
        return self._feat_dim

    def set_drop_path(self, ratio: float) -> None:
        super().set_drop_path(ratio)
        total = sum(len(s) for s in self.stages)
        idx = 0
        for stage in self.stages:
            for block in stage:
                block.drop_path = ratio * idx / max(total - 1, 1)
                idx += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage, depth in zip(self.stages, self._depths):
            for block in stage[:depth]:
                x = block(x)
        x = self.pool(self.final_expand(x))
        return self.feature_mix(x)

    def export(self) -> nn.Module:
        layers: "OrderedDict[str, nn.Module]" = OrderedDict(stem=self.stem.export())
        for i, (stage, depth) in enumerate(zip(self.stages, self._depths), start=1):
            for j, block in enumerate(stage[:depth]):
                layers[f"stage{i}_block{j}"] = block.export()
        layers["final_expand"] = self.final_expand.export()
        layers["pool"] = nn.AdaptiveAvgPool2d(1)
        layers["feature_mix"] = self.feature_mix.export()
        return nn.Sequential(layers)
