"""Channel dependency analysis: which channels of which layers must be pruned together.

Every tensor in the traced graph gets a channel *layout*: a list of segments,
each a slice of a channel *space*. A convolution or linear layer creates a new
space (its output channels); BatchNorm, depthwise convolutions, activations,
pooling and flatten keep the layout; a residual addition or multiplication unites
the spaces of its operands; a concatenation along channels joins layouts.
Spaces are merged with union-find; each resulting set is a :class:`ChannelGroup`
whose channels can be pruned together while the model stays valid.

A grouped convolution (``groups`` = G) reads G equal blocks of its input channels and
writes G equal blocks of output channels: both spaces get the constraint that every
block keeps the same number of channels (``ChannelGroup.blocks``), so the pruned layer
still has G groups (Torch-Pruning's rule too); its input member has the role ``gin``.

Channel shuffles and ``chunk`` / ``split`` along channels move channels without
mixing them: layouts then list channels one by one, and a space whose channels go
different ways is split into sub-groups (``shuffle.py``).

Anything the analysis does not understand (reshapes that move channels otherwise,
unknown layers, the model's inputs and outputs) *fixes* the spaces it touches: they
are kept whole, which is always safe.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterable, Sequence

import torch
from torch import fx, nn

from . import shuffle
from .attention import ATTENTION_TYPES, attention_rule
from .groups import DW, GIN, HEADS, IN, NORM, OUT, ChannelGraph, ChannelGroup, ChannelMove, Layer, MaskPoint, Member
from .points import mask_points
from .rules import BINARY_ELEMENTWISE, PASSTHROUGH_FUNCS, PASSTHROUGH_MODULES, REDUCTIONS, RESHAPES, op_name
from .shuffle import Layout as _Layout
from .shuffle import Split
from .tracing import matching_modules, propagate_shapes, trace

SLICES = frozenset({"chunk", "split", "tensor_split", "split_with_sizes"})


class _Analyzer:
    """Walks the fx graph once, assigning layouts and merging spaces."""

    def __init__(self, model: nn.Module, gm: fx.GraphModule, opaque: set[str]):
        self.model, self.gm, self.opaque = model, gm, opaque
        self.parent: list[int] = []
        self.size: list[int] = []
        self.fixed: dict[int, str] = {}
        self.blocks: dict[int, int] = {}
        self.members: dict[int, list[Member]] = {}
        self.values: dict[fx.Node, Any] = {}
        self.layers: list[tuple] = []
        self.moves: list[tuple] = []
        self.calls: dict[str, int] = {}
        for node in gm.graph.nodes:
            if node.op == "call_module":
                self.calls[node.target] = self.calls.get(node.target, 0) + 1

    # -- union-find ----------------------------------------------------------------
    def new_space(self, size: int, fixed: str = "") -> int:
        sid = len(self.parent)
        self.parent.append(sid)
        self.size.append(size)
        self.members[sid] = []
        if fixed:
            self.fixed[sid] = fixed
        return sid

    def find(self, sid: int) -> int:
        while self.parent[sid] != sid:
            self.parent[sid] = self.parent[self.parent[sid]]
            sid = self.parent[sid]
        return sid

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        if a > b:
            a, b = b, a
        self.parent[b] = a
        self.members[a] += self.members.pop(b)
        if b in self.fixed and a not in self.fixed:
            self.fixed[a] = self.fixed[b]
        if b in self.blocks:
            self.blocks[a] = math.lcm(self.blocks.get(a, 1), self.blocks.pop(b))

    def fix(self, value: Any, reason: str) -> None:
        for layout in _layouts(value):
            for sid, _ in layout.segs:
                root = self.find(sid)
                self.fixed.setdefault(root, reason)

    def unify(self, a: _Layout, b: _Layout, reason: str) -> bool:
        """Unite two layouts segment by segment; fix both when their segmentations differ."""
        if a.order is not None or b.order is not None:
            if a.order == b.order and a.repeat == b.repeat:
                return True
            self.fix([a, b], reason)
            return False
        if a.repeat == b.repeat and [n for _, n in a.segs] == [n for _, n in b.segs]:
            for (sa, _), (sb, _) in zip(a.segs, b.segs):
                self.union(sa, sb)
            return True
        self.fix([a, b], reason)
        return False

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def meta(node: Any) -> Any:
        return node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None

    def fresh(self, node: fx.Node, reason: str, dim: int = 1) -> Any:
        """New fixed layouts for every tensor output of ``node`` (channels on axis ``dim`` when it has one)."""
        def build(meta: Any) -> Any:
            shape = getattr(meta, "shape", None)
            if shape is None:
                return [build(m) for m in meta] if isinstance(meta, (list, tuple)) else None
            if len(shape) < 2:
                return None
            d = dim if dim < len(shape) else 1
            return _Layout([(self.new_space(int(shape[d]), reason), int(shape[d]))], dim=d)
        return build(self.meta(node))

    def value(self, arg: Any) -> Any:
        return self.values.get(arg) if isinstance(arg, fx.Node) else None

    def tensor_args(self, node: fx.Node) -> list[fx.Node]:
        found: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) or n)
        return found

    def opaque_call(self, node: fx.Node, reason: str) -> Any:
        args = self.tensor_args(node)
        for arg in args:
            self.fix(self.value(arg), reason)
        first, meta = (self.value(args[0]), self.meta(args[0])) if args else (None, None)
        out = self.meta(node)
        out = out[0] if not hasattr(out, "shape") and isinstance(out, (list, tuple)) and out else out
        same_rank = hasattr(meta, "shape") and hasattr(out, "shape") and len(meta.shape) == len(out.shape)
        return self.fresh(node, reason, first.dim if isinstance(first, _Layout) and same_rank else 1)

    def add(self, sid: int, member: Member) -> None:
        self.members[self.find(sid)].append(member)

    def add_segments(self, layout: _Layout, module: str, role: str) -> None:
        if layout.order is not None:                               # moved channels: positions per space
            if len(set(layout.order)) != len(layout.order):
                self.fix(layout, f"{module} reads a shuffled channel twice")
            for sid, index in shuffle.space_index(layout.order, self.size.__getitem__).items():
                self.add(sid, Member(module, role, 0, layout.repeat, tuple(index)))
            return
        offset = 0
        for sid, n in layout.segs:
            self.add(sid, Member(module, role, offset, layout.repeat))
            offset += n

    # -- node rules ------------------------------------------------------------------
    def run(self) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.values[node] = self.fresh(node, "model input")
            elif node.op == "get_attr":
                self.values[node] = self.fresh(node, "tensor attribute used in forward")
            elif node.op == "output":
                for arg in self.tensor_args(node):
                    self.fix(self.value(arg), "model output")
            elif node.op == "call_module":
                self.values[node] = self.call_module(node)
            else:
                self.values[node] = self.call_function(node)

    def call_module(self, node: fx.Node) -> Any:
        name = node.target
        module = self.gm.get_submodule(name)
        if name in self.opaque:
            return self.opaque_call(node, f"excluded module {name}")
        has_params = any(True for _ in module.parameters(recurse=False))
        if has_params and self.calls.get(name, 0) > 1:
            return self.opaque_call(node, f"module {name} is called more than once")
        inp = self.value(node.args[0]) if node.args else None
        in_meta, out_meta = self.meta(node.args[0]) if node.args else None, self.meta(node)
        if isinstance(module, nn.ChannelShuffle):
            return shuffle.channel_shuffle(self, node, inp, module.groups) or self.opaque_call(node, f"shuffle {name}")
        if isinstance(inp, _Layout) and inp.order is not None and (
                isinstance(module, ATTENTION_TYPES + (nn.LayerNorm,))
                or (isinstance(module, nn.modules.conv._ConvNd) and 1 < module.groups < inp.channels)):
            return self.opaque_call(node, f"{name} on shuffled channels")
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return self.conv(node, name, module, inp, out_meta)
        if isinstance(module, nn.Linear):
            return self.linear(node, name, module, inp, in_meta, out_meta)
        if isinstance(module, nn.LayerNorm):
            return self.layer_norm(node, name, inp, in_meta, len(module.normalized_shape))
        if isinstance(module, ATTENTION_TYPES):
            return attention_rule(self, node, name, module, inp, in_meta, out_meta)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if not isinstance(inp, _Layout) or inp.repeat != 1 or inp.dim != 1 \
                    or inp.channels != module.num_features:
                return self.opaque_call(node, f"unsupported input of {name}")
            self.add_segments(inp, name, NORM)
            return inp
        if isinstance(module, nn.Flatten):
            return self.reshape(node, inp, in_meta, out_meta)
        if isinstance(module, PASSTHROUGH_MODULES) and not _has_channel_params(module):
            return self.passthrough(node, inp, in_meta, out_meta)
        return self.opaque_call(node, f"{type(module).__name__} ({name}) is not channel-aware")

    def conv(self, node: fx.Node, name: str, m: nn.Module, inp: Any, out_meta: Any) -> Any:
        ok = isinstance(inp, _Layout) and inp.repeat == 1 and inp.dim == 1 and inp.channels == m.in_channels
        positions = int(torch.tensor(out_meta.shape[2:]).prod()) * int(out_meta.shape[0]) if out_meta else 0
        kernel = int(torch.tensor(m.kernel_size).prod())
        if ok and m.groups == 1:
            self.add_segments(inp, name, IN)
            sid = self.new_space(m.out_channels)
            self.add(sid, Member(name, OUT, 0))
            out = _Layout([(sid, m.out_channels)])
            self.layers.append((name, "conv", inp, out, 1, kernel, positions))
            return out
        if ok and m.groups == m.in_channels == m.out_channels:
            self.add_segments(inp, name, DW)
            self.layers.append((name, "dwconv", inp, inp, m.groups, kernel, positions))
            return inp
        if ok:
            return self.grouped_conv(name, m, inp, kernel, positions)
        out = self.opaque_call(node, f"grouped convolution {name}")
        if isinstance(inp, _Layout) and isinstance(out, _Layout):
            self.layers.append((name, "conv", inp, out, m.groups, kernel, positions))
        return out

    def grouped_conv(self, name: str, m: nn.Module, inp: _Layout, kernel: int, positions: int) -> _Layout:
        """``groups`` = G: each input segment must consist of whole blocks of ``in_channels / G``; its
        space then keeps the same count in every block, as does the new output space."""
        width, offset = m.in_channels // m.groups, 0
        for sid, n in inp.segs:
            if width < 2 or offset % width or n % width:
                self.fix(_Layout([(sid, n)]), f"grouped convolution {name} splits these channels across its groups")
            else:
                root = self.find(sid)
                self.blocks[root] = math.lcm(self.blocks.get(root, 1), n // width)
            offset += n
        self.add_segments(inp, name, GIN)
        sid = self.new_space(m.out_channels, "" if m.out_channels // m.groups > 1
                             else f"grouped convolution {name} has one output channel per group")
        self.blocks[sid] = m.groups
        self.add(sid, Member(name, OUT, 0))
        out = _Layout([(sid, m.out_channels)])
        self.layers.append((name, "conv", inp, out, m.groups, kernel, positions))
        return out

    def linear(self, node: fx.Node, name: str, m: nn.Linear, inp: Any, in_meta: Any, out_meta: Any) -> Any:
        ndim = len(in_meta.shape) if in_meta is not None and hasattr(in_meta, "shape") else 0
        ok = (isinstance(inp, _Layout) and ndim >= 2 and inp.channels * inp.repeat == m.in_features
              and (inp.dim == ndim - 1 or (ndim == 2 and inp.dim == 1)))
        if not ok:
            return self.opaque_call(node, f"linear layer {name} on an input whose last axis is not its channels")
        self.add_segments(inp, name, IN)
        sid = self.new_space(m.out_features)
        self.add(sid, Member(name, OUT, 0))
        out = _Layout([(sid, m.out_features)], dim=ndim - 1)
        rows = int(torch.tensor(list(out_meta.shape[:-1])).prod())
        self.layers.append((name, "linear", inp, out, 1, 1, rows))
        return out

    def layer_norm(self, node: fx.Node, name: str, inp: Any, in_meta: Any, normalized: int) -> Any:
        """LayerNorm over the channel axis: removing a channel changes every other channel's
        statistics, so the channels are fixed (exactness over coverage); over other axes: opaque."""
        return self.opaque_call(node, f"{name} normalises over these channels (LayerNorm)")

    def passthrough(self, node: fx.Node, inp: Any, in_meta: Any, out_meta: Any) -> Any:
        if isinstance(inp, _Layout) and _same_channels(in_meta, out_meta, inp.dim):
            return inp
        if isinstance(inp, Split) and list(getattr(in_meta, "shape", [])) == list(getattr(out_meta, "shape", [0])):
            return inp
        return self.opaque_call(node, f"{op_name(node)} changes the channel layout")

    def reshape(self, node: fx.Node, inp: Any, in_meta: Any, out_meta: Any) -> Any:
        ok_meta = in_meta is not None and hasattr(in_meta, "shape") and hasattr(out_meta, "shape")
        if isinstance(inp, Split) and ok_meta:
            out = shuffle.merge_view(self, node, inp, in_meta, out_meta)
            if out is not None:
                return out
        if isinstance(inp, _Layout) and ok_meta:
            src, dst = list(in_meta.shape), list(out_meta.shape)
            if inp.dim == 1:
                rest = int(torch.tensor(src[2:]).prod()) if len(src) > 2 else 1
                if len(dst) == 2 and src[0] == dst[0] and dst[1] == src[1] * rest and (rest == 1 or inp.order is None):
                    return replace(inp, repeat=inp.repeat * rest, dim=1)
                if len(dst) >= 2 and dst[:2] == src[:2] and int(torch.tensor(dst[2:] or [1]).prod()) == rest:
                    return inp
            if inp.dim == len(src) - 1 and inp.repeat == 1 and len(dst) >= 2 and dst[-1] == src[-1] \
                    and (len(src) > 2 or dst[0] == src[0]):
                return replace(inp, repeat=1, dim=len(dst) - 1)        # leading axes merged or split
            split = shuffle.split_view(node, inp, in_meta, out_meta)
            if split is not None:
                return split
        return self.opaque_call(node, f"{op_name(node)} moves channels")

    def permute(self, node: fx.Node, inp: Any, in_meta: Any) -> Any:
        """``permute`` / ``transpose`` move the channel axis (channels-last blocks)."""
        ndim = len(in_meta.shape) if in_meta is not None and hasattr(in_meta, "shape") else 0
        args = [a for a in node.args[1:]] or list(node.kwargs.values())
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = list(args[0])
        if isinstance(inp, (_Layout, Split)) and ndim and all(isinstance(a, int) for a in args):
            order = None
            if op_name(node) == "permute" and len(args) == ndim:
                order = [a % ndim for a in args]
            if op_name(node) == "transpose" and len(args) == 2:
                a, b = (x % ndim for x in args)
                order = list(range(ndim))
                order[a], order[b] = b, a
            if order is not None and isinstance(inp, Split):
                return shuffle.permute_split(inp, order)
            if order is not None:
                return replace(inp, dim=order.index(inp.dim))
        return self.opaque_call(node, f"{op_name(node)} with unsupported arguments")

    def call_function(self, node: fx.Node) -> Any:
        name = op_name(node)
        out_meta = self.meta(node)
        if out_meta is None or not (hasattr(out_meta, "shape") or isinstance(out_meta, (list, tuple))):
            return None                                            # sizes, shapes, python values
        first = node.args[0] if node.args else None
        in_meta = self.meta(first)
        inp = self.value(first)
        if name in BINARY_ELEMENTWISE:
            return self.elementwise(node, out_meta)
        if name in PASSTHROUGH_FUNCS:
            return self.passthrough(node, inp, in_meta, out_meta)
        if name in RESHAPES:
            return self.reshape(node, inp, in_meta, out_meta)
        if name in ("permute", "transpose"):
            return self.permute(node, inp, in_meta)
        if name == "layer_norm":
            return self.layer_norm(node, "layer_norm", inp, in_meta, len(node.args[1]) if len(node.args) > 1 else 1)
        if name in REDUCTIONS:
            return self.reduction(node, inp, in_meta, out_meta)
        if name == "cat":
            return shuffle.concat(self, node)
        if name == "getitem" and isinstance(inp, (list, tuple)) and isinstance(node.args[1], int):
            return inp[node.args[1]]
        if name in SLICES:
            return shuffle.slice_channels(self, node, inp, in_meta, out_meta) \
                or self.opaque_call(node, f"'{name}' of unsupported channels")
        if name in ("channel_shuffle", "native_channel_shuffle"):
            groups = node.kwargs.get("groups", node.args[1] if len(node.args) > 1 else None)
            return shuffle.channel_shuffle(self, node, inp, groups) or self.opaque_call(node, f"'{name}' of these channels")
        return self.opaque_call(node, f"operation '{name}' is not channel-aware")

    def elementwise(self, node: fx.Node, out_meta: Any) -> Any:
        if not hasattr(out_meta, "shape"):
            return self.opaque_call(node, "elementwise op without a tensor result")
        out_shape = list(out_meta.shape)
        result: _Layout | None = None
        for arg in self.tensor_args(node):
            meta, layout = self.meta(arg), self.value(arg)
            if meta is None or not hasattr(meta, "shape"):
                continue
            shape = list(meta.shape)
            if shape == [] or int(torch.tensor(shape).prod()) == 1:
                continue                                           # scalar tensor
            dim = layout.dim if isinstance(layout, _Layout) else 1
            if len(shape) == len(out_shape) and len(shape) > dim and shape[dim] == 1:
                continue                                           # broadcast over channels
            if len(shape) != len(out_shape) or len(shape) < 2 or shape[dim] != out_shape[dim] \
                    or not isinstance(layout, _Layout) or (result is not None and result.dim != dim):
                return self.opaque_call(node, f"broadcasting in '{op_name(node)}'")
            if result is None:
                result = layout
            elif not self.unify(result, layout, f"'{op_name(node)}' of differently split channels"):
                return self.opaque_call(node, f"'{op_name(node)}' of differently split channels")
        return result if result is not None else self.fresh(node, f"'{op_name(node)}' of constants")

    def reduction(self, node: fx.Node, inp: Any, in_meta: Any, out_meta: Any) -> Any:
        dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        if isinstance(inp, _Layout) and inp.repeat == 1 and in_meta is not None and dims is not None \
                and hasattr(out_meta, "shape") and len(out_meta.shape) >= 2:
            ndim = len(in_meta.shape)
            dims = [dims] if isinstance(dims, int) else list(dims)
            keep = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
            if all(isinstance(d, int) for d in dims) and not {d % ndim for d in dims} & {0, inp.dim}:
                removed = 0 if keep else sum(1 for d in {d % ndim for d in dims} if d < inp.dim)
                return replace(inp, repeat=1, dim=inp.dim - removed)
        return self.opaque_call(node, f"reduction '{op_name(node)}' over channels")

    # -- results ---------------------------------------------------------------------
    def result(self, input_shape: Sequence[int], exclude: Sequence[str]) -> ChannelGraph:
        roots = sorted({self.find(s) for s in range(len(self.parent))})
        groups: list[ChannelGroup] = []
        atom: dict[tuple[int, int], tuple[int, int]] = {}         # (root, channel) -> (group, channel)
        whole: dict[int, int] = {}                                 # root -> its group, when not split
        for root in roots:
            members, size = self.members[root], self.size[root]
            reason, blocks = self.fixed.get(root, ""), self.blocks.get(root, 1)
            scattered = any(-1 in m.index for m in members)
            if scattered and not reason and (blocks > 1 or any(m.role == HEADS for m in members)):
                reason = "a shuffle or slice splits channels of grouped convolutions or attention heads"
            classes = shuffle.refine(size, members) if scattered and not reason else [(list(range(size)), list(members))]
            for chans, held in classes:
                gi, n = len(groups), len(chans)
                producers = [m.module for m in held if m.role in (OUT, HEADS)]
                why = reason or ("no layer produces these channels" if not producers else
                                 "a single channel" if n < 2 else "")
                if not why and (n % blocks or n // blocks < 2):
                    why = f"grouped convolutions split these {n} channels into {blocks} groups"
                groups.append(ChannelGroup(gi, producers[0] if producers else f"fixed{gi}", n, held, why, blocks))
                atom.update({(root, c): (gi, j) for j, c in enumerate(chans)})
                if len(classes) == 1:
                    whole[root] = gi
        _dedupe_keys(groups)

        def atoms(layout: _Layout) -> tuple[tuple[int, int], ...]:
            return tuple(atom[(self.find(s), i)] for s, i in layout.atoms())

        def segs(layout: _Layout) -> tuple[tuple[int, int], ...]:
            if layout.order is None and all(self.find(s) in whole for s, _ in layout.segs):
                return tuple((whole[self.find(s)], n) for s, n in layout.segs)
            counts: dict[int, int] = {}
            for gi, _ in atoms(layout):
                counts[gi] = counts.get(gi, 0) + 1
            return tuple(counts.items())

        layers = [Layer(name, kind, segs(inp), segs(out), inp.repeat, groups_, kernel, positions)
                  for name, kind, inp, out, groups_, kernel, positions in self.layers]
        moves = [ChannelMove(node, kind, source, dim, atoms(inp), tuple(atoms(o) for o in outs))
                 for kind, node, source, dim, inp, outs in self.moves]
        return ChannelGraph(groups, layers, mask_points(self.gm, groups), tuple(input_shape), tuple(exclude), moves)


def _has_channel_params(module: nn.Module) -> bool:
    return any(p.dim() >= 1 and p.numel() > 1 for p in module.parameters(recurse=False))


def _same_channels(a: Any, b: Any, dim: int = 1) -> bool:
    return a is not None and b is not None and hasattr(a, "shape") and hasattr(b, "shape") \
        and len(a.shape) == len(b.shape) and len(a.shape) > dim and a.shape[dim] == b.shape[dim]


def _layouts(value: Any) -> Iterable[_Layout]:
    if isinstance(value, _Layout):
        yield value
    elif isinstance(value, Split):
        yield value.base
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _layouts(v)


def _dedupe_keys(groups: list[ChannelGroup]) -> None:
    seen: dict[str, int] = {}
    for g in groups:
        if g.key in seen:
            seen[g.key] += 1
            g.key = f"{g.key}#{seen[g.key]}"
        else:
            seen[g.key] = 0


def analyze(model: nn.Module, input_shape: Sequence[int], exclude: Sequence[str] = (),
            shape_key: str = "input_shape", exclude_key: str = "algorithm.exclude") -> ChannelGraph:
    """Trace ``model`` and group its prunable channels.

    ``exclude`` holds module names or ``fnmatch`` patterns kept as opaque layers (not
    traced into, channels at their boundary not pruned). Errors name ``shape_key`` /
    ``exclude_key`` so the user knows which config key to change.
    """
    gm = trace(model, exclude, exclude_key)
    propagate_shapes(gm, model, input_shape, shape_key)
    opaque = matching_modules(model, exclude)
    analyzer = _Analyzer(model, gm, opaque)
    analyzer.run()
    return analyzer.result(input_shape, exclude)


__all__ = ["ChannelGraph", "ChannelGroup", "Layer", "MaskPoint", "Member", "analyze"]
