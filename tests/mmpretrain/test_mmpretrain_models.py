"""mmpretrain models through gml: building, logits, module paths, errors."""

from __future__ import annotations

import pytest
import torch

from gml_core._internal.components import build
from gml_core._internal.config.spec import ComponentSpec
from gml_core._internal.errors import ConfigError, GmlUserError

RESNET18 = {
    "backbone": {"type": "ResNet_CIFAR", "depth": 18, "num_stages": 4, "out_indices": [3], "style": "pytorch"},
    "neck": {"type": "GlobalAveragePooling"},
    "head": {"type": "LinearClsHead", "num_classes": 1000, "in_channels": 512,
             "loss": {"type": "CrossEntropyLoss", "loss_weight": 1.0}},
}


def build_model(scope: str = "mmpretrain", num_classes: int = 10, in_channels: int = 3, **parts):
    args = {**RESNET18, **parts}
    return build("model", ComponentSpec(f"{scope}.ImageClassifier", args), "algorithm.model",
                 num_classes=num_classes, in_channels=in_channels)


def test_resnet18_image_classifier_matches_mmpretrain(host):
    model = build_model().eval()
    from mmpretrain.models import ImageClassifier
    from mmpretrain.registry import MODELS

    assert isinstance(model, ImageClassifier)
    assert model.head.fc.out_features == 10  # the data's num_classes replaces the head's 1000
    for path in ("backbone.layer1", "backbone.layer4.1.conv2", "neck", "head.fc"):
        model.get_submodule(path)  # addressable for KD hooks, pruning and QAT
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 10)
    # independent computation: mmpretrain's own classifier built from the same config, same weights
    reference = MODELS.build({"type": "ImageClassifier", **RESNET18,
                              "head": {**RESNET18["head"], "num_classes": 10}}).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x, mode="tensor"))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())


def test_mmcls_scope_is_an_alias(host):
    torch.manual_seed(0)
    a = build_model("mmcls")
    torch.manual_seed(0)
    b = build_model("mmpretrain")
    assert a.state_dict().keys() == b.state_dict().keys()
    for key, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[key])


def test_weights_are_initialised_once_and_kept(host):
    """mmpretrain's init_cfg runs at build time only, so mmengine's Runner keeps loaded weights."""
    model = build_model()
    assert model.is_init
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    model.init_weights()
    assert all(bool((p == 0.5).all()) for p in model.parameters())


def test_traceable_and_mmpretrain_modes_kept(host):
    from mmpretrain.structures import DataSample

    model = build_model().eval()
    x = torch.randn(2, 3, 32, 32)
    traced = torch.fx.symbolic_trace(model)  # pruning and FX quantization trace the model
    torch.testing.assert_close(traced(x), model(x))
    samples = [DataSample().set_gt_label(3), DataSample().set_gt_label(7)]
    losses = model.mm_forward(x, samples, mode="loss")
    assert set(losses) == {"loss"} and torch.isfinite(losses["loss"])
    preds = model.mm_forward(x, None, mode="predict")
    torch.testing.assert_close(torch.stack([p.pred_score for p in preds]), model(x).softmax(1))


def test_grayscale_digits_adapt_the_backbone(host):
    resnet = build_model(in_channels=1)
    assert resnet.backbone.conv1.in_channels == 1  # ResNet takes in_channels
    mobilenet = build("model", ComponentSpec("mmpretrain.ImageClassifier", {
        "backbone": {"type": "MobileNetV2", "widen_factor": 0.25},
        "neck": {"type": "GlobalAveragePooling"},
        "head": {"type": "LinearClsHead", "in_channels": 1280}}), "m", num_classes=10, in_channels=1)
    first = next(m for m in mobilenet.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1  # MobileNetV2 has no in_channels: its stem conv is replaced
    x = torch.randn(3, 1, 8, 8)
    assert resnet.eval()(x).shape == (3, 10) and mobilenet.eval()(x).shape == (3, 10)


def test_unknown_types_and_arguments_did_you_mean(host, tmp_path):
    from gml_core._internal.config.loader import load_config

    path = tmp_path / "bad.toml"
    path.write_text(
        '[data]\ntype = "mmpretrain.CIFAR1O"\n'
        '[algorithm]\ntype = "Supervised"\n'
        'model = {type = "mmcls.ImageClassifier", backbone = {type = "ResNt", depth = 18}, '
        'neck = {type = "GlobalAveragePooling"}, head = {type = "LinearClsHead", in_channel = 512}}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = dict(info.value.problems)
    assert "did you mean 'CIFAR10'?" in problems["data.type"]
    assert "unknown mmpretrain backbone 'ResNt' (did you mean 'ResNet'?)" in problems["algorithm.model.backbone"]
    assert "unknown argument 'in_channel' (did you mean 'in_channels'?)" in problems["algorithm.model.head"]
    with pytest.raises(GmlUserError, match=r"unknown mmpretrain model 'mmpretrain.ImageClasifier' "
                                           r"\(did you mean 'ImageClassifier'\?\)"):
        build("model", ComponentSpec("mmpretrain.ImageClasifier", RESNET18), "algorithm.model")
    with pytest.raises(GmlUserError, match="'mmpretrain.ResNet' is an mmpretrain backbone, not a classifier"):
        build("model", ComponentSpec("mmpretrain.ResNet", {"depth": 18}), "algorithm.model")
    with pytest.raises(GmlUserError, match=r"unknown mmpretrain transform 'RandomCrp' \(did you mean 'RandomCrop'"):
        build("dataset", ComponentSpec("mmpretrain.CIFAR10", {"pipeline": [{"type": "RandomCrp"}]}), "data")


def test_remote_weights_are_refused(host):
    with pytest.raises(GmlUserError, match="would be downloaded"):
        build_model(backbone={**RESNET18["backbone"], "init_cfg": {
            "type": "Pretrained", "checkpoint": "https://download.openmmlab.com/x.pth"}})


def test_mmpretrain_losses_as_gml_loss_components(host):
    loss = build("loss", ComponentSpec("mmcls.LabelSmoothLoss", {"label_smooth_val": 0.1, "mode": "original"}),
                 "loss")
    logits, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    expected = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(loss(logits, labels), expected)
    with pytest.raises(GmlUserError, match=r"unknown mmpretrain loss 'mmpretrain.CrossEntropyLos' "
                                           r"\(did you mean 'CrossEntropyLoss'\?\)"):
        build("loss", ComponentSpec("mmpretrain.CrossEntropyLos", {}), "loss")
