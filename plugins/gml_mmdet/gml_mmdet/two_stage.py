"""mmdet's two-stage detectors (Faster R-CNN) as gml models.

``forward(images)`` returns what the images alone determine: the FPN features and the RPN's
raw outputs, ``(feats, rpn_cls_scores, rpn_bbox_preds)`` (each per FPN level; the RPN outputs
pass the identity taps ``head_out.<output>.<level>`` like the single-stage heads' outputs).
The second stage needs proposals - assigned and sampled against the ground truth when
training - so it runs in ``task_losses`` and ``decode``, which split mmdet's own
``TwoStageDetector.loss``/``predict`` at the point where they need data samples:

- ``task_losses``: the RPN's ``loss_by_feat`` (class-agnostic: every box is an object),
  proposals from its ``predict_by_feat`` with ``train_cfg.rpn_proposal`` (detached, as in
  mmdet), then ``roi_head.loss`` (assign, sample, RoIAlign on the FPN levels, box-head losses);
- ``decode``: proposals with ``test_cfg.rpn``, then ``roi_head.predict_bbox`` (``test_cfg.rcnn``).

RoIAlign runs on mmcv's op, i.e. on gml-mmdet's torchvision fallback without compiled mmcv.
The RoI head is outside the forward: magnitude pruning (which cuts only the backbone and the FPN
laterals here) works, QAT/NAS/DMCP would lose or mis-handle it and refuse (``algorithms.build``).
"""

from __future__ import annotations

from typing import Any

import torch

from .ops import building


def _summed(losses: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items()}


def two_stage_losses(detector: Any, outputs: Any, gts: list, metas: list[dict]) -> dict[str, torch.Tensor]:
    """RPN + RoI-head losses of ``detector`` (a ``Gml<TwoStage>``) from its forward's outputs."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    feats, cls_scores, bbox_preds = outputs
    rpn_gts = [InstanceData(bboxes=g.bboxes, labels=torch.zeros_like(g.labels)) for g in gts]
    losses = _summed(detector.rpn_head.loss_by_feat(cls_scores, bbox_preds, rpn_gts, metas))
    cfg = detector.train_cfg.get("rpn_proposal", detector.test_cfg.rpn)
    proposals = detector.rpn_head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, cfg=cfg)
    samples = [DetDataSample(metainfo=m, gt_instances=g) for g, m in zip(gts, metas)]
    with building(f"mmdet.{type(detector).__name__[3:]}"):
        losses.update(_summed(detector.roi_head.loss(tuple(feats), proposals, samples)))
    return losses


def two_stage_predict(detector: Any, outputs: Any, metas: list[dict], rescale: bool) -> list:
    """Detections (``InstanceData``: bboxes, scores, labels) per image: RPN proposals, then the RoI head."""
    feats, cls_scores, bbox_preds = outputs
    proposals = detector.rpn_head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas,
                                                  cfg=detector.test_cfg.rpn, rescale=False)
    with building(f"mmdet.{type(detector).__name__[3:]}"):
        return detector.roi_head.predict_bbox(tuple(feats), metas, proposals, detector.roi_head.test_cfg,
                                              rescale=rescale)


def two_stage_class(name: str, base: type) -> type:
    """``Gml<name>``: mmdet's two-stage detector ``base`` with ``forward(images) -> (feats, *rpn outputs)``."""
    from .models import targets_to_mmdet

    class GmlTwoStage(base):  # type: ignore[misc, valid-type]
        def forward(self, inputs):  # noqa: D401 - a traceable single-input forward
            with building(f"mmdet.{name}"):
                feats = self.extract_feat(inputs)
                outs = self.rpn_head(feats)
            tapped = ([tap(level) for tap, level in zip(taps, out)] for taps, out in zip(self.head_out, outs))
            return (tuple(feats), *tapped)

        def mm_forward(self, inputs, data_samples=None, mode: str = "tensor"):
            return base.forward(self, inputs, data_samples, mode)

        def task_losses(self, outputs, targets) -> dict[str, torch.Tensor]:
            gts, metas = targets_to_mmdet(targets, outputs[0][0].device)
            return two_stage_losses(self, outputs, gts, metas)

        def decode(self, outputs, targets) -> list:
            _, metas = targets_to_mmdet(targets, outputs[0][0].device)
            return two_stage_predict(self, outputs, metas, rescale=False)

    GmlTwoStage.__name__ = GmlTwoStage.__qualname__ = f"Gml{name}"
    GmlTwoStage.__module__ = "gml_mmdet.models"
    return GmlTwoStage
