"""``ShuffleNetV2_OneShot``: the SPOS supernet (Guo et al., 2020).

Every block picks one of four candidates with their own weights:
``shuffle_3x3``, ``shuffle_5x5``, ``shuffle_7x7`` (ShuffleNetV2 units with that
depthwise kernel) and ``xception`` (three depthwise 3x3 convs). Stride-1 blocks
split the channels into even and odd halves (the even half passes through);
stride-2 blocks also run a depthwise projection branch. Search-space key:
``block_choices``, either one table per block or a single table for all blocks
(default: all four candidates everywhere).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Mapping, Optional

import torch
from torch import nn

from ..space import SearchSpace
from .base import Problems, SearchableBackbone

CHOICES = ("shuffle_3x3", "shuffle_5x5", "shuffle_7x7", "xception")


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class ShuffleUnit(nn.Module):
    """One candidate: a ShuffleNetV2 unit with a ``kernel`` depthwise conv, or the Xception variant."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int, xception: bool = False):
        super().__init__()
        self.stride = stride
        branch_in = in_channels // 2 if stride == 1 else in_channels
        branch_out = out_channels - branch_in
        mid = out_channels // 2
        if xception:
            layers = (_conv_bn(branch_in, branch_in, 3, stride, branch_in, relu=False) + _conv_bn(branch_in, mid, 1)
                      + _conv_bn(mid, mid, 3, 1, mid, relu=False) + _conv_bn(mid, mid, 1)
                      + _conv_bn(mid, mid, 3, 1, mid, relu=False) + _conv_bn(mid, branch_out, 1))
        else:
            layers = (_conv_bn(branch_in, mid, 1) + _conv_bn(mid, mid, kernel, stride, mid, relu=False)
                      + _conv_bn(mid, branch_out, 1))
        self.main = nn.Sequential(*layers)
        k = 3 if xception else kernel
        self.proj = nn.Sequential(*(_conv_bn(in_channels, in_channels, k, stride, in_channels, relu=False)
                                    + _conv_bn(in_channels, in_channels, 1))) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return torch.cat((x[:, 0::2], self.main(x[:, 1::2])), 1)
        return torch.cat((self.proj(x), self.main(x)), 1)


def make_candidate(name: str, in_channels: int, out_channels: int, stride: int) -> ShuffleUnit:
    if name == "xception":
        return ShuffleUnit(in_channels, out_channels, stride, 3, xception=True)
    return ShuffleUnit(in_channels, out_channels, stride, int(name[-1]))


class ChoiceBlock(nn.Module):
    """All candidates of one block; ``active`` names the one that runs."""

    def __init__(self, names: list[str], in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.candidates = nn.ModuleDict({n: make_candidate(n, in_channels, out_channels, stride) for n in names})
        self.active = names[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.candidates[self.active](x)


class ShuffleNetV2_OneShot(SearchableBackbone):  # noqa: N801 - the name users of the original system know
    """SPOS single-path one-shot supernet; default sizes are ShuffleNetV2 1.0x on ImageNet."""

    def __init__(self, search_space: Optional[Mapping[str, Any]] = None, in_channels: int = 3,
                 stage_blocks: tuple[int, ...] = (4, 4, 8, 4), stage_out_channels: tuple[int, ...] = (64, 160, 320, 640),
                 stem_channels: int = 16, last_channels: int = 1024, stem_stride: int = 2, stem_pool: bool = True):
        super().__init__()
        p = Problems()
        n_blocks = sum(stage_blocks)
        space = dict(search_space or {})
        p.keys(space, ("block_choices",), (), "search_space")
        if len(stage_blocks) != len(stage_out_channels):
            p.add("stage_out_channels", f"expected {len(stage_blocks)} entries (one per stage), "
                                        f"got {len(stage_out_channels)}")
        prev = stem_channels
        for i, c in enumerate(stage_out_channels):
            if c % 2 or c <= prev:
                p.add(f"stage_out_channels[{i}]", f"{c} must be an even number (channel split) greater than the "
                                                  f"stage's input width {prev} (stride-2 units concatenate both)")
            prev = c
        if stem_stride not in (1, 2):
            p.add("stem_stride", f"must be 1 or 2, got {stem_stride}")
        p.raise_if_any()
        choices = space.get("block_choices", {"type": "Categorical", "data": list(CHOICES)})
        if isinstance(choices, Mapping):
            choices = [dict(choices) for _ in range(n_blocks)]
        self.space = SearchSpace({"block_choices": choices}, "search_space")
        tree = self.space.tree["block_choices"]
        if p.length(tree, n_blocks, "search_space.block_choices", f"one per block, sum(stage_blocks) = {n_blocks}"):
            for i, node in enumerate(tree):
                names = node.choices() if hasattr(node, "choices") else [node]
                bad = [nm for nm in names if nm not in CHOICES]
                if bad:
                    p.add(f"search_space.block_choices[{i}]", f"unknown candidate {bad[0]!r}; accepted: "
                                                              f"{', '.join(CHOICES)}")
        p.raise_if_any()
        self.stem = nn.Sequential(*_conv_bn(in_channels, stem_channels, 3, stem_stride))
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if stem_pool else nn.Identity()
        self.blocks = nn.ModuleList()
        prev, idx = stem_channels, 0
        for n, out in zip(stage_blocks, stage_out_channels):
            for j in range(n):
                node = tree[idx]
                names = list(node.choices()) if hasattr(node, "choices") else [node]
                self.blocks.append(ChoiceBlock(names, prev if j == 0 else out, out, 2 if j == 0 else 1))
                idx += 1
            prev = out
        self.last_conv = nn.Sequential(*_conv_bn(prev, last_channels, 1))
        self.last_channels = last_channels
        self.set_arch(self.space.max())

    def _apply_arch(self, arch: Any) -> None:
        for block, name in zip(self.blocks, arch["block_choices"]):
            block.active = name

    @property
    def feat_dim(self) -> int:
        return self.last_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.last_conv(x)

    def export(self) -> nn.Module:
        layers: "OrderedDict[str, nn.Module]" = OrderedDict(stem=copy.deepcopy(self.stem))
        if isinstance(self.stem_pool, nn.MaxPool2d):
            layers["stem_pool"] = nn.MaxPool2d(3, 2, 1)
        for i, block in enumerate(self.blocks):
            layers[f"block{i}"] = copy.deepcopy(block.candidates[block.active])
        layers["last_conv"] = copy.deepcopy(self.last_conv)
        return nn.Sequential(layers)
