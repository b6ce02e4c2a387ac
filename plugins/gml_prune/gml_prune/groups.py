"""The data model of a channel dependency analysis: groups, members, layers, mask points."""

from __future__ import annotations

from dataclasses import dataclass, field

OUT, IN, NORM, DW, HEADS = "out", "in", "norm", "dw", "heads"


@dataclass(frozen=True)
class Member:
    """One parameter dimension of a module that holds channels of a group.

    ``role``: ``out`` (output channels of a conv/linear), ``in`` (input channels),
    ``norm`` (BatchNorm features), ``dw`` (depthwise conv: in = out = groups), ``heads``
    (attention heads; ``repeat`` = head size).
    ``offset`` is the group's first channel inside that dimension; ``repeat`` is the
    number of input features per channel (a linear layer after a spatial flatten).
    """

    module: str
    role: str
    offset: int
    repeat: int = 1


@dataclass
class ChannelGroup:
    """Channels that are kept or removed together."""

    index: int
    key: str
    size: int
    members: list[Member] = field(default_factory=list)
    fixed_reason: str = ""

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

    ``primary`` ranges sit right after a producing layer (its BN); DMCP's soft
    marginal scaling is applied there only, the binary mask everywhere. ``axis`` is the
    output axis holding the channels (-1 for channels-last linear layers); ``None`` for
    attention heads (the layer is then recomputed with per-head scales).
    """

    module: str
    channels: int
    ranges: tuple[tuple[int, int, int, bool], ...]
    axis: int | None = 1

    @property
    def primary(self) -> bool:
        return any(r[3] for r in self.ranges)


@dataclass
class ChannelGraph:
    """The result of :func:`analyze`."""

    groups: list[ChannelGroup]
    layers: list[Layer]
    mask_points: list[MaskPoint]
    input_shape: tuple[int, ...]
    exclude: tuple[str, ...] = ()

    @property
    def prunable(self) -> list[ChannelGroup]:
        return [g for g in self.groups if g.prunable]

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
            lines.append(f"[{g.index}] {g.key}: {g.size} channels, {state}")
            for role in (OUT, HEADS, DW, NORM, IN):
                names = g.modules(role)
                if names:
                    lines.append(f"    {role:4s}: {', '.join(names)}")
        return "\n".join(lines)
