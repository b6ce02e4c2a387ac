"""The pure-torch fallbacks of mmcv's compiled ops against independent computations."""

import pytest
import torch
import torchvision

from gml_core.api import GmlUserError
from gml_mmdet import ops

ops.install()
from mmcv.ops import batched_nms, nms, roi_align, sigmoid_focal_loss  # noqa: E402


def _boxes(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    wh = torch.rand(n, 2, generator=g) * 30 + 2
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def test_stand_in_only_without_compiled_ops():
    assert ops.compiled_ops_present() is False
    import mmcv._ext as ext

    assert getattr(ext, "gml_fallback", False)


def test_nms_hand_case_and_torchvision():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # IoU(box0, box3) = 90/100 > 0.5 -> box0 suppressed by box3; IoU(box1, box3) = 72/(100+90-72) = 0.61
    dets, keep = nms(boxes, scores, 0.5)
    assert keep.tolist() == [3, 2]
    assert torch.allclose(dets[:, 4], torch.tensor([0.95, 0.7]))
    b, s = _boxes(200)
    _, keep = nms(b, s, 0.3)
    assert torch.equal(keep, torchvision.ops.nms(b, s, 0.3))


def test_batched_nms_keeps_classes_apart():
    b, s = _boxes(150, seed=1)
    idxs = torch.randint(0, 4, (150,), generator=torch.Generator().manual_seed(2))
    dets, keep = batched_nms(b, s, idxs, dict(type="nms", iou_threshold=0.4))
    ref = torchvision.ops.batched_nms(b, s, idxs, 0.4)
    assert sorted(keep.tolist()) == sorted(ref.tolist())
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10.]])
    _, keep = batched_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), dict(type="nms", iou_threshold=0.5))
    assert sorted(keep.tolist()) == [0, 1]  # same box, different classes: both kept


def test_roi_align_forward_hand_case_and_backward_gradcheck():
    # a linear ramp f(x, y) = x: aligned RoIAlign averages samples, giving the bin centres exactly
    feat = torch.arange(8.).repeat(8, 1).view(1, 1, 8, 8)
    rois = torch.tensor([[0, 1.0, 1.0, 5.0, 5.0]])
    out = roi_align(feat, rois, (2, 2), 1.0, 2, "avg", True)
    # aligned: continuous coordinate x - 0.5; bin centres at 2 and 4 -> values 1.5 and 3.5
    assert torch.allclose(out[0, 0], torch.tensor([[1.5, 3.5], [1.5, 3.5]]))
    x = torch.rand(2, 3, 9, 9, dtype=torch.double, requires_grad=True)
    r = torch.tensor([[0, 0.5, 1.0, 6.0, 7.5], [1, 2.0, 0.0, 8.0, 4.0]], dtype=torch.double)
    assert torch.autograd.gradcheck(lambda t: roi_align(t, r, (3, 3), 1.0, 2, "avg", True), (x,))
    ref = torchvision.ops.roi_align(x, r, (3, 3), 1.0, 2, True)
    assert torch.allclose(roi_align(x, r, (3, 3), 1.0, 2, "avg", True), ref)


def _focal_reference(logits, target, gamma, alpha):
    """Lin et al.: FL = -alpha_t (1 - p_t)^gamma log p_t with one-hot targets (background = num_classes)."""
    onehot = torch.nn.functional.one_hot(target, logits.size(1) + 1)[:, :-1].to(logits.dtype)
    p = logits.sigmoid()
    p_t = onehot * p + (1 - onehot) * (1 - p)
    a_t = onehot * alpha + (1 - onehot) * (1 - alpha)
    return -(a_t * (1 - p_t) ** gamma * p_t.log())


def test_sigmoid_focal_loss_forward_and_backward():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5, dtype=torch.double, generator=g, requires_grad=True)
    target = torch.randint(0, 6, (12,), generator=g)
    loss = sigmoid_focal_loss(logits, target, 2.0, 0.25, None, "none")
    assert torch.allclose(loss, _focal_reference(logits, target, 2.0, 0.25))
    assert torch.autograd.gradcheck(lambda t: sigmoid_focal_loss(t, target, 1.5, 0.3, None, "sum"), (logits,))
    weight = torch.rand(5, dtype=torch.double, generator=g)
    t2 = torch.randint(0, 5, (12,), generator=g)
    weighted = sigmoid_focal_loss(logits, t2, 2.0, 0.25, weight, "none")
    assert torch.allclose(weighted, _focal_reference(logits, t2, 2.0, 0.25) * weight[t2].view(-1, 1))
    assert torch.autograd.gradcheck(lambda t: sigmoid_focal_loss(t, t2, 2.0, 0.25, weight, "mean"), (logits,))


def test_op_without_fallback_names_op_and_model():
    from mmcv.ops import DeformConv2d

    conv = DeformConv2d(2, 2, 3, padding=1)
    with ops.building("mmdet.RetinaNet"), pytest.raises(GmlUserError, match="deform_conv_forward.*mmdet.RetinaNet"):
        conv(torch.rand(1, 2, 5, 5), torch.zeros(1, 18, 5, 5))
