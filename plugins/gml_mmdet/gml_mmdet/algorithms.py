"""Any gml algorithm on an mmdet detector: the task loss becomes the detector's own loss.

gml's algorithms compute their label loss with cross-entropy on ``model(inputs)``. For a
model spec of the ``mmdet`` scope, ``gml_build_algorithm`` builds a subclass of the
registered algorithm whose label loss is the dense head's ``loss_by_feat`` on the targets
(``Supervised``/``GmlAlgorithm.loss`` and the KD/pruning/QAT algorithms' ``_label_loss``
and ``loss`` are covered). Everything else (distillers, pruners, quantizers) is the
algorithm's own.
"""

from __future__ import annotations

from typing import Any

import torch

from gml_core.api import GmlUserError


def is_detection(config: Any) -> bool:
    model = getattr(config, "model", None)
    return str(getattr(model, "type", "")).startswith("mmdet.")


def is_detector(module: Any) -> bool:
    """A gml mmdet detector (single- or two-stage): it decodes its outputs with its own head(s)."""
    return hasattr(module, "decode") and (hasattr(module, "bbox_head") or hasattr(module, "roi_head"))


def _detector(algorithm: Any) -> Any:
    return algorithm.mmdet_decoder


class DetectionLossMixin:
    """Detection losses in place of cross-entropy."""

    @property
    def mmdet_decoder(self) -> Any:
        """The detector whose head decodes outputs and computes losses (no weights of its own are used).

        ``self.model`` itself, or - once a quantizer has traced it into a ``GraphModule`` without
        mmdet's methods - a detector rebuilt from the model spec (cached).
        """
        for module in self.model.modules():
            if is_detector(module):
                return module
        cache = self.__dict__.setdefault("_mmdet_decoder", [])
        if not cache:
            from gml_core.api import build_component

            cache.append(build_component("model", self.model_spec, "algorithm.model"))
        return cache[0]

    def detection_loss(self, outputs: Any, targets: Any) -> torch.Tensor:
        losses = _detector(self).task_losses(outputs, targets)
        return sum(v for k, v in losses.items() if "loss" in k)  # not the RoI head's accuracy

    def loss(self, inputs: torch.Tensor, labels: Any) -> dict[str, torch.Tensor]:
        own_loss = type(self).__mro__[2].loss is not _base_loss()
        # gml-qat's IAO computes cross-entropy inline unless it distils: its plain case is replaced here
        plain_qat = hasattr(self, "quantizer") and getattr(self, "distiller", None) is None
        if own_loss and not plain_qat:  # the algorithm's own loss, with the detection label loss
            return super().loss(inputs, labels)
        return _detector(self).task_losses(self.model(inputs), labels)

    def _label_loss(self, logits: Any, labels: Any) -> torch.Tensor:
        return self.detection_loss(logits, labels)

    def ce_loss(self, logits: Any, labels: Any) -> torch.Tensor:  # gml-prune's label loss
        return self.detection_loss(logits, labels)


def _base_loss() -> Any:
    from gml_core.api import GmlAlgorithm

    return GmlAlgorithm.loss


_CLASSES: dict[type, type] = {}


def detection_algorithm(cls: type) -> type:
    """``cls`` with the detection loss (cached per class)."""
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"Detection{cls.__name__}", (DetectionLossMixin, cls), {})
    return _CLASSES[cls]


def build(config: Any, context: Any) -> Any:
    from gml_core.api import registry

    cls = registry("algorithm").get(config.type)
    if getattr(cls, "inplace_only", False):
        raise GmlUserError(f"algorithm.type: {config.type} does not support mmdet detectors")
    _refuse_two_stage(cls, config)
    return detection_algorithm(cls)(config, context)


#: plugins whose algorithms trace or rebuild the model's forward (FX, channel dependency analysis)
_TRACING = {"gml_prune": "pruning", "gml_qat": "quantization-aware training", "gml_nas": "NAS"}
#: ... of which these work on two-stage detectors: magnitude pruning cuts the backbone and the FPN
#: laterals only (the FPN outputs feed the RPN head, shared by all levels and kept whole by gml-prune,
#: so the RoI head outside the traced forward keeps its input width)
_TWO_STAGE_OK = ("MagnitudePruning",)


def _refuse_two_stage(cls: type, config: Any) -> None:
    """QAT/NAS/DMCP of a two-stage detector: a one-line error (its RoI head is outside the forward)."""
    from .models import TWO_STAGE

    name = str(getattr(config.model, "type", "")).partition(".")[2]
    package = cls.__module__.partition(".")[0]
    if name in TWO_STAGE and package in _TRACING and config.type not in _TWO_STAGE_OK:
        raise GmlUserError(f"algorithm.type: {config.type} ({_TRACING[package]}) does not support two-stage "
                           f"detectors (mmdet.{name}): their RoI head runs outside the traced forward; "
                           "accepted: single-stage detectors (mmdet.RetinaNet, FCOS, ATSS, ...), or train/distil "
                           f"mmdet.{name} with Supervised or TeacherStudentDistillation, prune it with "
                           "MagnitudePruning")
