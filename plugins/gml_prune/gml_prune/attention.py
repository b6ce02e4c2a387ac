"""Attention heads as a channel group: analysis rule, masking, scores and export.

A self-attention layer (``nn.MultiheadAttention`` with ``batch_first=True``, as in
torchvision's ViT) of ``h`` heads of size ``d`` gets a group of ``h`` channels,
each standing for ``d`` rows of the q, k and v projections and ``d`` columns of
the output projection. Removing a head removes exactly its term of the output
projection's sum: ``out = sum_heads W_o[:, head] @ attn_head + b_o``.

``nn.MultiheadAttention`` cannot hold fewer heads than its embedding dimension
allows (its inner width is its input width), so an exported layer becomes a
:class:`PrunedMultiheadAttention`: the same parameter names (the state dict keeps
its keys) with an inner width of ``kept heads x d``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .groups import HEADS, Member
from .swin import SWIN_TYPES, is_swin, masked_swin, slice_swin, swin_tokens


class PrunedMultiheadAttention(nn.Module):
    """Batch-first self-attention whose inner width (heads x head_dim) differs from its input width."""

    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        inner = num_heads * head_dim
        self.embed_dim, self.num_heads, self.head_dim, self.dropout = embed_dim, num_heads, head_dim, dropout
        self.batch_first = True
        self.in_proj_weight = nn.Parameter(torch.empty(3 * inner, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * inner)) if bias else None
        self.out_proj = nn.Linear(inner, embed_dim, bias=bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                key_padding_mask: Any = None, need_weights: bool = False, attn_mask: Any = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> tuple[torch.Tensor, None]:
        out = attention_forward(query, self.in_proj_weight, self.in_proj_bias, self.out_proj.weight,
                                self.out_proj.bias, self.num_heads, self.head_dim,
                                self.dropout if self.training else 0.0)
        return out, None


def attention_forward(x: torch.Tensor, in_w: torch.Tensor, in_b: torch.Tensor | None, out_w: torch.Tensor,
                      out_b: torch.Tensor | None, heads: int, head_dim: int, dropout: float = 0.0,
                      head_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Batch-first self-attention; ``head_scale`` multiplies each head's output (masks, DMCP)."""
    b, n, _ = x.shape
    qkv = F.linear(x, in_w, in_b).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=dropout)
    if head_scale is not None:
        y = y * head_scale.view(1, -1, 1, 1).to(y.dtype)
    return F.linear(y.transpose(1, 2).reshape(b, n, heads * head_dim), out_w, out_b)


ATTENTION_TYPES: tuple[type, ...] = (nn.MultiheadAttention, PrunedMultiheadAttention, *SWIN_TYPES)


def _unsupported(module: nn.Module, node: fx.Node) -> str:
    args = list(node.args) + [None] * 3
    q = args[0]
    k = node.kwargs.get("key", args[1])
    v = node.kwargs.get("value", args[2])
    need_weights = node.kwargs.get("need_weights", args[4] if len(node.args) > 4 else True)
    if not getattr(module, "batch_first", False):
        return "is not batch_first"
    if isinstance(module, nn.MultiheadAttention) and (not module._qkv_same_embed_dim or module.bias_k is not None
                                                       or module.add_zero_attn):
        return "has separate k/v dimensions, bias_k/bias_v or add_zero_attn"
    if not (q is k is v):
        return "is not self-attention (query, key and value differ)"
    if need_weights is not False:
        return "returns attention weights (need_weights is not False)"
    extra = {k for k, v in node.kwargs.items() if v is not None} - {"key", "value", "need_weights"}
    if extra or any(a is not None for a in node.args[3:4]):
        return f"uses {sorted(extra) or 'a key padding mask'}"
    return ""


def attention_rule(an: Any, node: fx.Node, name: str, module: nn.Module, inp: Any, in_meta: Any,
                   out_meta: Any) -> Any:
    """Graph rule: the input and output stay whole; the heads form a new prunable group.

    The layer enters the FLOPs model as kind ``attention`` with ``groups`` = tokens per
    window (Swin: the counted ``q k^T`` and ``attn v`` products; 0 for
    ``nn.MultiheadAttention``, whose ``scaled_dot_product_attention`` torch does not count)."""
    swin = is_swin(module)
    reason = "" if swin else _unsupported(module, node)
    ndim = len(in_meta.shape) if in_meta is not None and hasattr(in_meta, "shape") else 0
    rank = 4 if swin else 3
    if not reason and not (ndim == rank and getattr(inp, "dim", None) == rank - 1 and inp.repeat == 1):
        reason = "input is not channels-last [batch, ..., channels]"
    if reason:
        return an.opaque_call(node, f"attention {name} {reason}")
    out = an.opaque_call(node, f"input/output embedding of attention {name}")
    heads = int(module.num_heads)
    head_dim = inner_width(module) // heads
    sid = an.new_space(heads)
    an.add(sid, Member(name, HEADS, 0, head_dim))
    layout = type(inp)([(sid, heads)])
    rows, tokens = swin_tokens(module, in_meta.shape) if swin else (int(in_meta.shape[0] * in_meta.shape[1]), 0)
    an.layers.append((name, "attention", inp, layout, tokens, head_dim, rows))
    return out


def attention_flops(cin: Any, heads: Any, head_dim: int, rows: int, tokens: int = 0) -> Any:
    """q, k, v and output projections (``2 x 4 x E x h x d`` per token) plus, for ``tokens`` > 0, the
    ``q k^T`` and ``attn v`` products within windows of that many tokens."""
    return 2 * rows * heads * head_dim * (4 * cin + 2 * tokens)


def _weights(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    if is_swin(module):
        return module.qkv.weight, module.proj.weight
    return module.in_proj_weight, module.out_proj.weight


def inner_width(module: nn.Module) -> int:
    return int(_weights(module)[0].shape[0] // 3)


def head_scores(module: nn.Module, criterion: str) -> torch.Tensor:
    """Per head: the L1 (or L2) norm of its q, k, v rows and output-projection columns."""
    h = int(module.num_heads)
    w_in, w_out = (w.detach().float().cpu() for w in _weights(module))
    w_in = w_in.reshape(3, h, -1, w_in.shape[1])
    w_out = w_out.reshape(w_out.shape[0], h, -1)
    w = torch.cat([w_in.permute(1, 0, 2, 3).reshape(h, -1), w_out.permute(1, 0, 2).reshape(h, -1)], dim=1)
    return w.abs().sum(1) if criterion != "l2" else w.pow(2).sum(1).sqrt()


def masked_attention_hook(scale_fn: Any):
    """A forward hook (``with_kwargs=True``) recomputing the layer with per-head scales."""
    def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        x = args[0] if args else kwargs["query"]
        scale = scale_fn(x)
        if scale is None:
            return None
        if is_swin(module):
            return masked_swin(module, x, scale)
        head_dim = inner_width(module) // int(module.num_heads)
        dropout = float(module.dropout) if module.training else 0.0
        out = attention_forward(x, module.in_proj_weight, module.in_proj_bias, module.out_proj.weight,
                                module.out_proj.bias, int(module.num_heads), head_dim, dropout, scale)
        return out, None
    return hook


def slice_heads(model: nn.Module, name: str, keep: torch.Tensor) -> None:
    """Replace attention ``name`` by a :class:`PrunedMultiheadAttention` keeping the features ``keep``
    (a boolean vector over heads x head_dim, whole heads)."""
    old = model.get_submodule(name)
    if is_swin(old):
        return slice_swin(model, name, keep)
    inner = inner_width(old)
    head_dim = inner // int(old.num_heads)
    idx = torch.nonzero(keep).flatten().to(old.in_proj_weight.device)
    rows = torch.cat([idx, idx + inner, idx + 2 * inner])
    new = PrunedMultiheadAttention(int(old.in_proj_weight.shape[1]), int(idx.numel()) // head_dim, head_dim,
                                   bias=old.in_proj_bias is not None, dropout=float(old.dropout))
    new = new.to(old.in_proj_weight.device, old.in_proj_weight.dtype)
    with torch.no_grad():
        new.in_proj_weight.copy_(old.in_proj_weight[rows])
        if old.in_proj_bias is not None:
            new.in_proj_bias.copy_(old.in_proj_bias[rows])
            new.out_proj.bias.copy_(old.out_proj.bias)
        new.out_proj.weight.copy_(old.out_proj.weight[:, idx])
    new.train(old.training)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
