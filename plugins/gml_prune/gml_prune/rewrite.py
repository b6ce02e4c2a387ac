"""Rewriting channel shuffles and channel slices for a pruned model.

After pruning, the channels kept at a shuffle no longer form a regular shuffle (each
side of it keeps its own count), and ``chunk`` / ``split`` pieces no longer have the
original sizes. The pruned model is therefore re-traced with torch.fx, and each
recorded :class:`~gml_prune.groups.ChannelMove` whose channels were pruned is replaced:
a shuffle by ``torch.index_select`` with the kept channels' new order (a buffer
``gml_channel_order<k>``, saved in the state dict), a slice by ``torch.split`` with the
kept piece sizes. Moves whose channels are all kept are left as they are.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from .groups import ChannelGraph
from .tracing import trace


def _kept(graph: ChannelGraph, keep: Mapping[int, torch.Tensor]):
    masks = {}
    for gi, idx in keep.items():
        mask = torch.zeros(graph.groups[gi].size, dtype=torch.bool)
        mask[torch.as_tensor(idx, dtype=torch.long)] = True
        masks[gi] = mask.tolist()
    return lambda atom: atom[0] not in masks or masks[atom[0]][atom[1]]


def rewrite_moves(model: nn.Module, graph: ChannelGraph, keep: Mapping[int, torch.Tensor]) -> nn.Module:
    """``model`` (already sliced) as a GraphModule whose moves fit the kept channels; unchanged if none moved."""
    kept = _kept(graph, keep)
    todo = [mv for mv in graph.moves if not all(kept(a) for a in mv.inputs)]
    if not todo:
        return model
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    gm = trace(model, graph.exclude)
    nodes = {n.name: n for n in gm.graph.nodes}
    for k, mv in enumerate(todo):
        node, source = nodes[mv.node], nodes[mv.source]
        position = {a: i for i, a in enumerate(a for a in mv.inputs if kept(a))}
        with gm.graph.inserting_before(node):
            if mv.kind == "select":
                name = f"gml_channel_order{k}"
                order = [position[a] for a in mv.outputs[0] if kept(a)]
                gm.register_buffer(name, torch.tensor(order, dtype=torch.long, device=device))
                new = gm.graph.call_function(torch.index_select, (source, mv.dim, gm.graph.get_attr(name)))
            else:
                sizes = [sum(1 for a in out if kept(a)) for out in mv.outputs]
                new = gm.graph.call_function(torch.split, (source, sizes, mv.dim))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        nodes[mv.node] = new                                   # a later move may read it
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm

