"""Parameters and FLOPs of converted int8 models.

``gml_core.api.count_params``/``count_flops`` see nothing in an int8 model: its quantized conv and
linear modules keep their weights in packed C++ objects (no ``nn.Parameter``), and
``torch.utils.flop_counter`` counts only float ``aten`` convolutions and matmuls. Here the packed
weights are unpacked (``module.weight()``, ``module.bias()``) and the multiply-accumulates of each
quantized conv/linear are counted from its output shape, with the core's convention
FLOPs = 2 x MACs (float modules left in the model are counted by ``count_flops``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from gml_core.api import count_flops, count_params


def _quantized_weighted(module: nn.Module) -> bool:
    """A torch.ao quantized module whose weight lives in packed params (conv/linear, fused or not)."""
    return type(module).__module__.startswith("torch.ao.nn") and callable(getattr(module, "weight", None)) \
        and ".quantized" in type(module).__module__


def int8_params(model: nn.Module) -> int:
    """Weights and biases of the quantized modules plus the float parameters left in the model."""
    total = count_params(model)
    for module in model.modules():
        if _quantized_weighted(module):
            total += module.weight().numel()
            bias = module.bias()
            total += bias.numel() if bias is not None else 0
    return total


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    weight = module.weight()
    if weight.dim() > 2:  # conv: every output element sums in_channels/groups x kernel products
        return output.numel() * math.prod(weight.shape[1:])
    return output.numel() * weight.shape[1]  # linear


@torch.no_grad()
def int8_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs (2 x MACs) of one forward pass of an int8 model on ``input_shape``."""
    counted: list[int] = []
    handles: list[Any] = [m.register_forward_hook(lambda mod, _i, out: counted.append(_macs(mod, out)))
                          for m in model.modules() if _quantized_weighted(m)]
    try:
        float_flops = count_flops(model, input_shape)  # one pass: float ops by torch, quantized ones by the hooks
    finally:
        for handle in handles:
            handle.remove()
    return float_flops + 2 * sum(counted)
