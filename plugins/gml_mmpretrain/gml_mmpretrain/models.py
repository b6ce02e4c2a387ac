"""``mmpretrain.ImageClassifier`` as a gml model: ``model(x)`` returns logits.

The result is a ``GmlImageClassifier``: mmpretrain's own ``ImageClassifier`` whose
``forward`` takes the image batch only (backbone -> neck -> head -> logits), so
torch.fx can trace it for pruning and QAT. Module paths such as
``backbone.layer1.0.conv1`` or ``head.fc`` are what KD hooks, pruning and QAT address,
and the state dict is exactly mmpretrain's, so it loads straight back into mmpretrain.
mmengine's ``train_step``/``val_step``/``test_step`` keep mmpretrain's three modes.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from torch import nn

from gml_core.api import REMOTE_PREFIXES, GmlUserError, check_offline_weights, init_weights_quietly

from . import registries
from .checks import BackboneCfg, HeadCfg, NeckCfg, accepted_params

#: attribute holding the plain mmpretrain config dict a model was built from (used by export)
CFG_ATTR = "gml_mmpretrain_cfg"



_CLASS: Any = None


def classifier_class() -> Any:
    """``GmlImageClassifier``, defined on first use (it subclasses mmpretrain's ``ImageClassifier``)."""
    global _CLASS
    if _CLASS is None:
        base = registries.models().get("ImageClassifier")

        class GmlImageClassifier(base):
            """mmpretrain's ``ImageClassifier`` with ``forward(inputs) -> logits``.

            mmpretrain's ``forward(inputs, data_samples, mode)`` stays available as
            ``mm_forward`` and through mmengine's ``*_step`` methods.
            """

            def forward(self, inputs):  # noqa: D401 - a traceable single-input forward
                feats = self.extract_feat(inputs)
                return self.head(feats) if self.with_head else feats

            def mm_forward(self, inputs, data_samples=None, mode: str = "tensor"):
                return base.forward(self, inputs, data_samples, mode)

            def _run_forward(self, data, mode):
                if isinstance(data, dict):
                    return self.mm_forward(**data, mode=mode)
                return self.mm_forward(*data, mode=mode)

        GmlImageClassifier.__module__ = __name__
        GmlImageClassifier.__qualname__ = "GmlImageClassifier"
        _CLASS = GmlImageClassifier
    return _CLASS


def _build_part(cfg: Optional[dict], role: str, in_channels: Optional[int]) -> Any:
    """A gml-scoped part (``gml.X``, ``torchvision.X``) is built by gml; mmpretrain parts stay dicts."""
    if cfg is None:
        return None
    if registries.is_foreign_scope(cfg["type"]):
        from gml_core.api import ComponentSpec, build_component
        spec = ComponentSpec(cfg["type"], {k: v for k, v in cfg.items() if k != "type"})
        defaults = {"in_channels": in_channels} if in_channels is not None and role == "backbone" else {}
        return build_component("model", spec, f"model.{role}", **defaults)
    return cfg


def _accepts(type_name: str, arg: str) -> bool:
    names, is_open = accepted_params(registries.models().get(type_name))
    return arg in names


def _adapt_stem(model: nn.Module, in_channels: int) -> None:
    """Replace the first convolution when the data has a channel count the backbone cannot take."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == in_channels:
                return
            new = nn.Conv2d(in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                            module.dilation, 1 if module.groups == 1 else in_channels, module.bias is not None)
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, new)
            return



@registries.in_mmpretrain_scope
def build_image_classifier(backbone: BackboneCfg, neck: Optional[NeckCfg] = None, head: Optional[HeadCfg] = None,
                           num_classes: Optional[int] = None, in_channels: Optional[int] = None,
                           data_preprocessor: Optional[dict] = None, train_cfg: Optional[dict] = None,
                           init_cfg: Any = None, pretrained: Optional[str] = None) -> nn.Module:
    """Build ``mmpretrain.ImageClassifier`` from backbone/neck/head dicts.

    ``num_classes`` (filled from the data by gml) is written into the head when the
    head accepts it; ``in_channels`` into the backbone when it accepts it, otherwise
    the first convolution is replaced for non-RGB data. Weights are initialised once
    here with mmpretrain's ``init_cfg`` rules, so a later checkpoint load is kept.
    """
    cfg: dict[str, Any] = {"type": "ImageClassifier"}
    parts = {"backbone": backbone, "neck": neck, "head": head}
    for role, part in parts.items():
        if part is not None:
            part = dict(part) if registries.is_foreign_scope(part["type"]) else registries.strip_scopes(dict(part))
        cfg[role] = part
    if train_cfg and train_cfg.get("augments"):
        raise GmlUserError("model.train_cfg.augments (batch Mixup/CutMix): gml algorithms train on hard labels; "
                           "remove the batch augments or train them with mmpretrain itself")
    backbone_cfg, head_cfg = cfg["backbone"], cfg["head"]
    native_backbone = not registries.is_foreign_scope(backbone_cfg["type"])
    if in_channels is not None and native_backbone and _accepts(backbone_cfg["type"], "in_channels"):
        backbone_cfg["in_channels"] = in_channels
    if num_classes is not None and head_cfg is not None and not registries.is_foreign_scope(head_cfg["type"]) \
            and _accepts(head_cfg["type"], "num_classes"):
        head_cfg["num_classes"] = num_classes
    for key, value in (("data_preprocessor", data_preprocessor), ("train_cfg", train_cfg),
                       ("init_cfg", init_cfg), ("pretrained", pretrained)):
        if value is not None:
            cfg[key] = registries.strip_scopes(value)
    check_offline_weights(cfg, "model")
    if isinstance(cfg.get("pretrained"), str) and cfg["pretrained"].startswith(REMOTE_PREFIXES):
        raise GmlUserError(f"model.pretrained: '{cfg['pretrained']}' would be downloaded; give a local path")
    kwargs = {k: copy.deepcopy(v) for k, v in cfg.items() if k != "type"}
    for role in parts:
        kwargs[role] = _build_part(kwargs[role], role, in_channels)
    classifier_cls = classifier_class()
    try:
        model = classifier_cls(**kwargs)
    except (TypeError, AssertionError, KeyError, ValueError) as exc:
        raise GmlUserError(f"mmpretrain.ImageClassifier could not be built: {type(exc).__name__}: {exc}") from None
    if in_channels is not None and native_backbone and not _accepts(backbone_cfg["type"], "in_channels"):
        _adapt_stem(model.backbone, in_channels)
    init_weights_quietly(model)
    setattr(model, CFG_ATTR, cfg)
    return model
