"""The data model of a channel dependency analysis: groups, members, layers, mask points."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

OUT, IN, NORM, DW, HEADS, GIN = "out", "in", "norm", "dw", "heads", "gin"


@dataclass(frozen=True)
class Member:
    """One parameter dimension of a module that holds channels of a group.

    ``role``: ``out`` (output channels of a conv/linear), ``in`` (input channels),
    ``norm`` (BatchNorm features), ``dw`` (depthwise conv: in = out = groups), ``heads``
    (attention heads; ``repeat`` = head size), ``gin`` (input channels of a grouped convolution:
    each conv group keeps its own columns of the weight).
    ``offset`` is the group's first channel inside that dimension; ``repeat`` is the
    number of input features per channel (a linear layer after a spatial flatten).
    ``index``: where channels moved by a shuffle or a channel slice sit scattered in that
    dimension, the position of each of the group's channels (then ``offset`` is unused).
    """

    module: str
    role: str
    offset: int
    repeat: int = 1
    index: tuple[int, ...] = ()

    def rows(self, size: int) -> slice | torch.Tensor:
        """The group's ``size`` channels inside the module's dimension (a slice or an index tensor)."""
        return torch.tensor(self.index, dtype=torch.long) if self.index else slice(self.offset, self.offset + size)


@dataclass
class ChannelGroup:
    """Channels that are kept or removed together."""

    index: int
    key: str
    size: int
    members: list[Member] = field(default_factory=list)
    fixed_reason: str = ""
    blocks: int = 1                          # grouped convs: every block of size / blocks keeps as many

    @property
    def prunable(self) -> bool:
        return not self.fixed_reason

    def modules(self, *roles: str) -> list[str]:
        return [m.module for m in self.members if not roles or m.role in roles]


@dataclass(frozen=True)
class Layer:
    """A conv or linear layer as the FLOPs model sees it (groups by index)."""

    module: str
    kind: str                                # conv | dwconv | linear | attention
    inputs: tuple[tuple[int, int], ...]      # (group index, channels)
    outputs: tuple[tuple[int, int], ...]
    repeat: int                              # input features per channel (linear)
    groups: int                              # conv groups (constant); attention: tokens per window
    kernel: int                              # kernel elements
    positions: int                           # output positions: batch x spatial (rows for linear)


@dataclass(frozen=True)
class MaskPoint:
    """A module whose output channels are masked: ``(offset, size, group, primary)`` ranges.

    ``offset`` is a tuple of ``size`` positions where a group's channels sit scattered (shuffled).

    ``primary`` ranges sit right after a producing layer (its BN); DMCP's soft
    marginal scaling is applied there only, the binary mask everywhere. ``axis`` is the
    output axis holding the channels (-1 for channels-last linear layers); ``None`` for
    attention heads (the layer is then recomputed with per-head scales).
    """

    module: str
    channels: int
    ranges: tuple[tuple[int | tuple[int, ...], int, int, bool], ...]
    axis: int | None = 1

    @property
    def primary(self) -> bool:
        return any(r[3] for r in self.ranges)


@dataclass(frozen=True)
class ChannelMove:
    """An operation that reorders or slices channels (a channel shuffle, ``chunk`` / ``split``).

    Once channels are pruned it no longer fits the smaller tensors and the export rewrites it:
    ``kind`` ``select`` (node ``node`` becomes an ``index_select`` of ``source``) or ``split``
    (``node`` becomes a ``torch.split`` of ``source`` with the pruned piece sizes). ``inputs``
    and each of ``outputs`` list every channel as ``(group index, channel in group)``.
    """

    node: str
    kind: str
    source: str
    dim: int
    inputs: tuple[tuple[int, int], ...]
    outputs: tuple[tuple[tuple[int, int], ...], ...]


@dataclass
class ChannelGraph:
    """The result of :func:`analyze`."""

    groups: list[ChannelGroup]
    layers: list[Layer]
    mask_points: list[MaskPoint]
    input_shape: tuple[int, ...]
    exclude: tuple[str, ...] = ()
    moves: list[ChannelMove] = field(default_factory=list)

    @property
    def prunable(self) -> list[ChannelGroup]:
        return [g for g in self.groups if g.prunable]

    def blocks(self) -> dict[int, int]:
        """``{group index: blocks}`` of the prunable groups with a grouped-conv constraint."""
        return {g.index: g.blocks for g in self.prunable if g.blocks > 1}

    def group(self, key: str) -> ChannelGroup:
        for g in self.groups:
            if g.key == key:
                return g
        raise KeyError(key)

    def describe(self) -> str:
        """A readable table of the groups (``gml prune analyze``)."""
        lines = []
        for g in self.groups:
            if not g.members:
                continue
            state = "prunable" if g.prunable else f"fixed ({g.fixed_reason})"
            if g.blocks > 1:
                state += f", {g.blocks} conv groups of {g.size // g.blocks}"
            lines.append(f"[{g.index}] {g.key}: {g.size} channels, {state}")
            for role in (OUT, HEADS, DW, NORM, IN, GIN):
                names = g.modules(role)
                if names:
                    lines.append(f"    {role:4s}: {', '.join(names)}")
        return "\n".join(lines)


def block_prefix(size: int, blocks: int, n: int) -> torch.Tensor:
    """Indices of the first ``n / blocks`` channels of each of ``blocks`` equal blocks (``n`` a multiple)."""
    if int(n) % blocks:
        raise ValueError(f"{n} channels cannot be split evenly over {blocks} conv groups: not a multiple of {blocks}")
    per, width = int(n) // blocks, size // blocks
    return (torch.arange(blocks).unsqueeze(1) * width + torch.arange(per)).flatten()


def block_topk(scores: torch.Tensor, n: int, blocks: int = 1) -> torch.Tensor:
    """A keep mask of the ``n`` highest scores, ``n / blocks`` in each block when ``blocks`` > 1."""
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    if blocks <= 1:
        keep[torch.topk(scores, int(n)).indices] = True
        return keep
    rows = scores.view(blocks, -1)
    idx = torch.topk(rows, int(n) // blocks, dim=1).indices + torch.arange(blocks).unsqueeze(1) * rows.shape[1]
    keep[idx.flatten()] = True
    return keep
