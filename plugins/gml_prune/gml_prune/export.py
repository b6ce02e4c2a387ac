"""Export: a physically smaller copy of a model, its checkpoint, TorchScript and rebuild.

``prune_model`` deep-copies the model and slices every member of every pruned
group (conv/linear weights, biases, BatchNorm parameters and statistics), so the
result is the same module tree with smaller layers: fewer parameters, FLOPs and
latency, loadable without gml-prune's masks.

The checkpoint is ``{"model_spec": {...}, "state_dict": {...}}`` where ``model_spec``
is the plain dict ``{type = "gml.PrunedModel", base = <original model spec>,
channels = {group key: kept channels}, input_shape = [...], exclude = [...]}``;
gml-core rebuilds it through the registered ``PrunedModel`` builder whenever a
config says ``init_from = "pruned.pth"``.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from gml_core.api import GmlUserError

from .attention import inner_width, slice_heads
from .graph import DW, HEADS, IN, NORM, OUT, ChannelGraph, analyze
from .groups import GIN, block_prefix
from .rewrite import rewrite_moves

PRUNED_TYPE = "gml.PrunedModel"


def _dims(module: nn.Module, role: str) -> int:
    if role == HEADS:
        return inner_width(module)
    if role == OUT:
        return module.weight.shape[0]
    if role == IN:
        return module.weight.shape[1]
    if role == GIN:
        return module.in_channels
    if role == NORM:
        return module.num_features
    return module.weight.shape[0]


def keep_masks(graph: ChannelGraph, model: nn.Module, keep: Mapping[int, torch.Tensor]) -> dict:
    """Per (module, role): a boolean vector over that dimension, False where channels go."""
    masks: dict[tuple[str, str], torch.Tensor] = {}
    for gi, idx in keep.items():
        group = graph.groups[gi]
        if not group.prunable:
            raise ValueError(f"group {group.key} is not prunable ({group.fixed_reason})")
        kept = torch.zeros(group.size, dtype=torch.bool)
        kept[torch.as_tensor(idx, dtype=torch.long)] = True
        if not kept.any():
            raise ValueError(f"group {group.key} would keep no channel")
        for m in group.members:
            module = model.get_submodule(m.module)
            vec = masks.setdefault((m.module, m.role), torch.ones(_dims(module, m.role), dtype=torch.bool))
            if m.repeat > 1:
                per_feature = kept.repeat_interleave(m.repeat)
                vec[m.offset * m.repeat: (m.offset + group.size) * m.repeat] &= per_feature
            else:
                rows = m.rows(group.size)
                vec[rows] = vec[rows] & kept
    return masks


def _param(old: torch.Tensor, new: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(new.detach().clone().contiguous(), requires_grad=old.requires_grad)


def _slice(module: nn.Module, role: str, keep: torch.Tensor) -> None:
    idx = torch.nonzero(keep).flatten().to(module.weight.device if hasattr(module, "weight") and
                                           module.weight is not None else "cpu")
    n = int(idx.numel())
    if role == NORM:
        if module.weight is not None:
            module.weight = _param(module.weight, module.weight[idx])
            module.bias = _param(module.bias, module.bias[idx])
        if module.running_mean is not None:
            module.running_mean = module.running_mean[idx].clone()
            module.running_var = module.running_var[idx].clone()
        module.num_features = n
        return
    w = module.weight
    if role == GIN:                              # grouped conv: each group keeps its own input columns
        groups, rows = module.groups, w.shape[0] // module.groups
        per = keep.view(groups, -1).to(w.device)
        if len(set(per.sum(1).tolist())) != 1:
            raise ValueError(f"grouped convolution keeps different channel counts per group: {per.sum(1).tolist()}")
        module.weight = _param(w, torch.cat([w[g * rows:(g + 1) * rows][:, per[g]] for g in range(groups)]))
        module.in_channels = n
        return
    if role in (OUT, DW):
        module.weight = _param(w, w[idx])
        if module.bias is not None:
            module.bias = _param(module.bias, module.bias[idx])
    else:
        module.weight = _param(w, w[:, idx])
    if isinstance(module, nn.Linear):
        if role == OUT:
            module.out_features = n
        else:
            module.in_features = n
    elif role == OUT:
        module.out_channels = n
    elif role == IN:
        module.in_channels = n
    else:
        module.in_channels = module.out_channels = module.groups = n


def prune_model(model: nn.Module, graph: ChannelGraph, keep: Mapping[int, torch.Tensor]) -> nn.Module:
    """A smaller deep copy of ``model`` keeping ``keep[group]`` channel indices of each group.

    ``model`` must not carry masking hooks (use ``ChannelMasker.paused()``). Where pruned channels
    pass through a channel shuffle or a channel ``chunk`` / ``split``, the result is a
    ``torch.fx.GraphModule`` with those operations rewritten (:func:`rewrite_moves`).
    """
    small = copy.deepcopy(model)
    for (name, role), vec in keep_masks(graph, small, keep).items():
        if vec.all():
            continue
        if role == HEADS:
            slice_heads(small, name, vec)
        else:
            _slice(small.get_submodule(name), role, vec)
    return rewrite_moves(small, graph, keep)


def prefix_keep(counts: Mapping[int, int], graph: ChannelGraph | None = None) -> dict[int, torch.Tensor]:
    """Keep indices for "the first n channels" of each group (slimmable / DMCP widths); with ``graph``,
    a group split by grouped convolutions keeps the first ``n / blocks`` channels of each block."""
    blocks = graph.blocks() if graph is not None else {}
    return {gi: block_prefix(graph.groups[gi].size, blocks[gi], n) if gi in blocks else torch.arange(int(n))
            for gi, n in counts.items()}


# -- checkpoint and rebuild -------------------------------------------------------------
def model_spec(base: Mapping[str, Any], graph: ChannelGraph, counts: Mapping[int, int]) -> dict[str, Any]:
    """The plain ``model_spec`` of an exported model."""
    base = {k: v for k, v in base.items() if k != "init_from"}
    return {
        "type": PRUNED_TYPE,
        "base": base,
        "channels": {graph.groups[gi].key: int(n) for gi, n in sorted(counts.items())},
        "input_shape": [int(s) for s in graph.input_shape],
        "exclude": list(graph.exclude),
    }


def save_pruned(path: str | Path, small: nn.Module, spec: Mapping[str, Any], meta: Mapping[str, Any] = ()) -> Path:
    """Write ``{"model_spec", "state_dict", "meta"}`` atomically (loads with ``weights_only=True``)."""
    from gml_core.api import save_checkpoint
    state = {k: v.detach().cpu() for k, v in small.state_dict().items()}
    return save_checkpoint({"model_spec": dict(spec), "state_dict": state, "meta": dict(meta)}, path)


def build_pruned_model(base: dict, channels: dict[str, int], input_shape: list[int],
                       exclude: list[str] = ()) -> nn.Module:
    """Rebuild an exported model's architecture (weights come from its checkpoint).

    Registered as the model ``gml.PrunedModel``; ``base`` is the original model spec.
    """
    from gml_core.api import ComponentSpec, build_component
    if not isinstance(base, Mapping) or not isinstance(base.get("type"), str):
        raise GmlUserError("gml.PrunedModel: 'base' must be a model spec table with a 'type'")
    args = {k: v for k, v in base.items() if k != "type"}
    model = build_component("model", ComponentSpec(base["type"], args), "model_spec.base")
    graph = analyze(model, input_shape, list(exclude), shape_key="model_spec.input_shape",
                    exclude_key="model_spec.exclude")
    counts = {}
    for key, n in channels.items():
        try:
            group = graph.group(key)
        except KeyError:
            raise GmlUserError(f"gml.PrunedModel: channel group '{key}' does not exist in {base['type']}; "
                               "the checkpoint was exported from a different model") from None
        if not group.prunable or not 1 <= int(n) <= group.size or int(n) % group.blocks:
            raise GmlUserError(f"gml.PrunedModel: group '{key}' cannot keep {n} of {group.size} channels")
        counts[group.index] = int(n)
    return prune_model(model, graph, prefix_keep(counts, graph))


def save_torchscript(model: nn.Module, input_shape: Sequence[int], path: str | Path) -> Path:
    """Trace ``model`` (eval mode) to TorchScript and save it atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    example = torch.zeros(*input_shape, device=param.device, dtype=param.dtype)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            scripted = torch.jit.trace(model, example)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            os.close(fd)
            try:
                torch.jit.save(scripted, tmp)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    finally:
        model.train(was_training)
    return path
