"""BigNAS sandwich step and SPOS step against independent loss / gradient computations."""

import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from nas_helpers import batches, classifier_spec
from nas_helpers import make_algorithm as make

from gml_core._internal.config import structure
from gml_core._internal.errors import ConfigError
from gml_nas.algorithms.bignas import BigNAS, BigNASConfig, sandwich_size
from gml_nas.algorithms.spos import SPOS, SPOSConfig


class CountingWrapper(OptimWrapper):
    """Records backward/step calls and the gradients seen by the single step."""

    def __init__(self, optimizer):
        super().__init__(optimizer)
        self.backwards, self.steps, self.grads = 0, 0, None

    def backward(self, loss, **kwargs):
        self.backwards += 1
        super().backward(loss, **kwargs)

    def step(self, **kwargs):
        self.steps += 1
        self.grads = {id(p): p.grad.clone() for g in self.optimizer.param_groups for p in g["params"]
                      if p.grad is not None}
        super().step(**kwargs)


def test_strategy_spellings():
    assert sandwich_size("sandwich4") == sandwich_size("sandwish4") == 4
    with pytest.raises(ConfigError, match="sandwichN"):
        sandwich_size("sandwitch4")


def test_sandwich_step_accumulates_once_with_inplace_distillation(float64):
    torch.manual_seed(0)
    algo = make(BigNAS, BigNASConfig, strategy="sandwish4")
    reference = copy.deepcopy(algo.model)
    plans = []
    original = algo.mutator.sandwich
    algo.mutator.sandwich = lambda n: plans.append(original(n)) or plans[-1]
    wrapper = CountingWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    x, y = batches(1)[0]
    log = algo.train_step((x, y), wrapper)
    assert (wrapper.backwards, wrapper.steps) == (4, 1)
    kinds = [k for k, _ in plans[0]]
    assert kinds == ["max", "random", "random", "min"]
    assert plans[0][0][1] == algo.model.space.max() and plans[0][-1][1] == algo.model.space.min()
    assert set(log) >= {"loss", "loss_max", "loss_random0", "loss_random1", "loss_min"}

    # independent computation: label-smoothed CE on the largest subnet, soft CE on the others
    reference.train()
    reference.set_subnet(plans[0][0][1])
    teacher = reference(x)
    losses = [F.cross_entropy(teacher, y, label_smoothing=0.1)]
    target = F.softmax(teacher.detach(), dim=1)
    for _, subnet in plans[0][1:]:
        reference.set_subnet(subnet)
        losses.append(-(target * F.log_softmax(reference(x), dim=1)).sum(1).mean())
    torch.stack(losses).sum().backward()
    assert abs(float(log["loss_max"]) - losses[0].item()) < 1e-10
    assert abs(float(log["loss_min"]) - losses[-1].item()) < 1e-10
    by_name = dict(algo.model.named_parameters())
    compared = 0
    for name, p in reference.named_parameters():
        got = wrapper.grads.get(id(by_name[name]))
        if p.grad is None:
            assert got is None or got.abs().max() == 0
            continue
        assert (got - p.grad).abs().max().item() < 1e-10, name
        compared += 1
    assert compared > 20


def test_regularisation_and_bn_updates_only_on_the_largest_subnet():
    torch.manual_seed(1)
    algo = make(BigNAS, BigNASConfig, drop_ratio=0.2, drop_path_ratio=0.3)
    seen = []
    head, bb = algo.model.head, algo.model.backbone
    bn = bb.stem.bn

    def record(module, inputs):
        deepest = bb.stages[-1][-1].drop_path
        seen.append((head.drop_ratio, deepest, bn.update_stats, int(bn.num_batches_tracked)))

    algo.model.register_forward_pre_hook(record)
    algo.train_step(batches(1)[0], OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.01)))
    assert seen[0][:3] == (0.2, pytest.approx(0.3), True)
    assert all(s[:3] == (0.0, 0.0, False) for s in seen[1:])
    assert int(bn.num_batches_tracked) == seen[0][3] + 1 and bn.update_stats


def test_spos_trains_one_uniform_path_per_step():
    torch.manual_seed(2)
    algo = make(SPOS, SPOSConfig)
    subnets = []
    algo.model.register_forward_pre_hook(lambda m, i: subnets.append(dict(m.subnet)))
    wrapper = CountingWrapper(torch.optim.SGD(algo.parameters(), lr=0.01))
    for x, y in batches(3):
        log = algo.train_step((x, y), wrapper)
    assert (wrapper.backwards, wrapper.steps, len(subnets)) == (3, 3, 3)
    assert len({tuple(sorted(s.items())) for s in subnets}) > 1
    assert set(log) == {"loss", "loss_cls"}


def test_one_shot_config_errors():
    with pytest.raises(ConfigError):
        structure({"type": "BigNAS", "model": classifier_spec(), "strategy": "sandwich1"}, BigNASConfig, "algorithm")
    with pytest.raises(ConfigError):
        structure({"type": "BigNAS", "model": classifier_spec(), "drop_ratio": 1.5}, BigNASConfig, "algorithm")
    with pytest.raises(ConfigError) as info:
        structure({"type": "BigNAS", "model": classifier_spec(), "mutatr": {}}, BigNASConfig, "algorithm")
    assert "did you mean 'mutator'" in str(info.value)
    with pytest.raises(ConfigError, match="algorithm.model.type"):
        make(BigNAS, BigNASConfig, model={"type": "gml.SmallCNN"})


def test_residual_branches_start_at_zero():
    algo = make(BigNAS, BigNASConfig)
    norms = algo.model.backbone.residual_branch_norms()
    assert len(norms) == 2 and all(torch.all(bn.weight == 0) for bn in norms)
    algo = make(BigNAS, BigNASConfig, zero_init_residual=False)
    assert all(torch.all(bn.weight == 1) for bn in algo.model.backbone.residual_branch_norms())


def test_distill_warmup_uses_labels_first_then_the_largest_subnet(float64):
    """Before ``distill_warmup * max_iters`` the smaller subnets learn from the labels, afterwards from the
    largest subnet's soft predictions (losses against an independent computation on a copy)."""
    torch.manual_seed(0)
    algo = make(BigNAS, BigNASConfig, distill_warmup=0.5)
    reference = copy.deepcopy(algo.model).train()
    x, y = batches(1)[0]
    for iteration, distilled in ((4, False), (5, True)):
        plans = []
        original = algo.mutator.sandwich
        algo.mutator.sandwich = lambda n: plans.append(original(n)) or plans[-1]
        algo.before_train_iter(iteration, 0, 10)
        losses = algo.loss(x, y)
        algo.mutator.sandwich = original
        reference.set_subnet(plans[0][0][1])
        target = F.softmax(reference(x).detach(), dim=1)
        reference.set_subnet(plans[0][-1][1])
        logits = reference(x)
        expected = (-(target * F.log_softmax(logits, dim=1)).sum(1).mean() if distilled
                    else F.cross_entropy(logits, y, label_smoothing=0.1))
        assert abs(losses["loss_min"].item() - expected.item()) < 1e-10


def test_no_weight_decay_on_norms_and_biases():
    """AdamW with zero gradients only decays: conv / linear weights shrink by lr * wd, BN and biases stay."""
    from gml_core._internal.config.schema import TrainConfig
    from gml_core._internal.training.optim import make_optimizer

    algo = make(BigNAS, BigNASConfig)
    groups = algo.optimizer_param_groups()
    assert sum(len(g["params"]) for g in groups) == len([p for p in algo.parameters() if p.requires_grad])
    before = {n: p.detach().clone() for n, p in algo.named_parameters()}
    opt = make_optimizer(groups, TrainConfig(optimizer="AdamW", lr=0.1, weight_decay=0.5))
    for p in algo.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    modules = dict(algo.named_modules())
    for name, p in algo.named_parameters():
        owner = modules[name.rsplit(".", 1)[0]]
        if isinstance(owner, torch.nn.modules.batchnorm._BatchNorm) or name.endswith("bias"):
            assert torch.equal(p, before[name]), name
        else:
            assert torch.allclose(p, before[name] * (1 - 0.1 * 0.5)), name
    plain = make(BigNAS, BigNASConfig, norm_bias_decay=True).optimizer_param_groups()
    assert all(isinstance(p, torch.nn.Parameter) for p in plain)
