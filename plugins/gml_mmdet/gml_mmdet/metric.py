"""mmdet's ``CocoMetric`` (pycocotools mAP) over gml detector outputs.

The metric decodes the dense head's raw outputs with the head's own ``predict_by_feat``
(score threshold, top-k, NMS from the model's ``test_cfg``), maps predictions and ground
truth back to original image coordinates, and hands both to mmdet's ``CocoMetric`` with no
annotation file (it builds the COCO ground truth from the samples).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.evaluator import BaseMetric


def _head_owner(model: torch.nn.Module) -> Any:
    """The detector that decodes ``model``'s outputs: an algorithm's ``mmdet_decoder``, ``model``
    itself or its first sub-module with ``decode`` and a ``bbox_head``."""
    decoder = getattr(model, "mmdet_decoder", None)
    if decoder is not None:
        return decoder
    from .algorithms import is_detector

    for module in model.modules():
        if is_detector(module):
            return module
    raise TypeError(f"{type(model).__name__} holds no gml mmdet detector to decode outputs with")


class DetectionMAP(BaseMetric):
    """COCO box mAP (``coco/bbox_mAP``, ``coco/bbox_mAP_50``, ...) in percent."""

    default_prefix = "coco"

    def __init__(self, model: torch.nn.Module, classes: Sequence[str], **kwargs: Any):
        super().__init__(**kwargs)
        from .ops import install

        install()
        from mmdet.evaluation import CocoMetric

        self.detector = _head_owner(model)
        self.coco = CocoMetric(metric="bbox", format_only=False, classwise=False)
        self.coco.dataset_meta = {"classes": tuple(classes)}

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        targets = data_batch[1]
        outputs = tuple(list(o) for o in data_samples)
        with torch.no_grad():
            preds = self.detector.decode(outputs, targets)
        for i, pred in enumerate(preds):
            scale = targets["scale_factor"][i].to(pred.bboxes.device)
            keep = targets["labels"][i] >= 0
            gt_boxes = targets["boxes"][i][keep] / targets["scale_factor"][i].repeat(2)
            self.results.append({
                "img_id": int(targets["img_id"][i]), "ori_shape": tuple(int(v) for v in targets["ori_shape"][i]),
                "pred": {"bboxes": (pred.bboxes / scale.repeat(2)).cpu(), "scores": pred.scores.cpu(),
                         "labels": pred.labels.cpu()},
                "instances": [{"bbox": b.tolist(), "bbox_label": int(lab), "ignore_flag": 0}
                              for b, lab in zip(gt_boxes, targets["labels"][i][keep])]})

    def compute_metrics(self, results: list) -> dict[str, float]:
        import contextlib
        import io

        self.coco.results.clear()
        if not any(len(r["pred"]["scores"]) for r in results):  # nothing detected (CocoMetric reports nothing)
            return {"bbox_mAP": 0.0, "bbox_mAP_50": 0.0, "bbox_mAP_75": 0.0}
        samples = [{"img_id": r["img_id"], "ori_shape": r["ori_shape"], "pred_instances": r["pred"],
                    "instances": r["instances"]} for r in results]
        self.coco._coco_api = None
        self.coco.process({}, samples)
        with contextlib.redirect_stdout(io.StringIO()):
            values = self.coco.compute_metrics(self.coco.results)
        self.coco.results.clear()
        # pycocotools gives -1 for an empty area range (e.g. no large objects): left out
        return {k: 100.0 * float(v) for k, v in values.items()
                if isinstance(v, (int, float)) and k.startswith("bbox_mAP") and v >= 0}


def coco_metric_factory(classes: Sequence[str]) -> Any:
    """``model -> DetectionMAP`` for a ``DataBundle``."""
    classes = list(classes)

    def make(model: torch.nn.Module) -> DetectionMAP:
        return DetectionMAP(model, classes)

    return make
