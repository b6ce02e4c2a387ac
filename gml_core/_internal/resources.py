"""Parameter and FLOP counts (torch's own ``torch.utils.flop_counter``).

FLOPs follow torch's convention: a multiply-accumulate counts as 2 FLOPs
(``macs = flops / 2``). Plugins reuse these helpers for budgets and reports.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on a zero tensor of ``input_shape`` (model left in its mode)."""
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = model.training
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)     # the fused attention kernel is invisible to the counter
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.zeros(*input_shape, device=device, dtype=dtype))
    finally:
        model.train(was_training)
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return int(counter.get_total_flops())


def format_count(value: float, unit: str = "auto", precision: int = 3) -> str:
    """``format_count(1.5e6, "M") == "1.500M"``; ``unit="auto"`` picks K/M/G."""
    if unit == "auto":
        unit = next((u for u in ("T", "G", "M", "K") if abs(value) >= UNITS[u]), "")
    if unit not in UNITS:
        raise ValueError(f"unknown unit '{unit}'; accepted: {', '.join(k for k in UNITS if k)}")
    return f"{value / UNITS[unit]:.{precision}f}{unit}"


def parse_count(text: str | float | int) -> float:
    """``"300M"`` -> 3e8; plain numbers pass through."""
    if isinstance(text, (int, float)):
        return float(text)
    text = text.strip()
    unit = text[-1:].upper()
    if unit in UNITS and unit:
        return float(text[:-1]) * UNITS[unit]
    return float(text)
