"""Faster R-CNN (RPN + RoI head with RoIAlign on the fallback op) in gml: losses, gradients, decoding, runs, KD."""

import copy
import json

import pytest
import torch
from mmdet_helpers import CONFIGS, tiny
from torch.utils.data import DataLoader

from gml_core._internal.algorithms.base import BuildContext
from gml_core._internal.components import build
from gml_core._internal.config.loader import load_config
from gml_core._internal.training.runner import run
from gml_core.api import GmlUserError

FRCNN = CONFIGS / "faster_rcnn_r18_digits.toml"


@pytest.fixture
def batch(host, det_root):
    cfg = load_config(FRCNN, tiny(det_root))
    bundle = build("dataset", cfg.data, "data")
    return next(iter(DataLoader(bundle.train, batch_size=4)))


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = load_config(FRCNN, [])
    return build("model", cfg.algorithm.model, "algorithm.model", num_classes=10, in_channels=3)


def test_outputs_losses_and_training_steps(host, batch):
    model = _model()
    images, targets = batch
    feats, rpn_cls, rpn_box = model(images)
    # FPN levels at strides 8/16/32 of a 64x64 canvas; 3 anchors per place (1 objectness logit, 4 deltas each)
    assert [f.shape[1:] for f in feats] == [(32, 8, 8), (32, 4, 4), (32, 2, 2)]
    assert [c.shape[1] for c in rpn_cls] == [3] * 3 and [b.shape[1] for b in rpn_box] == [12] * 3
    assert "head_out.0.2" in dict(model.named_modules())  # RPN objectness of level 2, for KD
    optim = torch.optim.AdamW(model.parameters(), lr=2e-3)
    totals = []
    for _ in range(6):
        torch.manual_seed(1)  # the same proposal sampling each step
        losses = model.task_losses(model(images), targets)
        assert {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "acc"} <= set(losses)
        total = sum(v for k, v in losses.items() if "loss" in k)
        assert torch.isfinite(total)
        totals.append(float(total.detach()))
        optim.zero_grad()
        total.backward()
        optim.step()
    assert totals[-1] < totals[0]


def test_roi_head_gradients_reach_fpn_through_fallback_roi_align(host, batch, monkeypatch):
    import mmcv._ext as ext

    assert getattr(ext, "gml_fallback", False)
    calls = []
    backward = ext.roi_align_backward
    monkeypatch.setattr(ext, "roi_align_backward", lambda *a, **k: (calls.append(1), backward(*a, **k))[1])
    model = _model()
    images, targets = batch

    def roi_grads():
        model.zero_grad()
        torch.manual_seed(2)
        losses = model.task_losses(model(images), targets)
        (losses["loss_cls"] + losses["loss_bbox"]).backward()  # proposals are detached: FPN grads come via RoIAlign
        return {n: p.grad.clone() for n, p in model.neck.named_parameters() if p.grad is not None}

    ours = roi_grads()
    assert calls and float(ours["fpn_convs.0.conv.weight"].abs().sum()) > 0
    assert model.rpn_head.rpn_conv.weight.grad is None or float(model.rpn_head.rpn_conv.weight.grad.abs().sum()) == 0
    # the same with torchvision's autograd-native roi_align (mmcv's use_torchvision switch) in place of mmcv's op
    for layer in model.roi_head.bbox_roi_extractor.roi_layers:
        layer.use_torchvision = True
    ref = roi_grads()
    assert set(ours) == set(ref)
    for name in ours:
        torch.testing.assert_close(ours[name], ref[name], rtol=1e-5, atol=1e-7)


def test_decode_gives_boxes_in_the_image(host, batch):
    model = _model().eval()
    images, targets = batch
    with torch.no_grad():
        preds = model.decode(model(images), targets)
    assert len(preds) == len(images)
    for pred in preds:
        n = len(pred.scores)
        assert 0 < n <= 20 and pred.bboxes.shape == (n, 4) and pred.labels.shape == (n,)
        assert pred.labels.min() >= 0 and pred.labels.max() < 10 and float(pred.scores.min()) >= 0.05
        assert float(pred.bboxes.min()) >= 0 and float(pred.bboxes.max()) <= 64
        assert bool((pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all())
        assert bool((pred.scores[:-1] >= pred.scores[1:]).all())  # sorted by score


@pytest.fixture(scope="module")
def trained(det_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("frcnn")
    cfg = load_config(FRCNN, [*tiny(det_root), f'runtime.work_dir="{work}"'])
    return cfg, run(cfg)


def _mmdet_vs_gml(export, model, bundle):
    """mmdet's inference on the first val PNG and gml's decode of the same image."""
    from mmdet.apis import inference_detector, init_detector

    mm = init_detector(str(export.config), str(export.weights), device="cpu")
    theirs = inference_detector(mm, bundle.val.dataset.get_data_info(0)["img_path"]).pred_instances
    image, target = bundle.val[0]
    with torch.no_grad():
        ours = model.eval().decode(model(image[None]), {k: v[None] for k, v in target.items()})[0]
    assert len(ours.scores) == len(theirs.scores) > 0
    torch.testing.assert_close(theirs.bboxes, ours.bboxes, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(theirs.scores, ours.scores, atol=1e-5, rtol=1e-4)


def test_gml_run_faster_rcnn_and_export_to_mmdet(host, det_root, trained, tmp_path):
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope

    from gml_mmdet.export import export_for_mmdet
    from gml_mmdet.models import CFG_ATTR
    from gml_mmdet.registries import models

    cfg, result = trained
    assert {"coco/bbox_mAP", "coco/bbox_mAP_50"} <= set(result.metrics) and result.best_checkpoint.is_file()
    summary = json.loads((result.work_dir / "summary.json").read_text())
    assert summary["metrics"]["coco/bbox_mAP"] == result.metrics["coco/bbox_mAP"]
    # the weights load into mmdet's own FasterRCNN built from the same config (strict)
    model = build("model", cfg.algorithm.model, "algorithm.model", num_classes=10, in_channels=3)
    with DefaultScope.overwrite_default_scope("mmdet"):
        plain = models().build(ConfigDict(copy.deepcopy(getattr(model, CFG_ATTR))))
    assert type(plain).__name__ == "FasterRCNN"
    state = torch.load(result.best_checkpoint, weights_only=False)["state_dict"]
    state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    plain.load_state_dict(state)
    model.load_state_dict(state)
    # exported as mmdet's own config + weights: mmdet's inference on the PNG = gml's decode of the same image
    export = export_for_mmdet(result.best_checkpoint, tmp_path / "mm", FRCNN, tuple(tiny(det_root)))
    assert export.model_type == "FasterRCNN" and export.max_abs_diff == 0.0
    _mmdet_vs_gml(export, model, build("dataset", cfg.data, "data"))


def test_prune_faster_rcnn_backbone_and_fpn_and_export(host, det_root, trained, tmp_path):
    pytest.importorskip("gml_prune")
    from gml_core._internal.config.spec import ComponentSpec
    from gml_mmdet.export import export_for_mmdet

    config = CONFIGS / "prune_faster_rcnn_r18_digits.toml"
    overrides = [*tiny(det_root), f'algorithm.model.init_from="{trained[1].best_checkpoint}"', "algorithm.steps=1",
                 f'runtime.work_dir="{tmp_path / "p"}"']
    result = run(load_config(config, overrides))
    assert "coco/bbox_mAP" in result.metrics and result.flops < trained[1].flops * 0.6
    ckpt = torch.load(result.work_dir / "pruned.pth", weights_only=True)
    channels, state = ckpt["model_spec"]["channels"], ckpt["state_dict"]
    assert any(k.startswith("backbone.") for k in channels) and "neck.lateral_convs.0.conv" in channels
    # laterals cut, FPN outputs whole (they feed the shared RPN conv), RoI head unchanged
    assert state["neck.fpn_convs.0.conv.weight"].shape[:2] == (32, channels["neck.lateral_convs.0.conv"]) \
        and channels["neck.lateral_convs.0.conv"] < 32
    assert state["roi_head.bbox_head.shared_fcs.0.weight"].shape == (128, 32 * 7 * 7)
    export = export_for_mmdet(result.work_dir / "pruned.pth", tmp_path / "mm", config, tuple(overrides))
    assert export.model_type.startswith("GmlDetector") and export.max_abs_diff < 1e-4
    cfg = load_config(config, overrides)
    spec = ckpt["model_spec"]
    model = build("model", ComponentSpec(spec["type"], {k: v for k, v in spec.items() if k != "type"}), "m")
    model.load_state_dict(state)
    _mmdet_vs_gml(export, model, build("dataset", cfg.data, "data"))


def test_kd_step_on_faster_rcnns(host, det_root, tmp_path):
    pytest.importorskip("gml_kd")
    from gml_core._internal.training.run_info import RunInfo

    teacher = "algorithm.distiller.distill_cfg.teacher[0]"
    cfg = load_config(CONFIGS / "kd_faster_rcnn_r18_digits.toml", [*tiny(det_root), f'{teacher}.ckpt_path=""'])
    bundle = build("dataset", cfg.data, "data")
    algo = host.hook.gml_build_algorithm(config=cfg.algorithm, context=BuildContext(bundle.info, cfg.train, tmp_path))
    teachers = list(algo.distiller.teachers)
    assert algo.model.backbone.depth == 18 and teachers[0].backbone.depth == 34
    loader = DataLoader(bundle.train, batch_size=8)
    run_info = RunInfo(tmp_path, loader, DataLoader(bundle.val, batch_size=8), bundle.info, cfg, max_iters=1,
                       iters_per_epoch=len(loader))
    wrapper = algo.build_optim_wrapper(cfg.train)
    before_s = {k: v.clone() for k, v in algo.model.state_dict().items() if v.is_floating_point()}
    before_t = {k: v.clone() for k, v in teachers[0].state_dict().items() if v.is_floating_point()}
    algo.train()
    algo.before_train(run_info)
    log = algo.train_step(next(iter(loader)), wrapper)
    assert {"loss_cls", "loss_pkd0", "loss_pkd2", "loss_rpn0", "loss_rpn2"} <= set(log)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    after_s, after_t = algo.model.state_dict(), teachers[0].state_dict()
    assert not torch.equal(before_s["roi_head.bbox_head.fc_cls.weight"], after_s["roi_head.bbox_head.fc_cls.weight"])
    assert all(torch.equal(v, after_t[k]) for k, v in before_t.items())  # the teacher is frozen
    # the student's label loss is its RPN + RoI-head loss (the RoI head's accuracy is not summed)
    images, targets = next(iter(loader))
    torch.manual_seed(3)
    own = algo.model.task_losses(algo.model(images), targets)
    torch.manual_seed(3)
    label = algo._label_loss(algo.model(images), targets)
    expected = own["loss_rpn_cls"] + own["loss_rpn_bbox"] + own["loss_cls"] + own["loss_bbox"]
    torch.testing.assert_close(label, expected)


def test_qat_refuses_two_stage_detectors(host, det_root, tmp_path):
    pytest.importorskip("gml_qat")
    cfg = load_config(FRCNN, [*tiny(det_root), 'algorithm.type="IAO"', 'algorithm.quantizer.type="FxQuantizer"'])
    bundle = build("dataset", cfg.data, "data")
    with pytest.raises(GmlUserError, match="^algorithm.type: IAO \\(quantization-aware training\\) does not "
                                           "support two-stage detectors \\(mmdet.FasterRCNN\\)"):
        host.hook.gml_build_algorithm(config=cfg.algorithm, context=BuildContext(bundle.info, cfg.train, tmp_path))


def test_missing_or_wrong_heads_are_named(host):
    from gml_core._internal.config.spec import ComponentSpec

    args = load_config(FRCNN, []).algorithm.model.args
    no_roi = {k: v for k, v in args.items() if k != "roi_head"}
    with pytest.raises(GmlUserError, match="model.roi_head: mmdet.FasterRCNN needs 'rpn_head' and 'roi_head'"):
        build("model", ComponentSpec("mmdet.FasterRCNN", no_roi), "m", num_classes=10)
    with pytest.raises(GmlUserError, match="model.bbox_head: mmdet.FasterRCNN has no 'bbox_head'"):
        build("model", ComponentSpec("mmdet.FasterRCNN", {**args, "bbox_head": {"type": "RetinaHead"}}), "m")


def test_mmdet_faster_rcnn_base_config_translates(host, tmp_path):
    from gml_mmdet.translate import MMDetConfigWarning

    path = tmp_path / "frcnn.py"
    path.write_text("_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']\n")
    with pytest.warns(MMDetConfigWarning):
        cfg = load_config(path, [])
    model = cfg.algorithm.model
    assert model.type == "mmdet.FasterRCNN" and model.args["roi_head"]["type"] == "StandardRoIHead"
    assert model.args["roi_head"]["bbox_roi_extractor"]["roi_layer"]["type"] == "RoIAlign"
    assert model.args["train_cfg"]["rpn_proposal"]["max_per_img"] == 1000
