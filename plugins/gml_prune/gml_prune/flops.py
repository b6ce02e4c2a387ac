"""An analytic FLOPs model over channel groups, exact for pruned models and differentiable.

For a channel count ``n_g`` per group it gives the FLOPs of the pruned model with
torch's counting convention (``gml_core.api.count_flops``: 2 FLOPs per
multiply-accumulate of convolutions and matrix products; bias, BN and activations
are free). Counts may be tensors (DMCP's expected channels): the result is then a
differentiable tensor. FLOPs the model cannot vary (excluded or opaque parts) are a
constant measured once.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from .attention import attention_flops
from .graph import ChannelGraph, Layer


def layer_flops(layer: Layer, count: Any) -> Any:
    """FLOPs of one layer; ``count(group, channels)`` gives a segment's kept channels."""
    cin = sum(count(g, n) for g, n in layer.inputs)
    cout = sum(count(g, n) for g, n in layer.outputs)
    if layer.kind == "dwconv":
        return 2 * cin * layer.kernel * layer.positions
    if layer.kind == "attention":
        return attention_flops(cin, cout, layer.kernel, layer.positions, layer.groups)
    if layer.kind == "linear":
        return 2 * cin * layer.repeat * cout * layer.positions
    return 2 * cin / layer.groups * cout * layer.kernel * layer.positions


class FlopsModel:
    """``flops(counts)`` for ``counts = {group index: channels}`` (other groups stay whole)."""

    def __init__(self, graph: ChannelGraph, model: nn.Module):
        from gml_core.api import count_flops
        self.graph = graph
        self.modelled_full = float(self({}, include_other=False))
        self.measured_full = float(count_flops(model, graph.input_shape))
        self.other = self.measured_full - self.modelled_full

    @property
    def full(self) -> float:
        return self.measured_full

    def __call__(self, counts: Mapping[int, Any], include_other: bool = True) -> Any:
        def count(group: int, channels: int) -> Any:
            return counts.get(group, channels)

        total: Any = self.other if include_other else 0.0
        for layer in self.graph.layers:
            total = total + layer_flops(layer, count)
        return total
