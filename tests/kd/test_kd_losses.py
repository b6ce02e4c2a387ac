"""Each distillation loss against a hand computation on small tensors."""

import math

import pytest
import torch

from gml_kd.config import MealConfig
from gml_kd.losses import ABLoss, ATLoss, DistillKLDivLoss, FTLoss, MSELoss, SoftTargetCrossEntropy
from gml_kd.meal import MealLoss


def test_kd_two_class_by_hand_with_tau_squared():
    tau = 2.0
    # teacher logits give softmax(t / tau) = (0.75, 0.25); student gives (0.5, 0.5)
    teacher = torch.tensor([[tau * math.log(3.0), 0.0]])
    student = torch.zeros(1, 2)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kl == pytest.approx(0.130812, abs=1e-6)
    loss = DistillKLDivLoss(tau=tau)(student, teacher)
    assert loss.item() == pytest.approx(tau ** 2 * kl, rel=1e-6)
    # loss_weight scales, batchmean averages identical rows
    double = DistillKLDivLoss(tau=tau, loss_weight=0.5)(student.repeat(3, 1), teacher.repeat(3, 1))
    assert double.item() == pytest.approx(0.5 * tau ** 2 * kl, rel=1e-6)


def test_kd_tau_squared_keeps_gradients_comparable():
    """For large tau the soft-target gradient is (s - t) / (C tau^2); times tau^2 it stays O(1)."""
    torch.manual_seed(0)
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5)
    grads = []
    for tau in (10.0, 100.0):
        s.grad = None
        DistillKLDivLoss(tau=tau)(s, t).backward()
        grads.append(s.grad.clone())
    centred = lambda x: x - x.mean(dim=1, keepdim=True)  # noqa: E731
    expected = (centred(s.detach()) - centred(t)) / 5 / 4  # Hinton's high-temperature limit, batch mean
    assert torch.allclose(grads[1], expected, atol=1e-3)
    assert torch.allclose(grads[0], grads[1], atol=2e-2)


def test_kd_matches_independent_formula_on_random_logits():
    torch.manual_seed(1)
    s, t = torch.randn(3, 4), torch.randn(3, 4)
    tau = 3.0
    ps = torch.softmax(s / tau, 1)
    pt = torch.softmax(t / tau, 1)
    expected = (pt * (pt.log() - ps.log())).sum() / 3 * tau ** 2
    assert DistillKLDivLoss(tau=tau)(s, t).item() == pytest.approx(expected.item(), rel=1e-5)
    assert DistillKLDivLoss(tau=tau, reduction="sum")(s, t).item() == pytest.approx(3 * expected.item(), rel=1e-5)


def test_mse_hint_loss():
    s = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = torch.tensor([[0.0, 2.0], [3.0, 6.0]])
    assert MSELoss()(s, t).item() == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert MSELoss(reduction="batchmean", loss_weight=2.0)(s, t).item() == pytest.approx(2 * 5 / 2)


def test_fitnet_paper_term_is_half_the_per_sample_squared_norm():
    # Romero et al.: 1/2 ||u_h - r(v_g)||^2 per sample = MSELoss(reduction="batchmean", loss_weight=0.5)
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    paper = sum(0.5 * float(((s[i] - t[i]) ** 2).sum()) for i in range(3)) / 3
    assert MSELoss(reduction="batchmean", loss_weight=0.5)(s, t).item() == pytest.approx(paper, rel=1e-6)


def test_attention_transfer_by_hand():
    # student (1, 2, 1, 2): channels [1, 0] and [1, 2] -> mean_c F^2 = [1, 2] -> [1, 2] / sqrt(5)
    s = torch.tensor([[[[1.0, 0.0]], [[1.0, 2.0]]]])
    # teacher (1, 1, 1, 2): [2, 0] -> [4, 0] -> [1, 0]; channel counts may differ
    t = torch.tensor([[[[2.0, 0.0]]]])
    q = 1 / math.sqrt(5)
    mean_sq = ((q - 1) ** 2 + (2 * q) ** 2) / 2   # mean over batch and positions
    assert mean_sq == pytest.approx(0.552786, abs=1e-6)
    # the paper's beta / 2 factor: loss_weight is beta, so beta = 1000 gives 500 * mean_sq
    assert ATLoss()(s, t).item() == pytest.approx(mean_sq / 2, rel=1e-6)
    assert ATLoss(loss_weight=1000.0)(s, t).item() == pytest.approx(500 * mean_sq, rel=1e-6)
    with pytest.raises(ValueError, match="spatial"):
        ATLoss()(s, torch.zeros(1, 1, 2, 1))


@pytest.mark.parametrize("s, t, expected", [
    (2.0, 1.0, 0.0),      # teacher active, student beyond the margin: no loss
    (0.5, 1.0, 0.25),     # teacher active, student inside the margin: (1 - 0.5)^2
    (-1.0, 1.0, 4.0),     # teacher active, student inactive: (1 + 1)^2
    (-2.0, -1.0, 0.0),    # teacher inactive, student below -margin: no loss
    (-0.5, -1.0, 0.25),   # teacher inactive, student inside the margin: (1 - 0.5)^2
    (0.5, 0.0, 2.25),     # t == 0 counts as inactive: (1 + 0.5)^2
    (1.0, -3.0, 4.0),     # teacher inactive, student active: (1 + 1)^2
])
def test_ab_margin_cases(s, t, expected):
    loss = ABLoss(margin=1.0)(torch.tensor([[s]]), torch.tensor([[t]]))
    assert loss.item() == pytest.approx(expected)


def test_ab_sums_over_neurons_and_averages_over_batch():
    s = torch.tensor([[0.5, -2.0], [2.0, 0.0]])
    t = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    # per-sample sums: 0.25 + 0 and 0 + 1 -> mean 0.625; margin 0.5: (0) + (0) and 0 + 0.25 -> 0.125
    assert ABLoss(margin=1.0)(s, t).item() == pytest.approx(0.625)
    assert ABLoss(margin=0.5, loss_weight=2.0)(s, t).item() == pytest.approx(2 * 0.125)


def test_factor_transfer_l1_of_normalised_factors():
    s = torch.tensor([[3.0, 4.0]])    # -> [0.6, 0.8]
    t = torch.tensor([[5.0, 0.0]])    # -> [1, 0]
    assert FTLoss()(s, t).item() == pytest.approx(0.4 + 0.8)
    assert FTLoss(p=2.0)(s, t).item() == pytest.approx(math.sqrt(0.16 + 0.64))
    # flattened per sample: a (N, C, H, W) factor is one vector per sample
    s4, t4 = s.view(1, 2, 1, 1).repeat(2, 1, 1, 1), t.view(1, 2, 1, 1).repeat(2, 1, 1, 1)
    assert FTLoss()(s4, t4).item() == pytest.approx(1.2)


def test_soft_target_cross_entropy_has_the_kd_gradient():
    torch.manual_seed(2)
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4)
    SoftTargetCrossEntropy(tau=2.0)(s, t).backward()
    g1 = s.grad.clone()
    s.grad = None
    DistillKLDivLoss(tau=2.0)(s, t).backward()
    assert torch.allclose(g1, s.grad, atol=1e-6)


def test_meal_losses_split_gradients_between_players():
    torch.manual_seed(3)
    meal = MealLoss(MealConfig(temperature=1.0, adversarial_weight=1.0, discriminator_hidden=[8]), num_classes=4)
    s = torch.randn(5, 4, requires_grad=True)
    teachers = [torch.randn(5, 4), torch.randn(5, 4)]
    out = meal(s, teachers)
    # soft target: the average of the teachers' softmax, no labels
    target = (torch.softmax(teachers[0], 1) + torch.softmax(teachers[1], 1)) / 2
    kd = -(target * torch.log_softmax(s, 1)).sum(1).mean()
    assert out["loss_meal_kd"].item() == pytest.approx(kd.item(), rel=1e-6)
    d_params = list(meal.discriminator.parameters())
    # the discriminator's loss reaches only the discriminator
    grads = torch.autograd.grad(out["loss_meal_disc"], [s, *d_params], allow_unused=True)
    assert grads[0] is None and all(g is not None for g in grads[1:])
    # the generator's loss reaches only the student
    grads = torch.autograd.grad(out["loss_meal_gen"], [s, *d_params], allow_unused=True)
    assert grads[0] is not None and all(g is None for g in grads[1:])
    # and it is the discriminator's "real" verdict on the student's logits
    d_s = meal.discriminator(s)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(d_s, torch.ones_like(d_s))
    assert out["loss_meal_gen"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_ab_equals_the_authors_masked_form_with_their_layer_weights():
    # Heo et al.'s release writes the hinge with masks: (s + m)^2 where s > -m and t <= 0,
    # (s - m)^2 where s <= m and t > 0; summed, / batch, * 3 / 1000 * 2^(i - n + 1) per layer
    g = torch.Generator().manual_seed(3)
    feats = [(torch.randn(4, 3, 5, 5, generator=g) * 2, torch.randn(4, 3, 5, 5, generator=g)) for _ in range(3)]
    m, n = 1.0, len(feats)
    ref, ours = 0.0, 0.0
    for i, (s, t) in enumerate(feats):
        masked = ((s + m) ** 2 * ((s > -m) & (t <= 0)).float() + (s - m) ** 2 * ((s <= m) & (t > 0)).float())
        w = 3 / 1000 * 2 ** (i - n + 1)
        ref += w * float(masked.sum()) / s.shape[0]
        ours += float(ABLoss(margin=m, loss_weight=w)(s, t))
    assert ours == pytest.approx(ref, rel=1e-6)


def test_attention_transfer_equals_the_release_formula_across_channel_counts():
    # the authors' release: at(x) = normalize(x.pow(2).mean(1).view(n, -1)); loss = beta/2 * mean((at_s - at_t)^2)
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(3, 4, 6, 6, generator=g), torch.randn(3, 16, 6, 6, generator=g)

    def at(x):
        a = x.pow(2).mean(1).view(x.shape[0], -1)
        return a / a.norm(dim=1, keepdim=True)

    beta = 1000 * 36 / 1024
    assert ATLoss(loss_weight=beta)(s, t).item() == pytest.approx(beta / 2 * float((at(s) - at(t)).pow(2).mean()),
                                                                rel=1e-6)


def test_factor_transfer_loss_is_scale_free():
    # the factors are L2-normalised: scaling either factor does not change the loss
    g = torch.Generator().manual_seed(5)
    s, t = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g)
    assert FTLoss()(3.0 * s, 0.5 * t).item() == pytest.approx(FTLoss()(s, t).item(), rel=1e-6)
    f_s = s / s.norm(dim=1, keepdim=True)
    f_t = t / t.norm(dim=1, keepdim=True)
    assert FTLoss()(s, t).item() == pytest.approx(float((f_s - f_t).abs().sum(1).mean()), rel=1e-6)
