"""mmdet single-stage detectors as gml models: ``model(images)`` returns the dense head's outputs.

``build_detector`` makes a ``Gml<Detector>``: mmdet's own class (``RetinaNet``, ``FCOS``,
``ATSS``, ...) whose ``forward`` takes the image batch only and returns the head's raw
per-level outputs (``(cls_scores, bbox_preds[, centernesses])``, each a list over FPN
levels), so torch.fx can trace it and KD hooks can address every module by path
(``neck.fpn_convs.0.conv``, ``bbox_head.retina_cls``). Each output of each level also
passes an ``nn.Identity`` at ``head_out.<output>.<level>`` (``head_out.0.2`` = class scores
of level 2), so per-level logits can be distilled. The state dict is exactly mmdet's.

``task_losses(outputs, targets)`` and ``decode(outputs, targets)`` call the head's own
``loss_by_feat``/``predict_by_feat`` with gml's padded box targets (see ``datasets``).

Two-stage detectors (``FasterRCNN``) are built here too; their forward, losses and decoding
are in ``two_stage``.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import torch
from torch import nn

from gml_core.api import GmlUserError, check_offline_weights, did_you_mean, init_weights_quietly, one_of

from . import registries
from .ops import building

#: attribute holding the plain mmdet model config a detector was built from (used by export)
CFG_ATTR = "gml_mmdet_cfg"
#: detectors gml trains: single-stage dense heads (the whole model is one traceable forward)
DETECTORS = ("RetinaNet", "FCOS", "ATSS", "FSAF", "GFL", "FreeAnchor", "PAA", "VFNet", "TOOD", "AutoAssign")
#: two-stage detectors gml trains (RPN + RoI head; see ``two_stage``)
TWO_STAGE = ("FasterRCNN",)
TRAINABLE = DETECTORS + TWO_STAGE
_CLASSES: dict[str, Any] = {}


def detector_class(name: str) -> Any:
    """``Gml<name>``: mmdet's detector ``name`` with ``forward(images) -> head outputs``."""
    if name not in _CLASSES and name in TWO_STAGE:
        from .two_stage import two_stage_class

        _CLASSES[name] = two_stage_class(name, registries.models().get(name))
    if name not in _CLASSES:
        base = registries.models().get(name)

        class GmlDetector(base):
            def forward(self, inputs):  # noqa: D401 - a traceable single-input forward
                with building(f"mmdet.{name}"):  # ops without a CPU fallback name this detector
                    outs = self.bbox_head(self.extract_feat(inputs))
                return tuple([tap(level) for tap, level in zip(taps, out)] for taps, out in zip(self.head_out, outs))

            def mm_forward(self, inputs, data_samples=None, mode: str = "tensor"):
                return base.forward(self, inputs, data_samples, mode)

            def task_losses(self, outputs, targets) -> dict[str, torch.Tensor]:
                gts, metas = targets_to_mmdet(targets, outputs[0][0].device)
                losses = self.bbox_head.loss_by_feat(*outputs, gts, metas)
                return {k: sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items()}

            def decode(self, outputs, targets) -> list:
                _, metas = targets_to_mmdet(targets, outputs[0][0].device)
                return self.bbox_head.predict_by_feat(*outputs, batch_img_metas=metas, rescale=False)

        GmlDetector.__name__ = GmlDetector.__qualname__ = f"Gml{name}"
        GmlDetector.__module__ = __name__
        _CLASSES[name] = GmlDetector
    return _CLASSES[name]


def targets_to_mmdet(targets: dict[str, torch.Tensor], device: Any) -> tuple[list, list[dict]]:
    """gml's padded targets (``boxes`` B x M x 4, ``labels`` B x M with -1 padding, ``img_shape``)
    as mmdet's ``batch_gt_instances`` and ``batch_img_metas``."""
    from mmengine.structures import InstanceData

    gts, metas = [], []
    for boxes, labels, shape in zip(targets["boxes"], targets["labels"], targets["img_shape"]):
        keep = labels >= 0
        gts.append(InstanceData(bboxes=boxes[keep].float().to(device), labels=labels[keep].long().to(device)))
        h, w = int(shape[0]), int(shape[1])
        metas.append({"img_shape": (h, w), "pad_shape": (h, w), "batch_input_shape": (h, w),
                      "scale_factor": (1.0, 1.0)})
    return gts, metas


def _check_parts(cfg: dict[str, Any]) -> None:
    reg = registries.models()
    for role in ("backbone", "neck", "bbox_head", "rpn_head", "roi_head"):
        part = cfg.get(role)
        if part is None:
            continue
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise GmlUserError(f"model.{role}: expected a table with a string 'type', got {part!r}")
        registries.lookup(reg, part["type"], role)



def _add_taps(model: nn.Module, inputs: int) -> None:
    head = model.rpn_head if hasattr(model, "rpn_head") else model.bbox_head
    levels = len(head.prior_generator.strides)
    with torch.no_grad():
        outs = head(model.extract_feat(torch.zeros(1, inputs, 64, 64)))
    model.head_out = nn.ModuleList(nn.ModuleList(nn.Identity() for _ in range(levels)) for _ in outs)


def make_builder(name: str) -> Any:
    """The gml model builder for ``mmdet.<name>`` (a did-you-mean error for unknown detectors)."""
    reg = registries.models()
    if name not in TRAINABLE:
        if name in reg.module_dict:
            raise GmlUserError(f"'mmdet.{name}' cannot be trained by gml: gml trains the single-stage detectors "
                               f"{one_of(DETECTORS)} (backbone/neck/bbox_head tables of mmdet's registry) and "
                               f"the two-stage {one_of(TWO_STAGE)}")
        raise GmlUserError(f"unknown mmdet detector 'mmdet.{name}'{did_you_mean(name, TRAINABLE)}; "
                           f"gml trains {one_of(TRAINABLE)}")
    heads = ("rpn_head", "roi_head") if name in TWO_STAGE else ("bbox_head",)

    @registries.in_mmdet_scope
    def build(backbone: dict, neck: Optional[dict] = None, bbox_head: Optional[dict] = None,
              rpn_head: Optional[dict] = None, roi_head: Optional[dict] = None, train_cfg: Optional[dict] = None,
              test_cfg: Optional[dict] = None, data_preprocessor: Optional[dict] = None, init_cfg: Any = None,
              num_classes: Optional[int] = None, in_channels: Optional[int] = None) -> nn.Module:
        cfg: dict[str, Any] = {"type": name}
        given = {"bbox_head": bbox_head, "rpn_head": rpn_head, "roi_head": roi_head}
        for role, value in given.items():
            if (value is None) == (role in heads):
                need = "'rpn_head' and 'roi_head' tables" if len(heads) == 2 else "a 'bbox_head' table"
                raise GmlUserError(f"model.{role}: mmdet.{name} " + (f"needs {need}" if value is None else
                                   f"has no '{role}' (it takes {need})"))
        for key, value in (("backbone", backbone), ("neck", neck), *given.items(), ("train_cfg", train_cfg),
                           ("test_cfg", test_cfg), ("data_preprocessor", data_preprocessor),
                           ("init_cfg", init_cfg)):
            if value is not None:
                cfg[key] = registries.strip_scopes(dict(value) if isinstance(value, dict) else value)
        _check_parts(cfg)
        check_offline_weights(cfg, "model")
        if num_classes is not None:
            head = cfg["bbox_head"] if "bbox_head" in cfg else cfg["roi_head"].setdefault("bbox_head", {})
            head["num_classes"] = num_classes
        if in_channels not in (None, 3) and "in_channels" not in cfg["backbone"]:
            cfg["backbone"]["in_channels"] = in_channels
        from mmengine.config import ConfigDict

        # mmdet reads train_cfg/test_cfg by attribute, as its config files give them
        kwargs = {k: ConfigDict(copy.deepcopy(v)) if isinstance(v, dict) else copy.deepcopy(v)
                  for k, v in cfg.items() if k != "type"}
        try:
            with building(f"mmdet.{name}"):
                model = detector_class(name)(**kwargs)
        except (TypeError, AssertionError, KeyError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise GmlUserError(f"mmdet.{name} could not be built: {type(exc).__name__}: {first}") from None
        init_weights_quietly(model)
        with building(f"mmdet.{name}"):
            _add_taps(model, in_channels or 3)  # a dry run: an op without a CPU fallback fails here, named
        setattr(model, CFG_ATTR, cfg)
        return model

    build.__name__ = f"mmdet.{name}"
    build.__doc__ = f"mmdet {name} detector for gml (forward returns the {'RPN' if name in TWO_STAGE else 'dense'} head's outputs)."
    return build
