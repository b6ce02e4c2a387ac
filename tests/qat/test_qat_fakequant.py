"""Fake quantization: scales, zero points, rounding and straight-through gradients by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gml_qat.qconfig import QConfigOverride, TensorQuantSpec, fake_quant_factory, make_qconfig

EPS = float(np.finfo(np.float32).eps)


def affine_qparams(xmin: float, xmax: float, qmin: int, qmax: int) -> tuple[float, int]:
    """Asymmetric (affine) quantization parameters: the range always includes zero."""
    lo, hi = min(xmin, 0.0), max(xmax, 0.0)
    scale = max((hi - lo) / (qmax - qmin), EPS)
    zero_point = int(np.clip(qmin - np.round(lo / scale), qmin, qmax))
    return scale, zero_point


def fake_quant(x: np.ndarray, scale, zero_point, qmin: int, qmax: int) -> np.ndarray:
    """Quantize (round half to even, clamp), then dequantize."""
    inv = (np.float32(1.0) / np.asarray(scale, dtype=np.float32)).astype(np.float32)
    q = np.clip(np.round(x.astype(np.float32) * inv) + zero_point, qmin, qmax)
    return ((q - zero_point) * np.asarray(scale, dtype=np.float32)).astype(np.float32)


def minmax_fake_quant(**kw):
    from torch.ao.quantization import FakeQuantize, MinMaxObserver

    return FakeQuantize(observer=MinMaxObserver, **kw)


def test_per_tensor_affine_scale_zero_point_and_half_to_even_rounding():
    fq = minmax_fake_quant(quant_min=0, quant_max=255, dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    scale = 2.0 ** -6  # chosen so that x / scale is exact and the .5 ties are real ties
    calib = torch.tensor([-2.0, 255 * scale - 2.0, 0.3])
    fq(calib)
    hand_scale, hand_zp = affine_qparams(-2.0, 255 * scale - 2.0, 0, 255)
    assert hand_scale == scale and hand_zp == 128
    assert float(fq.scale) == pytest.approx(hand_scale, rel=0, abs=0)
    assert int(fq.zero_point) == hand_zp
    fq.disable_observer()
    ties = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 126.5]) * scale  # round half to even: 0, 2, 2, -0, -2, 126
    expected = torch.tensor([0.0, 2.0, 2.0, 0.0, -2.0, 126.0]) * scale
    assert torch.equal(fq(ties), expected)
    outside = torch.tensor([5.0, -7.0])  # clamped to the integer range [0, 255]
    assert torch.equal(fq(outside), torch.tensor([(255 - 128) * scale, (0 - 128) * scale]))


def test_per_tensor_affine_random_data_matches_hand_computation():
    torch.manual_seed(0)
    fq = minmax_fake_quant(quant_min=0, quant_max=255, dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    x = torch.randn(1000) * 3 + 0.7
    out = fq(x)
    scale, zp = affine_qparams(float(x.min()), float(x.max()), 0, 255)
    assert float(fq.scale) == pytest.approx(scale, rel=1e-6)
    assert int(fq.zero_point) == zp
    np.testing.assert_allclose(out.numpy(), fake_quant(x.numpy(), scale, zp, 0, 255), rtol=0, atol=1e-6)
    assert len(torch.unique(out)) <= 256


def test_per_channel_symmetric_weights_match_hand_computation():
    from torch.ao.quantization import FakeQuantize, PerChannelMinMaxObserver

    torch.manual_seed(1)
    fq = FakeQuantize(observer=PerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
                      qscheme=torch.per_channel_symmetric, ch_axis=0)
    w = torch.randn(4, 3, 3, 3) * torch.tensor([0.1, 1.0, 3.0, 0.01]).view(4, 1, 1, 1)
    out = fq(w)
    amax = w.abs().flatten(1).max(1).values.numpy()
    scale = np.maximum(amax / ((127 - (-128)) / 2), EPS)  # symmetric: the zero point is 0
    np.testing.assert_allclose(fq.scale.numpy(), scale, rtol=1e-6)
    assert torch.all(fq.zero_point == 0)
    hand = fake_quant(w.numpy(), scale.reshape(4, 1, 1, 1), 0, -128, 127)
    np.testing.assert_allclose(out.detach().numpy(), hand, rtol=0, atol=1e-6)


def test_moving_average_observer_update_and_bit_range_from_custom_qconfig():
    default = make_qconfig("fbgemm", []).activation
    spec = TensorQuantSpec(observer="MovingAverageMinMaxObserver", bits=4, averaging_constant=0.5)
    fq = fake_quant_factory(default, spec, "activation")()
    assert (fq.quant_min, fq.quant_max) == (0, 15)  # 4 bits of quint8, reduce_range off for an explicit range
    fq(torch.tensor([-1.0, 2.0]))
    fq(torch.tensor([-3.0, 4.0]))
    lo, hi = -1.0 + 0.5 * (-3.0 + 1.0), 2.0 + 0.5 * (4.0 - 2.0)  # min/max move halfway to the new batch
    obs = fq.activation_post_process
    assert (float(obs.min_val), float(obs.max_val)) == (lo, hi)
    scale, zp = affine_qparams(lo, hi, 0, 15)
    assert float(fq.scale) == pytest.approx(scale, rel=1e-6) and int(fq.zero_point) == zp
    x = torch.linspace(-4, 5, 101)
    fq.disable_observer()
    np.testing.assert_allclose(fq(x).numpy(), fake_quant(x.numpy(), scale, zp, 0, 15), atol=1e-6)


def test_weight_override_keeps_unset_fields_of_the_backend_default():
    qconfig = make_qconfig("fbgemm", [QConfigOverride(weight=TensorQuantSpec(bits=4))])
    weight = qconfig.weight()
    assert (weight.quant_min, weight.quant_max) == (-8, 7)
    assert weight.qscheme == torch.per_channel_symmetric and weight.dtype == torch.qint8
    activation = qconfig.activation()
    assert (activation.quant_min, activation.quant_max) == (0, 127)  # fbgemm default: reduce_range
    per_tensor = make_qconfig("x86", [QConfigOverride(weight=TensorQuantSpec(qscheme="per_tensor_symmetric"))])
    assert type(per_tensor.weight().activation_post_process).__name__ == "MovingAverageMinMaxObserver"


@pytest.mark.parametrize("spec, message", [
    (dict(bits=9), "bits must be between 2 and 8"),
    (dict(observer="MinMaxObserver", qscheme="per_channel_symmetric"), "needs a per-channel observer"),
    (dict(quant_min=3), "go together"),
    (dict(bits=4, quant_min=0, quant_max=3), "either bits or quant_min"),
])
def test_invalid_tensor_specs_are_rejected(spec, message):
    with pytest.raises(ValueError, match=message):
        TensorQuantSpec(**spec)


def test_per_channel_activations_are_rejected():
    default = make_qconfig("x86", []).activation
    with pytest.raises(ValueError, match="per tensor"):
        fake_quant_factory(default, TensorQuantSpec(qscheme="per_channel_affine"), "activation")


def test_straight_through_gradient_is_one_inside_the_range_and_zero_outside():
    fq = minmax_fake_quant(quant_min=0, quant_max=255, dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    fq(torch.tensor([-1.0, 1.0]))
    fq.disable_observer()
    lo = (0 - int(fq.zero_point)) * float(fq.scale)
    hi = (255 - int(fq.zero_point)) * float(fq.scale)
    x = torch.tensor([-3.0, lo + 0.01, -0.3, 0.0, 0.77, hi - 0.01, 2.5], requires_grad=True)
    fq(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_gradients_reach_every_parameter_of_a_prepared_model():
    from qat_helpers import FUSE_SMALLCNN

    from gml_core._internal.models.small_cnn import SmallCNN
    from gml_qat.quantizers.eager import TorchDefaultQuantizer

    torch.manual_seed(0)
    quantizer = TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4", FUSE_SMALLCNN)
    model = quantizer.prepare(SmallCNN(width=4), (torch.randn(2, 1, 16, 16),))
    loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 16, 16)), torch.arange(8))
    loss.backward()
    params = dict(model.named_parameters())
    assert params, "the prepared model has parameters"
    missing = [n for n, p in params.items() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient through fake quantization for {missing}"
