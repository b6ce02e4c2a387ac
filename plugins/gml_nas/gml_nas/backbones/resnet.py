"""``ResNetSlice``: a searchable ResNet (stem width, per-stage width and number of blocks).

Search-space keys (each optional; missing ones are fixed by ``depth``):
``stem_channels``, ``stage_out_channels`` (one per stage; a stage's output width,
``expansion`` times its bottleneck width for depth >= 50) and ``stage_blocks``
(one per stage; the first ``d`` blocks of a stage run). ``depth`` picks the block
type (18/34 basic, 50/101/152 bottleneck) and the default blocks per stage.
``stem = "imagenet"`` is the 7x7/2 conv and max pool, ``"small"`` a 3x3/1 conv for
tiny images. Output: the last stage's feature map (``feat_dim`` channels).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal, Mapping, Optional

import torch
from torch import nn

from ..ops.blocks import ConvBNActSlice, Residual, drop_path
from ..space import SearchSpace, SpaceItem
from .base import Problems, SearchableBackbone, largest, positive_int

DEPTHS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3]),
          101: ("bottleneck", [3, 4, 23, 3]), 152: ("bottleneck", [3, 8, 36, 3])}
KEYS = ("stem_channels", "stage_out_channels", "stage_blocks")


class ResBlockSlice(nn.Module):
    """A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) residual block with sliceable widths."""

    def __init__(self, kind: str, in_max: int, out_max: int, stride: int, projection: bool, expansion: int = 4):
        super().__init__()
        self.kind, self.expansion = kind, expansion
        if kind == "basic":
            self.convs = nn.ModuleList([ConvBNActSlice(in_max, out_max, 3, stride, act="relu"),
                                        ConvBNActSlice(out_max, out_max, 3, act="none")])
        else:
            mid = out_max // expansion
            self.convs = nn.ModuleList([ConvBNActSlice(in_max, mid, 1, act="relu"),
                                        ConvBNActSlice(mid, mid, 3, stride, act="relu"),
                                        ConvBNActSlice(mid, out_max, 1, act="none")])
        self.projection = ConvBNActSlice(in_max, out_max, 1, stride, act="none") if projection else None
        self.relu = nn.ReLU()
        self.drop_path = 0.0

    def set_active(self, in_ch: int, out_ch: int) -> None:
        widths = [in_ch, out_ch, out_ch] if self.kind == "basic" else \
            [in_ch, out_ch // self.expansion, out_ch // self.expansion, out_ch]
        for conv, (a, b) in zip(self.convs, zip(widths, widths[1:])):
            conv.set_active(a, b)
        if self.projection is not None:
            self.projection.set_active(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv in self.convs:
            y = conv(y)
        shortcut = self.projection(x) if self.projection is not None else x
        return self.relu(drop_path(y, self.drop_path, self.training) + shortcut)

    def export(self) -> nn.Module:
        body = nn.Sequential(*[c.export() for c in self.convs])
        proj = self.projection.export() if self.projection is not None else None
        return Residual(body, proj, nn.ReLU())


class ResNetSlice(SearchableBackbone):
    """Searchable ResNet; ``ResNetSlice(depth=18)`` with an empty space is a plain ResNet-18."""

    def __init__(self, depth: int = 18, search_space: Optional[Mapping[str, Any]] = None, in_channels: int = 3,
                 stem: Literal["imagenet", "small"] = "imagenet", strides: Optional[list[int]] = None,
                 expansion: int = 4):
        super().__init__()
        p = Problems()
        if depth not in DEPTHS:
            p.add("depth", f"{depth} is not supported; accepted: {', '.join(map(str, DEPTHS))}")
            p.raise_if_any()
        kind, default_blocks = DEPTHS[depth]
        widths = [64, 128, 256, 512] if kind == "basic" else [256, 512, 1024, 2048]
        space = dict(search_space or {})
        p.keys(space, KEYS, (), "search_space")
        p.raise_if_any()
        n = len(space["stage_out_channels"]) if isinstance(space.get("stage_out_channels"), list) else \
            len(space["stage_blocks"]) if isinstance(space.get("stage_blocks"), list) else 4
        if n != 4 and ("stage_out_channels" not in space or "stage_blocks" not in space or strides is None):
            p.add("search_space", f"{n} stages need stage_out_channels, stage_blocks and strides "
                                  "(only 4-stage networks have defaults)")
            p.raise_if_any()
        space.setdefault("stem_channels", 64)
        space.setdefault("stage_out_channels", widths)
        space.setdefault("stage_blocks", default_blocks)
        strides = strides if strides is not None else [1, 2, 2, 2]
        self.space = SearchSpace({k: space[k] for k in KEYS}, "search_space")
        tree = self.space.tree
        p.length(tree["stage_out_channels"], n, "search_space.stage_out_channels", "one per stage")
        p.length(tree["stage_blocks"], n, "search_space.stage_blocks", "one per stage")
        p.length(strides, n, "strides", "one per stage")
        p.raise_if_any()
        p.values(tree["stem_channels"], "search_space.stem_channels", positive_int, "a positive integer")
        for i in range(n):
            p.values(tree["stage_blocks"][i], f"search_space.stage_blocks[{i}]", positive_int, "a positive integer")
            ok = positive_int if kind == "basic" else (lambda v: positive_int(v) and v % expansion == 0)
            p.values(tree["stage_out_channels"][i], f"search_space.stage_out_channels[{i}]", ok,
                     "a positive integer" + ("" if kind == "basic" else f" divisible by expansion={expansion}"))
        if any(s not in (1, 2) for s in strides):
            p.add("strides", f"each stride must be 1 or 2, got {strides}")
        p.raise_if_any()

        stem_max = largest(tree["stem_channels"])
        if stem == "imagenet":
            self.stem = ConvBNActSlice(in_channels, stem_max, 7, 2, act="relu")
            self.stem_pool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.stem = ConvBNActSlice(in_channels, stem_max, 3, 1, act="relu")
            self.stem_pool = nn.Identity()
        self.stages = nn.ModuleList()
        prev = tree["stem_channels"]
        for i in range(n):
            out = tree["stage_out_channels"][i]
            same_fixed = not isinstance(prev, SpaceItem) and not isinstance(out, SpaceItem) and prev == out
            stage = nn.ModuleList()
            for j in range(largest(tree["stage_blocks"][i])):
                first = j == 0
                stage.append(ResBlockSlice(kind, largest(prev) if first else largest(out), largest(out),
                                           strides[i] if first else 1,
                                           projection=first and not (strides[i] == 1 and same_fixed),
                                           expansion=expansion))
            self.stages.append(stage)
            prev = out
        self.set_arch(self.space.max())

    def _apply_arch(self, arch: Any) -> None:
        self.stem.set_active(self.stem.conv.in_channels, arch["stem_channels"])
        in_ch = arch["stem_channels"]
        for stage, out in zip(self.stages, arch["stage_out_channels"]):
            for j, block in enumerate(stage):
                block.set_active(in_ch if j == 0 else out, out)
            in_ch = out
        self._depths = [int(d) for d in arch["stage_blocks"]]
        self._feat_dim = int(in_ch)

    def residual_branch_norms(self) -> list[nn.Module]:
        return [b.convs[-1].bn for stage in self.stages for b in stage]

    @property
    def feat_dim(self) -> int:
        return self._feat_dim

    def set_drop_path(self, ratio: float) -> None:
        super().set_drop_path(ratio)
        blocks = [b for s in self.stages for b in s]
        for idx, block in enumerate(blocks):
            block.drop_path = ratio * idx / max(len(blocks) - 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.stem(x))
        for stage, depth in zip(self.stages, self._depths):
            for block in stage[:depth]:
                x = block(x)
        return x

    def export(self) -> nn.Module:
        layers: "OrderedDict[str, nn.Module]" = OrderedDict(stem=self.stem.export())
        if isinstance(self.stem_pool, nn.MaxPool2d):
            layers["stem_pool"] = nn.MaxPool2d(3, 2, 1)
        for i, (stage, depth) in enumerate(zip(self.stages, self._depths), start=1):
            for j, block in enumerate(stage[:depth]):
                layers[f"layer{i}_block{j}"] = block.export()
        return nn.Sequential(layers)
