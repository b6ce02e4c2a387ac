"""Detectors in gml: build, losses, CocoMetric through pycocotools, and a whole `gml run`."""

import json

import pytest
import torch
from mmdet_helpers import CONFIGS, tiny
from mmengine.structures import InstanceData

from gml_core._internal.config.loader import load_config
from gml_core._internal.training.runner import run
from gml_core.api import GmlUserError


def _targets(boxes, labels, size=64):
    b = torch.zeros(1, 4, 4)
    lab = torch.full((1, 4), -1)
    b[0, :len(boxes)] = torch.tensor(boxes, dtype=torch.float)
    lab[0, :len(labels)] = torch.tensor(labels)
    return {"boxes": b, "labels": lab, "img_shape": torch.tensor([[size, size]]),
            "ori_shape": torch.tensor([[size, size]]), "scale_factor": torch.tensor([[1.0, 1.0]]),
            "img_id": torch.tensor([0])}


class _Oracle(torch.nn.Module):
    """A 'detector' whose decode returns fixed boxes (to test the metric independently of a model)."""

    def __init__(self, boxes, scores, labels):
        super().__init__()
        self.bbox_head = torch.nn.Identity()
        self.pred = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float), scores=torch.tensor(scores),
                                 labels=torch.tensor(labels))

    def decode(self, outputs, targets):
        return [self.pred]


def test_coco_metric_hand_cases():
    from gml_mmdet.metric import DetectionMAP

    gt = _targets([[10, 10, 30, 30], [40, 40, 60, 60]], [1, 2])
    perfect = DetectionMAP(_Oracle([[10, 10, 30, 30], [40, 40, 60, 60]], [0.9, 0.8], [1, 2]), [str(i) for i in range(10)])
    perfect.process((None, gt), [[torch.zeros(1)]])
    assert perfect.compute_metrics(perfect.results)["bbox_mAP"] == pytest.approx(100.0)
    # one box right, the other with the wrong class: AP 1 for class 1, 0 for class 2 -> mAP 50 (over classes with gt)
    half = DetectionMAP(_Oracle([[10, 10, 30, 30], [40, 40, 60, 60]], [0.9, 0.8], [1, 3]), [str(i) for i in range(10)])
    half.process((None, gt), [[torch.zeros(1)]])
    assert half.compute_metrics(half.results)["bbox_mAP"] == pytest.approx(50.0)
    # IoU of a 20x20 box shifted by 4 px: 16*20/(400+400-320) = 0.667 -> a hit at IoU 0.50, 0.55, 0.60, 0.65 only
    shifted = DetectionMAP(_Oracle([[14, 10, 34, 30]], [0.9], [1]), [str(i) for i in range(10)])
    shifted.process((None, _targets([[10, 10, 30, 30]], [1])), [[torch.zeros(1)]])
    m = shifted.compute_metrics(shifted.results)
    assert m["bbox_mAP_50"] == pytest.approx(100.0) and m["bbox_mAP_75"] == pytest.approx(0.0)
    assert m["bbox_mAP"] == pytest.approx(40.0)  # 4 of the 10 IoU thresholds 0.50:0.95


def test_detector_forward_losses_and_unknown_names(host):
    from gml_core._internal.components import build
    from gml_core._internal.config.spec import ComponentSpec
    from gml_core.api import ConfigError

    cfg = load_config(CONFIGS / "retinanet_r18_digits.toml", [])
    model = build("model", cfg.algorithm.model, "algorithm.model", num_classes=10, in_channels=3)
    outs = model(torch.rand(2, 3, 64, 64))
    assert len(outs) == 2 and [o.shape[-1] for o in outs[0]] == [8, 4, 2]
    assert outs[0][0].shape[1] == 9 * 10  # 9 anchors x 10 classes
    losses = model.task_losses(outs, {**_targets([[10, 10, 30, 30]], [1]),
                                      **{k: v.repeat(2, *[1] * (v.dim() - 1)) for k, v in
                                         _targets([[10, 10, 30, 30]], [1]).items()}})
    assert set(losses) == {"loss_cls", "loss_bbox"} and all(torch.isfinite(v) for v in losses.values())
    assert "head_out.0.2" in dict(model.named_modules())
    with pytest.raises(ConfigError, match="RetinaNett.*did you mean 'RetinaNet'"):
        build("model", ComponentSpec("mmdet.RetinaNett", {}), "algorithm.model")
    with pytest.raises(ConfigError, match="MaskRCNN.*cannot be trained.*single-stage.*FasterRCNN"):
        build("model", ComponentSpec("mmdet.MaskRCNN", {}), "algorithm.model")
    args = cfg.algorithm.model.args
    with pytest.raises(GmlUserError, match="unknown mmdet backbone 'ResNett'.*did you mean 'ResNet'"):
        build("model", ComponentSpec("mmdet.RetinaNet", {**args, "backbone": {**args["backbone"], "type": "ResNett"}}),
              "m")
    # a deformable-convolution backbone: building (its dry run) names the op and the detector
    dcn = {**args["backbone"], "depth": 50, "dcn": {"type": "DCNv2", "deform_groups": 1, "fallback_on_stride": False},
           "stage_with_dcn": [False, False, True, True]}  # mmdet's DCN needs Bottleneck blocks
    neck = {**args["neck"], "in_channels": [128, 256, 512]}
    with pytest.raises(GmlUserError, match="'modulated_deform_conv_forward' .*mmdet.RetinaNet.*no CPU fallback"):
        build("model", ComponentSpec("mmdet.RetinaNet", {**args, "backbone": dcn, "neck": neck}), "m", num_classes=10)


def test_gml_run_retinanet(host, det_root, tmp_path):
    cfg = load_config(CONFIGS / "retinanet_r18_digits.toml", [*tiny(det_root), f'runtime.work_dir="{tmp_path / "w"}"'])
    result = run(cfg)
    assert set(result.metrics) >= {"coco/bbox_mAP", "coco/bbox_mAP_50"}
    assert result.best_checkpoint is not None and result.best_checkpoint.is_file()
    summary = json.loads((result.work_dir / "summary.json").read_text())
    assert summary["metrics"]["coco/bbox_mAP"] == result.metrics["coco/bbox_mAP"]


@pytest.mark.parametrize("name, outputs", [("fcos", 3), ("atss", 3)])
def test_gml_run_fcos_and_atss(host, det_root, tmp_path, name, outputs):
    from gml_core._internal.components import build

    cfg = load_config(CONFIGS / f"{name}_r18_digits.toml", [*tiny(det_root), f'runtime.work_dir="{tmp_path}"'])
    model = build("model", cfg.algorithm.model, "algorithm.model", num_classes=10, in_channels=3)
    assert len(model(torch.rand(1, 3, 64, 64))) == outputs  # class scores, boxes, centerness
    result = run(cfg)
    assert "coco/bbox_mAP" in result.metrics and result.best_checkpoint.is_file()
