"""Classifiers registered in mmpretrain's ``MODELS`` registry, for exported gml models.

An exported mmpretrain config imports this module (``custom_imports``) when its
model is not a plain mmpretrain ``ImageClassifier``:

- ``GmlClassifier``: any gml model spec (a pruned model, a NAS subnet, a gml
  backbone), rebuilt by gml; its weights load from the exported checkpoint.
- ``GmlTorchScriptClassifier``: a TorchScript file, e.g. gml-qat's int8 model.

Both behave like mmpretrain classifiers: ``tensor`` mode returns logits,
``predict`` returns ``DataSample``s with ``pred_score``/``pred_label``, ``loss``
returns the cross-entropy.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import torch
import torch.nn.functional as F
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


def _preprocessor(cfg: Optional[dict]) -> Any:
    cfg = dict(cfg or {})
    cfg.setdefault("type", "ClsDataPreprocessor")
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmpretrain"):
        return MODELS.build(cfg)


class _LogitsClassifier(BaseClassifier):
    """Shared ``forward`` of classifiers whose ``logits(inputs)`` gives class scores."""

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.logits(inputs)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None, mode: str = "tensor") -> Any:
        if mode == "tensor":
            return self.logits(inputs)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "loss":
            return self.loss(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict[str, torch.Tensor]:
        target = torch.cat([s.gt_label for s in data_samples]).to(inputs.device)
        return {"loss": F.cross_entropy(self.logits(inputs), target)}

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> list:
        scores = F.softmax(self.logits(inputs).float(), dim=1)
        labels = scores.argmax(dim=1, keepdim=True)
        samples = data_samples if data_samples is not None else [None] * scores.size(0)
        out = []
        for sample, score, label in zip(samples, scores, labels):
            sample = sample if sample is not None else DataSample()
            out.append(sample.set_pred_score(score).set_pred_label(label))
        return out


@MODELS.register_module()
class GmlClassifier(_LogitsClassifier):
    """A gml model (``model`` = its gml spec, e.g. ``{type = "gml.PrunedModel", ...}``) in mmpretrain."""

    def __init__(self, model: dict, num_classes: Optional[int] = None, in_channels: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg, data_preprocessor=_preprocessor(data_preprocessor))
        from gml_core.api import ComponentSpec, build_component, converter
        spec = converter.structure(dict(model), ComponentSpec)
        defaults = {k: v for k, v in (("num_classes", num_classes), ("in_channels", in_channels)) if v is not None}
        self.model = build_component("model", spec, "model.model", **defaults)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)


@MODELS.register_module()
class GmlTorchScriptClassifier(_LogitsClassifier):
    """A TorchScript classifier file (``file``); int8 files run on CPU under their quantized engine.

    The engine is read from gml-qat's ``gml_qat.json`` metadata inside the file, or ``backend``.
    """

    def __init__(self, file: str, backend: Optional[str] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg, data_preprocessor=_preprocessor(data_preprocessor))
        extra = {"gml_qat.json": ""}
        self.scripted = torch.jit.load(file, map_location="cpu", _extra_files=extra)
        if backend is None and extra["gml_qat.json"]:
            backend = json.loads(extra["gml_qat.json"]).get("backend")
        if backend:
            if backend not in torch.backends.quantized.supported_engines:
                raise RuntimeError(f"{file}: quantized engine '{backend}' is not available on this machine; "
                                   f"available: {torch.backends.quantized.supported_engines}")
            torch.backends.quantized.engine = backend
        self.backend = backend

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.scripted(inputs.float().cpu())
