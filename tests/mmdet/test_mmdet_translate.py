"""mmdet configs (``mmdet::`` bases, .py) translated into gml's tables and run."""

import textwrap

import pytest
from mmdet_helpers import CONFIGS, tiny

from gml_core._internal.config.loader import load_config
from gml_core.api import ConfigError
from gml_mmdet.digits_det import digits_detection
from gml_mmdet.translate import MMDetConfigWarning


def test_mmdet_base_config_with_gml_data(host, det_root, tmp_path):
    with pytest.warns(MMDetConfigWarning, match="param_scheduler"):
        cfg = load_config(CONFIGS / "retinanet_r18_fpn_digits.py", [*tiny(det_root), f'runtime.work_dir="{tmp_path}"'])
    model = cfg.algorithm.model
    assert model.type == "mmdet.RetinaNet"
    # from mmdet's own retinanet_r18_fpn_1x_coco.py, changed by the file's own model dict
    assert model.args["backbone"]["depth"] == 18 and model.args["backbone"]["base_channels"] == 16
    assert model.args["bbox_head"]["loss_cls"]["type"] == "FocalLoss" and model.args["neck"]["num_outs"] == 3
    assert cfg.train.optimizer == "AdamW" and cfg.train.lr == 0.002 and cfg.data.type == "mmdet.DigitsDetection"
    assert cfg.train.epochs == 1  # the override wins over train_cfg.max_epochs


def test_coco_dataset_by_path_from_an_mmdet_config(host, det_root, tmp_path):
    folder = digits_detection(det_root, num_train=16, num_val=8)
    path = tmp_path / "coco_cfg.py"
    path.write_text(textwrap.dedent(f"""
        _base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']
        model = dict(backbone=dict(init_cfg=None))
        pipe = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(96, 96), keep_ratio=True), dict(type='PackDetInputs')]
        train_dataloader = dict(batch_size=4, dataset=dict(data_root='{folder}', ann_file='train.json',
                                data_prefix=dict(img=''), pipeline=pipe,
                                metainfo=dict(classes=tuple(str(i) for i in range(10)))))
        val_dataloader = dict(dataset=dict(data_root='{folder}', ann_file='val.json', data_prefix=dict(img=''),
                              pipeline=pipe))
        """))
    with pytest.warns(MMDetConfigWarning):
        cfg = load_config(path, [])
    data = cfg.data
    assert data.type == "mmdet.CocoDataset"
    assert data.args["train_ann"] == "train.json" and data.args["val_ann"] == "val.json"
    assert data.args["image_size"] == 96 and data.args["mean"] == [123.675, 116.28, 103.53]
    assert data.args["to_rgb"] is True and cfg.train.batch_size == 4
    from gml_core._internal.components import build

    bundle = build("dataset", data, "data")
    image, target = bundle.train[0]
    assert image.shape == (3, 96, 96) and bundle.info.num_classes == 10
    # keep_ratio resize of a 64x64 canvas to 96: boxes scaled by 1.5, scale_factor says so
    assert target["scale_factor"].tolist() == [1.5, 1.5]


def test_unsupported_parts_are_named(host, tmp_path):
    path = tmp_path / "mask_rcnn.py"
    path.write_text("_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']\n")
    with pytest.raises(ConfigError, match="model.type.*'MaskRCNN' is not supported.*RetinaNet.*FasterRCNN"):
        load_config(path, [])
