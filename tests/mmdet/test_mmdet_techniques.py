"""Pruning a RetinaNet through backbone and FPN, QAT of backbone+FPN with a float head, and exports mmdet loads back."""

import json

import pytest
import torch
from mmdet_helpers import CONFIGS, tiny

from gml_core._internal.config.loader import load_config
from gml_core._internal.training.runner import run


def _mmdet_detections(export, image_path):
    from gml_mmdet.ops import install

    install()  # the ops fallback before mmdet.apis (which imports mmcv.ops)
    from mmdet.apis import inference_detector, init_detector

    model = init_detector(str(export.config), str(export.weights), device="cpu")
    return inference_detector(model, str(image_path)).pred_instances


def _gml_detections(model, bundle, index):
    image, target = bundle.val[index]
    batch = {k: v[None] for k, v in target.items()}
    with torch.no_grad():
        return model.eval().decode(model(image[None]), batch)[0]


@pytest.fixture(scope="module")
def trained(det_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("r18")
    cfg = load_config(CONFIGS / "retinanet_r18_digits.toml", [*tiny(det_root), "train.epochs=2",
                                                               f'runtime.work_dir="{work}"'])
    return run(cfg)


def test_prune_whole_detector_and_export_to_mmdet(host, det_root, trained, tmp_path):
    pytest.importorskip("gml_prune")
    from gml_mmdet.export import export_for_mmdet

    overrides = [*tiny(det_root), f'algorithm.model.init_from="{trained.best_checkpoint}"', "algorithm.steps=1",
                 f'runtime.work_dir="{tmp_path / "p"}"']
    result = run(load_config(CONFIGS / "prune_retinanet_r18_digits.toml", overrides))
    pruned = result.work_dir / "pruned.pth"
    assert pruned.is_file() and result.flops < trained.flops * 0.6
    ckpt = torch.load(pruned, weights_only=True)
    channels = ckpt["model_spec"]["channels"]
    # groups were cut in the backbone and through the FPN (the dense head is shared by the levels,
    # so gml-prune keeps its convolutions whole)
    assert any(k.startswith("backbone.") for k in channels) and any(k.startswith("neck.") for k in channels)
    assert ckpt["state_dict"]["neck.fpn_convs.0.conv.weight"].shape[1] < 32
    export = export_for_mmdet(pruned, tmp_path / "mm", CONFIGS / "prune_retinanet_r18_digits.toml", tuple(overrides))
    assert export.model_type.startswith("GmlDetector") and export.max_abs_diff < 1e-4
    # mmdet's own inference on the PNG file = gml's decode of the same image (64x64: no rescale)
    from gml_core._internal.components import build
    from gml_core._internal.config.spec import ComponentSpec

    cfg = load_config(CONFIGS / "prune_retinanet_r18_digits.toml", overrides)
    bundle = build("dataset", cfg.data, "data")
    spec = ckpt["model_spec"]
    model = build("model", ComponentSpec(spec["type"], {k: v for k, v in spec.items() if k != "type"}), "m")
    model.load_state_dict(ckpt["state_dict"])
    theirs = _mmdet_detections(export, bundle.val.dataset.get_data_info(0)["img_path"])
    ours = _gml_detections(model, bundle, 0)
    assert len(theirs.scores) == len(ours.scores)
    torch.testing.assert_close(theirs.bboxes, ours.bboxes, atol=1e-3, rtol=1e-4)


def test_native_export_of_a_trained_detector(host, det_root, trained, tmp_path):
    from gml_mmdet.export import export_for_mmdet

    export = export_for_mmdet(trained.best_checkpoint, tmp_path / "mm", CONFIGS / "retinanet_r18_digits.toml",
                              tuple(tiny(det_root)))
    assert export.model_type == "RetinaNet" and export.max_abs_diff == 0.0
    text = export.config.read_text()
    assert "GmlDetector" not in text and "'type': 'RetinaNet'" in text


def test_qat_backbone_and_neck_int8_head_float(host, det_root, trained, tmp_path):
    pytest.importorskip("gml_qat")
    overrides = [*tiny(det_root), f'algorithm.model.init_from="{trained.best_checkpoint}"', "train.epochs=2",
                 "algorithm.freeze_bn_after=1", "algorithm.freeze_observer_after=1", f'runtime.work_dir="{tmp_path}"']
    result = run(load_config(CONFIGS / "iao_retinanet_r18_digits.toml", overrides))
    assert "coco/bbox_mAP" in result.metrics
    report = json.loads((tmp_path / "qat_report.json").read_text())  # fp32 and int8 mAP through the same CocoMetric
    assert report["metric"] == "coco/bbox_mAP" and 0 <= report["int8"]["coco/bbox_mAP"] <= 1
    assert report["int8"]["tied_samples"] is None and "int8 coco/bbox_mAP" in result.extra
    int8 = torch.load(tmp_path / "model_int8.pth", weights_only=False)["state_dict"]
    assert int8["backbone.conv1.weight"].is_quantized and int8["neck.fpn_convs.2.conv.weight"].is_quantized
    assert not int8["bbox_head.retina_cls.weight"].is_quantized  # the head stays float
    scripted = torch.jit.load(str(tmp_path / "model_int8.ts"))
    from gml_core._internal.components import build

    bundle = build("dataset", load_config(CONFIGS / "iao_retinanet_r18_digits.toml", overrides).data, "data")
    image, _ = bundle.val[0]
    cls_scores, bbox_preds = scripted(image[None])
    assert [c.shape[-1] for c in cls_scores] == [8, 4, 2] and not cls_scores[0].is_quantized


def test_cli_export_and_bad_checkpoint(host, det_root, trained, tmp_path):
    from click.testing import CliRunner

    from gml_core._internal.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    args = ["mmdet", "export", str(trained.best_checkpoint), "-c", str(CONFIGS / "retinanet_r18_digits.toml"),
            "-o", str(tmp_path / "out")]
    for item in tiny(det_root):
        args += ["--cfg-options", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "model type:  RetinaNet" in result.output and "difference| = 0" in result.output
    assert (tmp_path / "out" / "config.py").is_file() and (tmp_path / "out" / "weights.pth").is_file()
    missing = CliRunner().invoke(cli, ["mmdet", "export", str(tmp_path / "nope.pth"), "-c",
                                       str(CONFIGS / "retinanet_r18_digits.toml"), "-o", str(tmp_path / "o2")])
    assert missing.exit_code == 2 and "nope.pth" in missing.output
