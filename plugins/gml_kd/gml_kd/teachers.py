"""Build frozen teachers from their config and checkpoint (gml, mmengine or torchvision)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from gml_core.api import GmlUserError, load_checkpoint, load_weights

from .config import TeacherConfig


class TeacherWarning(UserWarning):
    """A teacher is used without trained weights."""


def freeze(model: nn.Module) -> nn.Module:
    """Evaluation mode and no gradients, for good."""
    model.eval()
    model.requires_grad_(False)
    return model


def build_teacher(config: TeacherConfig, index: int, context: Any,
                  prefix: str = "algorithm.distiller") -> nn.Module:
    """Build teacher ``index`` and load ``ckpt_path``; an empty path only warns.

    A checkpoint with a ``model_spec`` entry (an exported pruned or NAS model) is
    rebuilt from that spec by the core; otherwise the configured model is built and
    the weights under ``model.`` (a gml/mmengine run) or at the top level (a
    torchvision or plain state dict) are loaded.
    """
    key = f"{prefix}.distill_cfg.teacher[{index}]"
    ckpt = config.ckpt_path
    if not ckpt:
        warnings.warn(f"{key}.ckpt_path is empty: distilling from a randomly initialised teacher",
                      TeacherWarning, stacklevel=2)
        return freeze(context.build_model(config.model, f"{key}.model"))
    if not Path(ckpt).is_file():
        raise GmlUserError(f"{key}.ckpt_path: teacher checkpoint not found: {ckpt} "
                           f"(train the teacher first, e.g. a gml run with runtime.work_dir = \"{Path(ckpt).parent}\", "
                           "or fix the path)")
    try:
        data = load_checkpoint(ckpt, context.trust_checkpoint)
    except GmlUserError as exc:
        raise GmlUserError(f"{key}.ckpt_path: {exc}") from None
    if isinstance(data, Mapping) and isinstance(data.get("model_spec"), Mapping):
        return freeze(context.build_model(config.model.with_args(init_from=ckpt), f"{key}.model"))
    model = context.build_model(config.model, f"{key}.model")
    try:
        load_weights(model, ckpt, context.trust_checkpoint, prefix="model.")
    except GmlUserError as exc:  # missing file, unsafe pickle, keys or tensor shapes that do not fit
        hint = (f"; set {key}.model to the architecture the checkpoint was trained with"
                if "does not fit" in str(exc) else "")
        raise GmlUserError(f"{key}.ckpt_path: {exc}{hint}") from None
    return freeze(model)
