"""Each slice op at a sub-configuration equals a plain torch op built with the sliced weights (float64)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gml_nas.ops.slice import BatchNorm2dSlice, Conv2dSlice, LinearSlice, ResizeSlice

TOL = 1e-6


def ref_conv(weight, bias, in_active, out_active, k, groups_max, groups_active, out_max, in_max):
    """Reference weights picked element by element: per group, first outputs / inputs, centre k x k."""
    kmax = weight.shape[-1]
    s = (kmax - k) // 2
    out_pg_max = out_max // groups_max
    if groups_active == in_active and groups_max == in_max:  # depthwise
        rows = list(range(out_active))
        w = torch.stack([weight[r, :, s:s + k, s:s + k] for r in rows])
        b = None if bias is None else torch.stack([bias[r] for r in rows])
        return w, b
    g = groups_active
    out_pg, in_pg = out_active // g, in_active // g
    rows = [grp * out_pg_max + r for grp in range(g) for r in range(out_pg)]
    w = torch.zeros(out_active, in_pg, k, k)
    for o, row in enumerate(rows):
        for i in range(in_pg):
            for a in range(k):
                for c in range(k):
                    w[o, i, a, c] = weight[row, i, s + a, s + c]
    b = None if bias is None else torch.tensor([bias[r].item() for r in rows])
    return w, b


@pytest.mark.parametrize("case", [
    dict(cin=8, cout=12, k=5, groups=1, stride=1, bias=False, a_in=5, a_out=7, a_k=3),
    dict(cin=8, cout=12, k=5, groups=1, stride=2, bias=True, a_in=8, a_out=12, a_k=1),
    dict(cin=8, cout=12, k=3, groups=2, stride=1, bias=True, a_in=4, a_out=6, a_k=3),
    dict(cin=12, cout=12, k=7, groups=12, stride=2, bias=False, a_in=6, a_out=6, a_k=5),
    dict(cin=12, cout=12, k=5, groups=12, stride=1, bias=True, a_in=12, a_out=12, a_k=3),
])
def test_conv2d_slice_matches_plain_conv(float64, case):
    torch.manual_seed(0)
    conv = Conv2dSlice(case["cin"], case["cout"], case["k"], case["stride"], groups=case["groups"],
                       bias=case["bias"])
    conv.set_active(case["a_in"], case["a_out"], case["a_k"])
    x = torch.randn(3, case["a_in"], 9, 9)
    depthwise = case["groups"] == case["cin"]
    g_active = case["a_in"] if depthwise else case["groups"]
    w, b = ref_conv(conv.weight.detach(), None if conv.bias is None else conv.bias.detach(), case["a_in"],
                    case["a_out"], case["a_k"], case["groups"], g_active, case["cout"], case["cin"])
    plain = nn.Conv2d(case["a_in"], case["a_out"], case["a_k"], case["stride"], case["a_k"] // 2,
                      groups=g_active, bias=case["bias"])
    with torch.no_grad():
        plain.weight.copy_(w)
        if b is not None:
            plain.bias.copy_(b)
    expected = plain(x)
    assert (conv(x) - expected).abs().max().item() < TOL
    exported = conv.export()
    assert type(exported) is nn.Conv2d
    assert (exported(x) - expected).abs().max().item() < TOL


def test_conv2d_slice_gradient_reaches_only_the_slice(float64):
    conv = Conv2dSlice(6, 8, 5)
    conv.set_active(4, 3, 3)
    conv(torch.randn(2, 4, 7, 7)).sum().backward()
    grad = conv.weight.grad
    assert grad[:3, :4, 1:4, 1:4].abs().sum() > 0
    mask = torch.ones_like(grad, dtype=torch.bool)
    mask[:3, :4, 1:4, 1:4] = False
    assert grad[mask].abs().max().item() == 0.0


def test_conv2d_slice_rejects_impossible_configs():
    conv = Conv2dSlice(8, 8, 5)
    with pytest.raises(ValueError, match="centre"):
        conv.set_active(8, 8, 4)
    with pytest.raises(ValueError, match="exceed"):
        conv.set_active(9, 8, 3)
    grouped = Conv2dSlice(8, 8, 3, groups=2)
    with pytest.raises(ValueError, match="divisible"):
        grouped.set_active(5, 8)


def test_linear_slice_matches_plain_linear(float64):
    torch.manual_seed(1)
    lin = LinearSlice(10, 5)
    lin.set_active(6, 3)
    x = torch.randn(4, 6)
    plain = nn.Linear(6, 3)
    with torch.no_grad():
        plain.weight.copy_(torch.tensor([[lin.weight[o, i].item() for i in range(6)] for o in range(3)]))
        plain.bias.copy_(torch.tensor([lin.bias[o].item() for o in range(3)]))
    assert (lin(x) - plain(x)).abs().max().item() < TOL
    assert (lin.export()(x) - plain(x)).abs().max().item() < TOL


def test_batchnorm_slice_training_and_eval_match_plain_bn(float64):
    torch.manual_seed(2)
    bn = BatchNorm2dSlice(8)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    plain = nn.BatchNorm2d(5)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(plain, name).copy_(torch.tensor([getattr(bn, name)[c].item() for c in range(5)]))
    untouched = (bn.running_mean[5:].clone(), bn.running_var[5:].clone())
    x = torch.randn(6, 5, 4, 4) * 2 + 1
    bn.train(), plain.train()
    assert (bn(x) - plain(x)).abs().max().item() < TOL
    assert (bn.running_mean[:5] - plain.running_mean).abs().max().item() < TOL
    assert (bn.running_var[:5] - plain.running_var).abs().max().item() < TOL
    assert torch.equal(bn.running_mean[5:], untouched[0]) and torch.equal(bn.running_var[5:], untouched[1])
    bn.eval(), plain.eval()
    assert (bn(x) - plain(x)).abs().max().item() < TOL
    bn.set_active(5)
    assert (bn.export()(x) - plain(x)).abs().max().item() < TOL


def test_batchnorm_slice_without_stat_updates(float64):
    bn = BatchNorm2dSlice(4)
    bn.update_stats = False
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    x = torch.randn(5, 4, 3, 3) * 3 + 2
    out = bn.train()(x)
    expected = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    assert (out - expected).abs().max().item() < TOL
    assert all(torch.equal(a, b) for a, b in zip(before, (bn.running_mean, bn.running_var, bn.num_batches_tracked)))


def test_resize_slice_matches_torch_upsample(float64):
    resize = ResizeSlice({"type": "Int", "lower": 8, "upper": 17, "step": 4})
    x = torch.randn(2, 3, 16, 16)
    assert resize.active_resolution == 16 and resize(x) is x
    resize.set_arch({"resolution": 12})
    expected = nn.Upsample(size=(12, 12), mode="bilinear", align_corners=False)(x)
    assert (resize(x) - expected).abs().max().item() < TOL
    assert (resize.export()(x) - expected).abs().max().item() < TOL
