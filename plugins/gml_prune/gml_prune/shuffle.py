"""Channel layouts, and the operations that move channels: shuffles, slices and concatenation.

A layout lists a tensor's channels as whole channel *spaces* (``segs``) or, once a shuffle
or a slice has moved them, channel by channel (``order``: ``(space, index)`` pairs).

A channel shuffle (``view`` that splits the channel axis, ``transpose`` / ``permute`` of the
factor axes, ``view`` that merges them back, as torchvision's ShuffleNetV2 does; or
``torch.channel_shuffle``) is a fixed permutation of channel indices: :func:`axis_order`.
``chunk`` / ``split`` along the channels hand each piece a slice of the layout. Channels keep
their spaces through both, so the groups on either side are coupled channel by channel
through the index map; a space whose channels then go different ways is split into
sub-groups of channels that go the same ways (:func:`refine`). Each moving operation is
recorded (:class:`ChannelMove`) so the export can rewrite it for the pruned channel counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import fx

from .groups import Member

Atom = tuple[int, int]                       # (space id, channel index in the space)


@dataclass
class Layout:
    segs: list[tuple[int, int]]              # (space id, channels): whole spaces; with ``order``: per space, count
    repeat: int = 1
    dim: int = 1                             # the tensor axis that holds the channels
    order: tuple[Atom, ...] | None = None    # channel by channel, once moved by a shuffle or a slice

    @property
    def channels(self) -> int:
        return len(self.order) if self.order is not None else sum(n for _, n in self.segs)

    def atoms(self) -> list[Atom]:
        return list(self.order) if self.order is not None else [(s, i) for s, n in self.segs for i in range(n)]


@dataclass
class Split:
    """A tensor whose channel axis a ``view`` split into several axes (the first step of a shuffle)."""

    base: Layout
    source: fx.Node                          # the tensor before the split
    sizes: tuple[int, ...]                   # the factors, outermost first
    axes: tuple[int, ...]                    # the tensor axis now holding each factor


def axis_order(sizes: Sequence[int], perm: Sequence[int]) -> torch.Tensor:
    """Channel axis viewed as ``sizes``, its factor axes permuted by ``perm``, merged back:
    position ``j`` of the result holds the old channel ``axis_order(...)[j]``."""
    n = math.prod(sizes)
    return torch.arange(n).view(*sizes).permute(*perm).reshape(n)


def shuffle_order(channels: int, groups: int) -> torch.Tensor:
    """``channel_shuffle(x, groups)`` as an index map (position j holds old channel order[j])."""
    return axis_order((groups, channels // groups), (1, 0))


def normalized(order: Sequence[Atom], size_of: Callable[[int], int], dim: int) -> Layout:
    """A per-channel layout, in ``segs`` form again when it is whole spaces in their natural order."""
    segs, i = [], 0
    while i < len(order):
        sid, idx = order[i]
        n = size_of(sid)
        if idx != 0 or list(order[i:i + n]) != [(sid, k) for k in range(n)]:
            counts: dict[int, int] = {}
            for s, _ in order:
                counts[s] = counts.get(s, 0) + 1
            return Layout(list(counts.items()), 1, dim, tuple(order))
        segs.append((sid, n))
        i += n
    return Layout(segs, 1, dim)


# -- rules (``an`` is graph._Analyzer) ---------------------------------------------------------
def split_view(node: fx.Node, inp: Any, in_meta: Any, out_meta: Any) -> Split | None:
    """A ``view`` / ``reshape`` that splits the channel axis into consecutive axes."""
    if not isinstance(inp, Layout) or inp.repeat != 1 or not isinstance(node.args[0], fx.Node):
        return None
    src, dst, d = list(in_meta.shape), list(out_meta.shape), inp.dim
    k = len(dst) - len(src) + 1
    if k < 2 or dst[:d] != src[:d] or math.prod(dst[d:d + k]) != src[d] or dst[d + k:] != src[d + 1:]:
        return None
    return Split(inp, node.args[0], tuple(int(s) for s in dst[d:d + k]), tuple(range(d, d + k)))


def permute_split(sp: Split, order: Sequence[int]) -> Split:
    """``permute(order)`` (new axis j = old axis order[j]) applied to a split channel axis."""
    return Split(sp.base, sp.source, sp.sizes, tuple(list(order).index(a) for a in sp.axes))


def merge_view(an: Any, node: fx.Node, sp: Split, in_meta: Any, out_meta: Any) -> Layout | None:
    """The ``view`` that merges the factor axes back into one channel axis: a permutation."""
    src, dst = list(in_meta.shape), list(out_meta.shape)
    a, k = min(sp.axes), len(sp.axes)
    source_meta = an.meta(sp.source)
    if sorted(sp.axes) != list(range(a, a + k)) or a != sp.base.dim or source_meta is None \
            or dst != src[:a] + [math.prod(sp.sizes)] + src[a + k:] or dst != list(source_meta.shape):
        return None
    perm = [sp.axes.index(a + j) for j in range(k)]
    if perm == sorted(perm):
        return sp.base
    atoms = sp.base.atoms()
    if len(set(atoms)) != len(atoms):
        return None
    out = normalized([atoms[i] for i in axis_order(sp.sizes, perm).tolist()], an.size.__getitem__, a)
    an.moves.append(("select", node.name, sp.source.name, a, sp.base, [out]))
    return out


def channel_shuffle(an: Any, node: fx.Node, inp: Any, groups: Any) -> Layout | None:
    """``torch.channel_shuffle`` / ``nn.ChannelShuffle``."""
    if not isinstance(inp, Layout) or inp.repeat != 1 or inp.dim != 1 or not isinstance(groups, int) \
            or groups < 1 or inp.channels % groups:
        return None
    atoms = inp.atoms()
    if len(set(atoms)) != len(atoms):
        return None
    out = normalized([atoms[i] for i in shuffle_order(inp.channels, groups).tolist()], an.size.__getitem__, 1)
    an.moves.append(("select", node.name, node.args[0].name, 1, inp, [out]))
    return out


def slice_channels(an: Any, node: fx.Node, inp: Any, in_meta: Any, out_meta: Any) -> tuple | None:
    """``chunk`` / ``split`` / ``tensor_split``: along the channels each piece gets its slice."""
    if not isinstance(inp, Layout) or inp.repeat != 1 or not isinstance(out_meta, (list, tuple)) \
            or not all(hasattr(m, "shape") for m in out_meta):
        return None
    ndim = len(in_meta.shape)
    dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
    if not isinstance(dim, int):
        return None
    if dim % ndim != inp.dim:
        return tuple(inp for _ in out_meta)
    atoms, pieces, start = inp.atoms(), [], 0
    if len(set(atoms)) != len(atoms):
        return None
    for m in out_meta:
        n = int(m.shape[inp.dim])
        pieces.append(normalized(atoms[start:start + n], an.size.__getitem__, inp.dim))
        start += n
    an.moves.append(("split", node.name, node.args[0].name, inp.dim, inp, pieces))
    return tuple(pieces)


def concat(an: Any, node: fx.Node) -> Any:
    """``torch.cat``: along the channels the layouts are joined, along another axis they are united."""
    tensors = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    layouts = [an.value(t) for t in tensors] if isinstance(tensors, (list, tuple)) else []
    metas = [an.meta(t) for t in tensors] if layouts else []
    if layouts and isinstance(dim, int) and all(isinstance(v, Layout) for v in layouts) \
            and len({v.dim for v in layouts}) > 1:
        layouts = _align(an, layouts, metas, dim % len(metas[0].shape))
    if not layouts or not all(isinstance(v, Layout) and v.repeat == 1 for v in layouts) \
            or not isinstance(dim, int) or len({v.dim for v in layouts}) != 1:
        return an.opaque_call(node, "concatenation of unsupported tensors")
    ndim = len(metas[0].shape)
    if dim % ndim == layouts[0].dim and any(v.order is not None for v in layouts):
        return normalized([a for v in layouts for a in v.atoms()], an.size.__getitem__, layouts[0].dim)
    if dim % ndim == layouts[0].dim:
        return Layout([seg for v in layouts for seg in v.segs], 1, layouts[0].dim)
    for other in layouts[1:]:
        if not an.unify(layouts[0], other, "concatenation of differently split channels"):
            return an.opaque_call(node, "concatenation of differently split channels")
    return layouts[0]


def _align(an: Any, layouts: list[Layout], metas: list[Any], axis: int) -> list[Layout]:
    """Operands of a concatenation whose channel axes disagree (e.g. a class token built from
    a constant): the axis that is not concatenated wins; the others become fixed layouts on it."""
    dims = {v.dim for v in layouts if v.dim != axis}
    if len(dims) != 1:
        return layouts
    d = dims.pop()
    out = []
    for v, meta in zip(layouts, metas):
        if v.dim != d:
            an.fix(v, "concatenated with a differently laid out tensor")
            n = int(meta.shape[d])
            v = Layout([(an.new_space(n, "concatenated with a differently laid out tensor"), n)], 1, d)
        out.append(v)
    return out


# -- after the walk ------------------------------------------------------------------------------
def refine(size: int, members: list[Member]) -> list[tuple[list[int], list[Member]]]:
    """Split a space's channels into classes that appear in the same members (a shuffle or a slice sends
    them different ways); each class gets the members that hold it, with its positions there."""
    def covers(m: Member, c: int) -> bool:
        return not m.index or m.index[c] >= 0

    classes: dict[tuple[int, ...], list[int]] = {}
    for c in range(size):
        classes.setdefault(tuple(i for i, m in enumerate(members) if covers(m, c)), []).append(c)
    out = []
    for sig, chans in classes.items():
        held = []
        for i in sig:
            m = members[i]
            pos = [m.index[c] for c in chans] if m.index else [m.offset + c for c in chans]
            contiguous = pos == list(range(pos[0], pos[0] + len(pos)))
            held.append(Member(m.module, m.role, pos[0] if contiguous else 0, m.repeat,
                               () if contiguous else tuple(pos)))
        out.append((chans, held))
    return out


def space_index(order: Sequence[Atom], size_of: Callable[[int], int]) -> dict[int, list[int]]:
    """Per space, the position of each of its channels in ``order`` (-1 where absent)."""
    index: dict[int, list[int]] = {}
    for pos, (sid, i) in enumerate(order):
        index.setdefault(sid, [-1] * size_of(sid))[i] = pos
    return index


__all__ = ["Layout", "Split", "axis_order", "channel_shuffle", "concat", "merge_view", "normalized", "permute_split",
           "refine", "shuffle_order", "slice_channels", "space_index", "split_view"]
