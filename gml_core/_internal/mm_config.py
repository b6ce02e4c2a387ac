"""Helpers for plugins that adapt OpenMMLab (mmengine-based) configs."""

from __future__ import annotations

from typing import Any

from .errors import GmlUserError

#: checkpoint locations that mmengine would download
REMOTE_PREFIXES = ("http://", "https://", "torchvision://", "open-mmlab://", "mmcls://", "modelzoo://")


def merge_dicts(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursively where both hold a dict (inputs untouched)."""
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_dicts(out[key], value) if both else value
    return out


def check_offline_weights(value: Any, path: str) -> None:
    """Refuse ``Pretrained`` init checkpoints that mmengine would download (gml runs offline)."""
    if isinstance(value, dict):
        ckpt = value.get("checkpoint") if value.get("type") == "Pretrained" else None
        if isinstance(ckpt, str) and ckpt.startswith(REMOTE_PREFIXES):
            raise GmlUserError(f"{path}: checkpoint '{ckpt}' would be downloaded; gml runs offline, download it "
                               "and give a local path (or use init_from)")
        for key, item in value.items():
            check_offline_weights(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_offline_weights(item, f"{path}[{i}]")



def init_weights_quietly(model: Any) -> None:
    """An OpenMMLab model's ``init_weights()`` without its per-parameter report on the console."""
    import logging

    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
