"""Swin (V1) window attention with prunable heads.

torchvision's ``shifted_window_attention`` derives the head size from the input width
(``C // num_heads``), so a layer with fewer heads than its input width allows needs its
own forward: :class:`PrunedShiftedWindowAttention` (same parameter names, inner width
``heads x head_dim``) runs :func:`window_attention`, written here from the Swin paper's
definition (pad to whole windows, cyclic shift, per-window attention with a relative
position bias and a mask between regions that the shift brought together, reverse).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

try:                                                 # torchvision is optional for gml-prune
    from torchvision.models.swin_transformer import ShiftedWindowAttention
    _TORCHVISION: tuple[type, ...] = (ShiftedWindowAttention,)
except ImportError:                                  # pragma: no cover - torchvision is installed in CI
    _TORCHVISION = ()


def _regions(size: int, window: int, shift: int) -> list[tuple[int, int]]:
    return [(0, size - window), (size - window, size - shift), (size - shift, size)]


def window_attention(x: torch.Tensor, qkv_w: torch.Tensor, qkv_b: torch.Tensor | None, proj_w: torch.Tensor,
                     proj_b: torch.Tensor | None, bias: torch.Tensor, window: list[int], shift: list[int],
                     heads: int, head_dim: int, attn_drop: float = 0.0, drop: float = 0.0, training: bool = False,
                     head_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Shifted-window self-attention of ``x`` ``[B, H, W, C]``; ``bias``: ``[1, heads, n, n]``."""
    b, h, w, c = x.shape
    wh, ww = window
    x = F.pad(x, (0, 0, 0, (-w) % ww, 0, (-h) % wh))
    hp, wp = x.shape[1], x.shape[2]
    sh, sw = (0 if wh >= hp else shift[0]), (0 if ww >= wp else shift[1])
    if sh or sw:
        x = torch.roll(x, (-sh, -sw), (1, 2))
    nh, nw, n = hp // wh, wp // ww, wh * ww
    t = x.reshape(b, nh, wh, nw, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, n, c)
    q, k, v = F.linear(t, qkv_w, qkv_b).reshape(-1, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    attn = (q * head_dim ** -0.5) @ k.transpose(-2, -1) + bias
    if sh or sw:
        ids = x.new_zeros(hp, wp)
        label = 0
        for r0, r1 in _regions(hp, wh, sh):
            for c0, c1 in _regions(wp, ww, sw):
                ids[r0:r1, c0:c1] = label
                label += 1
        ids = ids.reshape(nh, wh, nw, ww).permute(0, 2, 1, 3).reshape(nh * nw, n)
        mask = (ids.unsqueeze(1) != ids.unsqueeze(2)).to(attn.dtype) * -100.0
        attn = (attn.reshape(b, nh * nw, heads, n, n) + mask[None, :, None]).reshape(-1, heads, n, n)
    y = F.dropout(attn.softmax(-1), attn_drop, training) @ v
    if head_scale is not None:
        y = y * head_scale.view(1, -1, 1, 1).to(y.dtype)
    y = F.linear(y.transpose(1, 2).reshape(-1, n, heads * head_dim), proj_w, proj_b)
    y = F.dropout(y, drop, training)
    out = y.shape[-1]
    y = y.reshape(b, nh, nw, wh, ww, out).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, out)
    if sh or sw:
        y = torch.roll(y, (sh, sw), (1, 2))
    return y[:, :h, :w].contiguous()


def position_bias(module: nn.Module) -> torch.Tensor:
    """``[1, heads, n, n]`` relative position bias from the table and index of a Swin attention layer."""
    n = module.window_size[0] * module.window_size[1]
    table = module.relative_position_bias_table[module.relative_position_index.reshape(-1)]
    return table.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)


class PrunedShiftedWindowAttention(nn.Module):
    """Swin V1 window attention with ``num_heads x head_dim`` inner width (any input width)."""

    def __init__(self, dim: int, window_size: list[int], shift_size: list[int], num_heads: int, head_dim: int,
                 qkv_bias: bool = True, proj_bias: bool = True, attention_dropout: float = 0.0,
                 dropout: float = 0.0):
        super().__init__()
        inner = num_heads * head_dim
        self.window_size, self.shift_size = list(window_size), list(shift_size)
        self.num_heads, self.head_dim = num_heads, head_dim
        self.attention_dropout, self.dropout = attention_dropout, dropout
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=proj_bias)
        cells = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(cells, num_heads))
        self.register_buffer("relative_position_index",
                             torch.zeros(window_size[0] ** 2 * window_size[1] ** 2, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return window_attention(x, self.qkv.weight, self.qkv.bias, self.proj.weight, self.proj.bias,
                                position_bias(self), self.window_size, self.shift_size, self.num_heads,
                                self.head_dim, self.attention_dropout, self.dropout, self.training)


SWIN_TYPES: tuple[type, ...] = (*_TORCHVISION, PrunedShiftedWindowAttention)


def is_swin(module: nn.Module) -> bool:
    """Swin V1 attention (V2's cosine attention and continuous bias are not handled)."""
    return type(module) in SWIN_TYPES


def swin_tokens(module: nn.Module, in_shape: Any) -> tuple[int, int]:
    """(rows after padding to whole windows, tokens per window) for an input ``[B, H, W, C]``."""
    b, h, w = int(in_shape[0]), int(in_shape[1]), int(in_shape[2])
    wh, ww = module.window_size
    return b * (h + (-h) % wh) * (w + (-w) % ww), wh * ww


def masked_swin(module: nn.Module, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    heads = int(module.num_heads)
    return window_attention(x, module.qkv.weight, module.qkv.bias, module.proj.weight, module.proj.bias,
                            position_bias(module), module.window_size, module.shift_size, heads,
                            module.qkv.weight.shape[0] // (3 * heads), float(module.attention_dropout),
                            float(module.dropout), module.training, scale)


def slice_swin(model: nn.Module, name: str, keep: torch.Tensor) -> None:
    """Replace Swin attention ``name`` by a :class:`PrunedShiftedWindowAttention` keeping features ``keep``."""
    old = model.get_submodule(name)
    inner = old.qkv.weight.shape[0] // 3
    head_dim = inner // int(old.num_heads)
    idx = torch.nonzero(keep).flatten().to(old.qkv.weight.device)
    heads_kept = idx.reshape(-1, head_dim)[:, 0] // head_dim
    rows = torch.cat([idx, idx + inner, idx + 2 * inner])
    new = PrunedShiftedWindowAttention(old.qkv.weight.shape[1], old.window_size, old.shift_size, len(heads_kept),
                                       head_dim, old.qkv.bias is not None, old.proj.bias is not None,
                                       float(old.attention_dropout), float(old.dropout))
    new = new.to(old.qkv.weight.device, old.qkv.weight.dtype)
    with torch.no_grad():
        new.qkv.weight.copy_(old.qkv.weight[rows])
        if old.qkv.bias is not None:
            new.qkv.bias.copy_(old.qkv.bias[rows])
        new.proj.weight.copy_(old.proj.weight[:, idx])
        if old.proj.bias is not None:
            new.proj.bias.copy_(old.proj.bias)
        new.relative_position_bias_table.copy_(old.relative_position_bias_table[:, heads_kept])
        new.relative_position_index.copy_(old.relative_position_index.reshape(-1))
    new.train(old.training)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
