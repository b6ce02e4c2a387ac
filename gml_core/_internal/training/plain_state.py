"""Checkpoints of plain data: mmengine's message hub and meta made ``weights_only``-safe.

mmengine 0.10 pickles ``HistoryBuffer`` objects and numpy values into its
checkpoints, which torch's default ``weights_only=True`` loading refuses. Rather
than allow-listing those globals, gml converts them to plain containers before
saving and restores them after loading (the hooks below run inside mmengine's
own save/load paths).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_BUFFER_TAG = "__gml_history_buffer__"


def to_plain(value: Any) -> Any:
    """Recursively turn numpy values, tuples and HistoryBuffers into plain data."""
    from mmengine.logging import HistoryBuffer

    if isinstance(value, HistoryBuffer):
        logs, counts = value.data
        return {_BUFFER_TAG: True, "log": to_plain(logs), "count": to_plain(counts), "max_length": value.max_length}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def restore_message_hub(state: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``to_plain`` for a message-hub state dict."""
    from mmengine.logging import HistoryBuffer

    scalars = {}
    for key, value in state.get("log_scalars", {}).items():
        if isinstance(value, dict) and value.get(_BUFFER_TAG):
            scalars[key] = HistoryBuffer(value["log"], value["count"], value["max_length"])
        else:
            scalars[key] = value
    return {**state, "log_scalars": scalars}


def make_plain_checkpoint(checkpoint: dict[str, Any]) -> None:
    """Convert, in place, the parts of an mmengine checkpoint that are not plain data."""
    for key in ("meta", "message_hub", "param_schedulers"):
        if key in checkpoint:
            checkpoint[key] = to_plain(checkpoint[key])


def restore_checkpoint(checkpoint: dict[str, Any]) -> None:
    """Undo ``make_plain_checkpoint`` where mmengine needs objects back."""
    if isinstance(checkpoint.get("message_hub"), dict):
        checkpoint["message_hub"] = restore_message_hub(checkpoint["message_hub"])
