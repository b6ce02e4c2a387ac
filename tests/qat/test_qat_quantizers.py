"""Quantizer prepare/convert: stub placement, regions, custom qconfigs, fusion, BN/observer freezing."""

from __future__ import annotations

import pytest
import torch
from qat_helpers import FUSE_SMALLCNN
from torch import nn

from gml_core._internal.errors import ConfigError, GmlUserError
from gml_core._internal.models.small_cnn import SmallCNN
from gml_qat.quantizers.eager import DeQuantOut, QuantIn, TorchDefaultQuantizer
from gml_qat.quantizers.fx import FxQuantizer

X = (torch.randn(2, 1, 16, 16),)


def calibrated(quantizer, model=None):
    torch.manual_seed(0)
    prepared = quantizer.prepare(model or SmallCNN(width=4), X)
    for _ in range(3):
        prepared(torch.randn(16, 1, 16, 16))
    return prepared


def test_eager_places_stubs_at_input_and_after_output_layer_and_keeps_the_head_float():
    q = TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN)
    prepared = calibrated(q)
    assert isinstance(prepared.backbone.conv1, QuantIn) and isinstance(prepared.backbone.layer4, DeQuantOut)
    int8 = q.convert(prepared)
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d

    assert isinstance(int8.backbone.conv1.module, ConvReLU2d)
    assert isinstance(int8.backbone.layer2[0].conv, ConvReLU2d)
    assert type(int8.head.fc) is nn.Linear  # after output_layer: float
    assert int8.backbone.conv1.module.weight().dtype == torch.qint8
    out = int8(torch.randn(3, 1, 16, 16))
    assert out.dtype == torch.float32 and out.shape == (3, 10)


def test_eager_region_starting_later_leaves_the_stem_float():
    q = TorchDefaultQuantizer("x86", "backbone.layer2", "backbone.layer3", FUSE_SMALLCNN)
    int8 = q.convert(calibrated(q))
    from torch.ao.nn.intrinsic import ConvBnReLU2d as FloatConvBnReLU2d  # fused for QAT, but left float
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d

    assert type(int8.backbone.conv1) is FloatConvBnReLU2d
    assert type(int8.backbone.layer1[0].conv) is FloatConvBnReLU2d
    assert isinstance(int8.backbone.layer2.module[0].conv, ConvReLU2d)
    assert isinstance(int8.backbone.layer3.module[0].conv, ConvReLU2d)
    assert type(int8.backbone.layer4[0].conv) is FloatConvBnReLU2d
    assert int8(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_custom_qconfig_applies_to_the_named_subtree_only():
    custom = {"backbone.layer1": {"weight": {"qscheme": "per_tensor_symmetric", "bits": 4}},
              "backbone.layer3.0.conv": {"activation": {"observer": "MinMaxObserver"}}}
    q = TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN, custom)
    prepared = q.prepare(SmallCNN(width=4), X)
    wfq = prepared.backbone.layer1[0].conv.weight_fake_quant
    assert wfq.qscheme == torch.per_tensor_symmetric and (wfq.quant_min, wfq.quant_max) == (-8, 7)
    other = prepared.backbone.layer2[0].conv.weight_fake_quant
    assert other.qscheme == torch.per_channel_symmetric and (other.quant_min, other.quant_max) == (-128, 127)
    act = prepared.backbone.layer3[0].conv.activation_post_process.activation_post_process
    assert type(act).__name__ == "MinMaxObserver"
    int8 = q.convert(calibrated(q, SmallCNN(width=4)))  # still converts to int8 kernels
    assert int8(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_unfused_eager_model_still_converts():
    q = TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4")
    int8 = q.convert(calibrated(q))
    assert int8.backbone.layer1[0].conv.weight().dtype == torch.qint8


def test_fx_quantizes_everything_including_the_classifier_without_stubs():
    q = FxQuantizer("x86")
    int8 = q.convert(calibrated(q))
    from torch.ao.nn.quantized import Linear

    modules = dict(int8.named_modules())
    assert isinstance(modules["head.fc"], Linear)
    assert "quantize_per_tensor" in int8.code


def test_fx_output_layer_keeps_the_head_float():
    q = FxQuantizer("onednn", output_layer="backbone.layer4")
    int8 = q.convert(calibrated(q))
    assert type(dict(int8.named_modules())["head.fc"]) is nn.Linear


def test_fx_quantizes_resnet_residual_additions_that_eager_mode_cannot():
    import torchvision

    torch.manual_seed(0)
    x = (torch.randn(2, 3, 32, 32),)
    fx = FxQuantizer("fbgemm")
    prepared = fx.prepare(torchvision.models.resnet18(num_classes=10), x)
    prepared(torch.randn(4, 3, 32, 32))
    int8 = fx.convert(prepared)
    assert "quantized.add_relu" in int8.code or "quantized.add" in int8.code
    assert int8(x[0]).shape == (2, 10)
    eager = TorchDefaultQuantizer("fbgemm", "conv1", "layer4")
    with pytest.raises(GmlUserError, match="FxQuantizer"):
        eager.prepare(torchvision.models.resnet18(num_classes=10), x)


def test_prepare_leaves_the_float_model_untouched():
    model = SmallCNN(width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN).prepare(model, X)
    assert isinstance(model.backbone.bn1, nn.BatchNorm2d)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("make", [
    lambda: TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN),
    lambda: FxQuantizer("x86"),
])
def test_freezing_bn_and_observers(make):
    q = make()
    prepared = calibrated(q)
    bns = [m for m in prepared.modules() if isinstance(m, nn.BatchNorm2d)]
    fqs = [m for m in prepared.modules() if isinstance(m, torch.ao.quantization.FakeQuantizeBase)]
    q.freeze_bn(prepared)
    prepared.train()
    stats = [b.running_mean.clone() for b in bns]
    prepared(torch.randn(16, 1, 16, 16) * 5 + 3)
    assert all(torch.equal(s, b.running_mean) for s, b in zip(stats, bns))
    scales = [f.scale.clone() for f in fqs]
    prepared(torch.randn(16, 1, 16, 16) * 5)
    assert not all(torch.equal(s, f.scale) for s, f in zip(scales, fqs))  # observers still learning
    q.freeze_observers(prepared)
    scales = [f.scale.clone() for f in fqs]
    prepared(torch.randn(16, 1, 16, 16) * 50)
    assert all(torch.equal(s, f.scale) for s, f in zip(scales, fqs))


def test_observers_paused_restores_their_state():
    q = FxQuantizer("x86")
    prepared = calibrated(q)
    fqs = [m for m in prepared.modules() if isinstance(m, torch.ao.quantization.FakeQuantizeBase)]
    scales = [f.scale.clone() for f in fqs]
    with q.observers_paused(prepared):
        prepared(torch.randn(8, 1, 16, 16) * 100)
    assert all(torch.equal(s, f.scale) for s, f in zip(scales, fqs))
    assert all(int(f.observer_enabled) == 1 for f in fqs)


def problems(exc_info) -> dict[str, str]:
    return dict(exc_info.value.problems)


def test_unknown_layer_names_get_a_did_you_mean():
    q = TorchDefaultQuantizer("fbgemm", "backbone.conv", "backbone.layr4", {"backbone": [["conv1", "bn", "relu"]]},
                              {"backbone.layer9": {"weight": {"bits": 4}}})
    with pytest.raises(ConfigError) as exc:
        q.prepare(SmallCNN(width=4), X)
    found = problems(exc)
    assert "did you mean 'backbone.conv1'" in found["input_layer"]
    assert "did you mean 'backbone.layer4'" in found["output_layer"]
    assert "did you mean 'backbone.bn1'" in found['fuse_config["backbone"][0]']


def test_bad_custom_qconfig_name_is_reported():
    q = FxQuantizer("x86", custom_qconfig={"backbone.layer9": {"weight": {"bits": 4}}})
    with pytest.raises(ConfigError) as exc:
        q.prepare(SmallCNN(width=4), X)
    assert "did you mean 'backbone.layer" in problems(exc)['custom_qconfig["backbone.layer9"]']


def test_unfusable_pattern_names_the_pattern_and_the_supported_ones():
    q = TorchDefaultQuantizer("fbgemm", fuse_config={"backbone": [["conv1", "relu", "bn1"]],
                                                     "backbone.layer1.0": ["conv", "bn"]})
    with pytest.raises(ConfigError) as exc:
        q.prepare(SmallCNN(width=4), X)
    found = problems(exc)
    msg = found['fuse_config["backbone"][0]']
    assert "(Conv2d, ReLU, BatchNorm2d)" in msg and "(Conv2d, BatchNorm2d, ReLU)" in msg
    assert "list of module-name lists" in found['fuse_config["backbone.layer1.0"]']


def test_region_errors():
    with pytest.raises(ConfigError, match="must come after the input layer"):
        TorchDefaultQuantizer("fbgemm", "backbone.layer3", "backbone.layer1").prepare(SmallCNN(width=4), X)
    with pytest.raises(ConfigError, match="outside the quantized region"):
        FxQuantizer("x86", output_layer="backbone.layer4",
                    custom_qconfig={"head.fc": {"weight": {"bits": 4}}}).prepare(SmallCNN(width=4), X)


def test_unsupported_engine_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(type(torch.backends.quantized), "supported_engines", ["none", "x86"])
    with pytest.raises(GmlUserError, match="'qnnpack' is not supported by this torch.*x86"):
        TorchDefaultQuantizer("qnnpack").prepare(SmallCNN(width=4), X)


def test_spec_round_trips_through_the_registry():
    from gml_core._internal.components import build
    from gml_core._internal.config.converter import converter
    from gml_core._internal.config.spec import ComponentSpec

    q = TorchDefaultQuantizer("x86", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN,
                              {"backbone.layer1": {"weight": {"bits": 4}}})
    spec = q.spec()
    again = build("quantizer", converter.structure(spec, ComponentSpec), "quantizer")
    assert again.spec() == spec and isinstance(again, TorchDefaultQuantizer)


class TinyResidual(nn.Module):
    """conv-bn-relu, then a conv-bn branch added back (the residual pattern torch fuses per backend)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.relu(self.bn(self.conv(x)) + x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.parametrize("backend", ["fbgemm", "x86", "onednn", "qnnpack"])
def test_fx_residual_blocks_prepare_and_convert_on_every_engine(backend):
    q = FxQuantizer(backend)
    int8 = q.convert(calibrated(q, TinyResidual()))
    with torch.no_grad():
        assert int8(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    assert "quantized.add" in int8.code


def test_untraceable_model_points_to_the_eager_quantizer():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else self.conv(-x)

    with pytest.raises(GmlUserError, match="torch.fx cannot trace.*TorchDefaultQuantizer"):
        FxQuantizer("x86").prepare(Branchy(), X)


@pytest.mark.parametrize("make", [
    lambda: FxQuantizer("x86", custom_qconfig={"": {"weight": {"bits": 4}}}),
    lambda: FxQuantizer("fbgemm"),
    lambda: TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN,
                                  {"backbone": {"weight": {"bits": 4}}}),
])
def test_exported_int8_weights_are_exactly_the_trained_fake_quant_grid(make):
    """torch's fused fake-quant and FX lowering disagree with conversion for symmetric/narrow ranges;
    gml-qat's qconfigs and FX clamping make the int8 weights the fake-quantized ones, bit for bit."""
    q = make()
    prepared = calibrated(q)
    q.freeze_bn(prepared)
    q.freeze_observers(prepared)
    int8 = dict(q.convert(prepared).named_modules())
    checked = 0
    for name, module in prepared.named_modules():
        fq = getattr(module, "weight_fake_quant", None)
        if fq is None or not hasattr(module, "bn"):
            continue
        qweight = int8[name].weight()
        std = torch.sqrt(module.bn.running_var + module.bn.eps)
        folded = module.weight * (module.bn.weight / std).reshape(-1, 1, 1, 1)
        with torch.no_grad():
            assert torch.equal(fq(folded), qweight.dequantize().float()), name
        assert int(qweight.int_repr().min()) >= fq.quant_min and int(qweight.int_repr().max()) <= fq.quant_max
        checked += 1
    assert checked == 5


@pytest.mark.parametrize("make", [
    lambda: FxQuantizer("x86"),
    lambda: TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN),
])
def test_initialize_weight_ranges_touches_only_weight_quantizers(make):
    q = make()
    prepared = q.prepare(SmallCNN(width=4), X)
    before = {k: v.clone() for k, v in prepared.state_dict().items()}
    q.initialize_weight_ranges(prepared, X)
    after = prepared.state_dict()
    changed = {k for k in before if before[k].shape != after[k].shape or not torch.equal(before[k], after[k])}
    assert any("weight_fake_quant" in k for k in changed)
    # no activation range and no BN statistic moves (an unobserved fused quantizer may reset its default scale)
    data_state = [k for k in changed if "weight_fake_quant" not in k and not k.endswith((".scale", ".zero_point"))]
    assert not data_state, data_state
    assert prepared.training
    for module in prepared.modules():
        fq = getattr(module, "weight_fake_quant", None)
        if fq is not None:
            assert fq.scale.numel() == module.weight.shape[0]
