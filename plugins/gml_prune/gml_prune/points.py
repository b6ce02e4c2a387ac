"""Where channel masks go: the mask points of a channel graph."""

from __future__ import annotations

from torch import fx, nn

from .attention import ATTENTION_TYPES
from .groups import DW, GIN, HEADS, IN, NORM, OUT, ChannelGroup, MaskPoint


def sole_bn_user(node: fx.Node | None, gm: fx.GraphModule) -> fx.Node | None:
    """The BatchNorm that is the only user of ``node``, if any."""
    if node is None or len(node.users) != 1:
        return None
    user = next(iter(node.users))
    if user.op == "call_module" and isinstance(gm.get_submodule(user.target), nn.modules.batchnorm._BatchNorm):
        return user
    return None


def mask_points(gm: fx.GraphModule, groups: list[ChannelGroup]) -> list[MaskPoint]:
    """Every BN of a prunable group, and producers / depthwise convs not followed by their own BN.
    *Primary* ranges (DMCP's soft scaling) are the BNs right after a producing layer, or the
    producers themselves in a group without such BNs. A group's channels scattered in a module
    (moved by a shuffle) are given by their positions instead of an offset."""
    nodes = {n.target: n for n in gm.graph.nodes if n.op == "call_module"}
    ranges: dict[str, list[tuple]] = {}
    for g in groups:
        if not g.prunable:
            continue
        producers = {m.module for m in g.members if m.role in (OUT, HEADS)}
        after_producer = set()
        for m in g.members:
            source = nodes[m.module].args[0] if m.role == NORM and m.module in nodes else None
            if isinstance(source, fx.Node) and source.op == "call_module" and source.target in producers:
                after_producer.add(m.module)
        for m in g.members:
            if m.role in (IN, GIN):
                continue
            if m.role in (OUT, DW) and sole_bn_user(nodes.get(m.module), gm) is not None:
                continue                                       # the BN right after it masks it
            primary = m.module in after_producer if after_producer else m.role in (OUT, HEADS)
            ranges.setdefault(m.module, []).append((m.index or m.offset, g.size, g.index, primary))
    points = []
    for name, rs in ranges.items():
        module = gm.get_submodule(name)
        rs.sort(key=lambda r: r[0] if isinstance(r[0], int) else r[0][0])
        if isinstance(module, ATTENTION_TYPES):
            points.append(MaskPoint(name, int(module.num_heads), tuple(rs), None))
            continue
        channels = getattr(module, "num_features", None) or getattr(module, "out_channels", None) \
            or getattr(module, "out_features")
        axis = -1 if isinstance(module, nn.Linear) else 1
        points.append(MaskPoint(name, int(channels), tuple(rs), axis))
    return points
