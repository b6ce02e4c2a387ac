"""``GmlDetector`` in mmdet's ``MODELS`` registry, for exported gml detectors mmdet cannot describe.

A pruned detector (``gml.PrunedModel``: every block with its own channel count) has no mmdet
config of its own; its exported config says ``type='GmlDetector', model=<gml spec>`` and
``custom_imports`` this module. gml rebuilds the architecture, mmdet loads the weights and
runs it like any of its detectors: ``predict`` decodes with the dense head's own
``predict_by_feat`` (rescaled to the original image), ``loss`` uses its ``loss_by_feat``; a
two-stage detector (pruned Faster R-CNN) goes through RPN proposals and its RoI head
(``two_stage``).

Importing this module also installs the mmcv-ops fallback (``gml_mmdet.ops``).
"""

from __future__ import annotations

from typing import Any, Optional

from .ops import install

install()

from mmdet.models.detectors.base import BaseDetector  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402


@MODELS.register_module()
class GmlDetector(BaseDetector):
    """A gml detector spec (e.g. ``{type = "gml.PrunedModel", base = {type = "mmdet.RetinaNet", ...}}``)."""

    def __init__(self, model: dict, num_classes: Optional[int] = None, in_channels: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 backbone: Optional[dict] = None):
        # ``backbone`` is unused: mmdet's init_detector reads ``model.backbone.init_cfg`` of every config
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from gml_core.api import ComponentSpec, build_component, converter

        from .metric import _head_owner

        spec = converter.structure(dict(model), ComponentSpec)
        defaults = {k: v for k, v in (("num_classes", num_classes), ("in_channels", in_channels)) if v is not None}
        self.model = build_component("model", spec, "model.model", **defaults)
        self._detector = [_head_owner(self.model)]  # a list: not a second registered sub-module

    @property
    def head(self) -> Any:
        """The dense head (single-stage) or the RPN head (two-stage)."""
        det = self._detector[0]
        return det.rpn_head if hasattr(det, "roi_head") else det.bbox_head

    def extract_feat(self, batch_inputs: Any) -> Any:
        return self._detector[0].extract_feat(batch_inputs)

    def _forward(self, batch_inputs: Any, batch_data_samples: Any = None) -> Any:
        return self.model(batch_inputs)

    def loss(self, batch_inputs: Any, batch_data_samples: list) -> dict:
        outs = self.model(batch_inputs)
        gts = [s.gt_instances for s in batch_data_samples]
        metas = [s.metainfo for s in batch_data_samples]
        if hasattr(self._detector[0], "roi_head"):
            from .two_stage import two_stage_losses

            return two_stage_losses(self._detector[0], outs, gts, metas)
        return self.head.loss_by_feat(*outs, gts, metas)

    def predict(self, batch_inputs: Any, batch_data_samples: list, rescale: bool = True) -> list:
        outs = self.model(batch_inputs)
        metas = [s.metainfo for s in batch_data_samples]
        if hasattr(self._detector[0], "roi_head"):
            from .two_stage import two_stage_predict

            results = two_stage_predict(self._detector[0], outs, metas, rescale)
        else:
            results = self.head.predict_by_feat(*outs, batch_img_metas=metas, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)
