"""DMCP math against hand computations: width plans, Markov marginals, expected FLOPs, FLOPs loss."""

import math

import pytest
import torch
from prune_helpers import TwoConv, randomize_bn

from gml_core._internal.algorithms import BuildContext, DataInfo
from gml_core._internal.config import structure
from gml_core._internal.config.schema import TrainConfig
from gml_core._internal.errors import ConfigError
from gml_prune.config import DMCPConfig, DMCPMutatorConfig, WidthConfig
from gml_prune.dmcp import DMCPMutator, flops_loss, width_plan
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.masking import ChannelMasker

SHAPE = (1, 3, 4, 4)


def two_conv_mutator(target=0.5, **changes):
    model = randomize_bn(TwoConv()).eval()
    graph = analyze(model, SHAPE)
    cfg = DMCPMutatorConfig(width=WidthConfig(max=1.0, min=0.5, offset=0.25), target_flops=target, **changes)
    return model, graph, DMCPMutator(cfg, graph, FlopsModel(graph, model))


def hand_flops(ea, eb):
    """conv1 3->A, conv2 A->B (3x3 on 4x4, padding 1), fc B->2; 2 FLOPs per multiply-accumulate."""
    return 2 * 3 * ea * 9 * 16 + 2 * ea * eb * 9 * 16 + 2 * eb * 2


def test_width_plans():
    assert width_plan(64, 1.0, 0.1, 0.1) == width_plan(64, 1.0, 0.1, 0.1)
    p = width_plan(64, 1.0, 0.1, 0.1)
    assert (p.min_ch, p.step, p.steps, p.candidates()[-1]) == (10, 6, 9, 64)
    p = width_plan(8, 1.0, 0.1, 0.1)          # fewer channels than chunks: one channel per chunk
    assert (p.min_ch, p.step, p.steps) == (1, 1, 7)
    p = width_plan(100, 0.8, 0.2, 0.2)        # max width below 1: the top 20 channels are never used
    assert (p.max_ch, p.min_ch, p.step, p.steps) == (80, 20, 20, 3)
    # width.min is a lower bound met within one chunk, whatever the group size (16 channels: 2, not 7)
    for size in (16, 24, 32, 48, 64, 96, 128, 256, 512):
        p = width_plan(size, 1.0, 0.1, 0.1)
        lowest = -(-size // 10)
        assert lowest <= p.min_ch < lowest + p.step and p.candidates()[-1] == size, (size, p)
        assert p.steps >= 9 and p.step == max(1, (size - lowest) // 9)
    assert width_plan(16, 1.0, 0.1, 0.1).min_ch == 2 and width_plan(32, 1.0, 0.1, 0.1).min_ch == 5


def test_marginals_expected_channels_and_flops_by_hand():
    _, graph, mutator = two_conv_mutator()
    a, b = [g.index for g in graph.prunable]
    assert mutator.plans[a].candidates() == [4, 6, 8]
    with torch.no_grad():
        mutator.alphas[f"g{a}"].copy_(torch.tensor([0.0, math.log(3)]))        # p = 0.5, 0.75
        mutator.alphas[f"g{b}"].copy_(torch.tensor([math.log(9), -math.log(3)]))  # p = 0.9, 0.25
    assert torch.allclose(mutator.marginal(a), torch.tensor([0.5, 0.375]))
    assert torch.allclose(mutator.marginal(b), torch.tensor([0.9, 0.225]))
    ea, eb = 4 + 2 * (0.5 + 0.375), 4 + 2 * (0.9 + 0.225)
    assert float(mutator.expected_channels(a).detach()) == pytest.approx(ea)
    assert float(mutator.expected_channels(b).detach()) == pytest.approx(eb)
    assert float(mutator.expected_flops().detach()) == pytest.approx(hand_flops(ea, eb), rel=1e-6)
    assert mutator.flops.full == hand_flops(8, 8)
    scales = mutator.channel_scales()[a]
    assert torch.allclose(scales, torch.tensor([1, 1, 1, 1, 0.5, 0.5, 0.375, 0.375]))
    # the gradient flows to every architecture parameter
    mutator.expected_flops().backward()
    assert all(p.grad is not None and bool((p.grad > 0).all()) for p in mutator.alphas.values())


def test_bn_outputs_are_scaled_by_the_marginals():
    model, graph, mutator = two_conv_mutator()
    masker = ChannelMasker(model, graph)
    seen = {}
    model.bn1.register_forward_hook(lambda m, i, o: seen.__setitem__("bn1", o))
    x = torch.randn(2, *SHAPE[1:])
    with torch.no_grad():
        mutator.alphas[f"g{graph.prunable[0].index}"].fill_(0.3)
        model(x)
        plain = seen["bn1"]
        masker.set_soft(mutator.channel_scales())
        model(x)
    scale = mutator.channel_scales()[graph.prunable[0].index].view(1, -1, 1, 1)
    assert torch.allclose(seen["bn1"], plain * scale)


@pytest.mark.parametrize("target", [0.85, 0.4])
def test_flops_loss_moves_expected_flops_to_the_target(target):
    torch.manual_seed(0)
    _, _, mutator = two_conv_mutator(target)
    opt = torch.optim.Adam(mutator.parameters(), lr=0.5)
    start = float(mutator.expected_flops().detach()) / mutator.flops.full
    for _ in range(40):
        opt.zero_grad()
        flops_loss(mutator.expected_flops(), mutator.target, mutator.flops.full).backward()
        opt.step()
    end = float(mutator.expected_flops().detach()) / mutator.flops.full
    assert abs(end - target) < abs(start - target)
    assert 0.95 * target - 0.02 <= end <= target + 0.02


def test_flops_loss_values():
    full = 100.0
    assert float(flops_loss(torch.tensor(30.0), 50.0, full)) == pytest.approx(math.log(0.2))      # below the band
    assert float(flops_loss(torch.tensor(48.0), 50.0, full)) == 0.0                                # in [0.95t, t)
    assert float(flops_loss(torch.tensor(60.0), 50.0, full)) == pytest.approx(math.log(0.6 - 0.475))
    assert float(flops_loss(torch.tensor(60.0), 50.0, full, "l1")) == pytest.approx(0.1)
    assert float(flops_loss(torch.tensor(60.0), 50.0, full, "l2")) == pytest.approx(0.01)


def test_sampling_types():
    torch.manual_seed(0)
    _, graph, mutator = two_conv_mutator()
    a = graph.prunable[0].index
    assert mutator.sample("max", True) == {g.index: 8 for g in graph.prunable}
    assert mutator.sample("min", True) == {g.index: 4 for g in graph.prunable}
    with torch.no_grad():
        mutator.alphas[f"g{a}"].copy_(torch.tensor([1.0, -0.5]))
    draws = torch.tensor([mutator.sample("arch_random", True)[a] for _ in range(3000)], dtype=torch.float)
    marginal = mutator.marginal(a).detach()
    assert float((draws >= 6).float().mean()) == pytest.approx(float(marginal[0]), abs=0.04)
    assert float((draws >= 8).float().mean()) == pytest.approx(float(marginal[1]), abs=0.04)
    uniform = [mutator.sample("non_uni_random", True)[a] for _ in range(900)]
    assert {c: uniform.count(c) / 900 for c in (4, 6, 8)} == pytest.approx({4: 1 / 3, 6: 1 / 3, 8: 1 / 3}, abs=0.06)
    # scheduled_random: non-uniform with probability p, else from the chain (here p = 0: chain only)
    sched = torch.tensor([mutator.sample("scheduled_random", True, 0.0)[a] for _ in range(2000)], dtype=torch.float)
    assert float((sched >= 8).float().mean()) == pytest.approx(float(marginal[1]), abs=0.04)
    # before the architecture trains, chain-based types fall back to non-uniform sampling
    early = [mutator.sample("arch_random", False)[a] for _ in range(600)]
    assert early.count(8) / 600 == pytest.approx(1 / 3, abs=0.07)


def test_target_below_minimum_width_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        two_conv_mutator(0.2)
    assert str(err.value).startswith("algorithm.mutator.target_flops: ")
    assert "minimum width allows (width.min = 0.5)" in str(err.value)
    with pytest.raises(ConfigError, match="absolute|above the full model"):
        two_conv_mutator("1G")


def test_train_step_updates_weights_and_architecture():
    torch.manual_seed(0)
    from gml_prune.algorithms.dmcp import DMCP

    cfg = structure({"type": "DMCP", "model": {"type": "gml.SmallCNN", "width": 4}, "arch_start_training": 1,
                     "mutator": {"num_sample": 3, "arch_sample_type": ["max", "min", "arch_random"],
                                 "target_flops": 0.4}}, DMCPConfig, "algorithm")
    algo = DMCP(cfg, BuildContext(DataInfo(10, 1, (8, 8)), TrainConfig(lr=0.1)))
    wrapper = algo.build_optim_wrapper(algo.context.train)
    assert set(wrapper.keys()) == {"model", "architecture"}
    assert not ({id(p) for p in wrapper["model"].param_groups[0]["params"]}
                & {id(p) for p in algo.mutator.parameters()})
    data = (torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    weight = algo.model.head.fc.weight.detach().clone()
    alphas = torch.cat([p.detach().clone() for p in algo.mutator.parameters()])
    algo.before_train_iter(0, 0, 10)
    log = algo.train_step(data, wrapper)
    assert set(log) >= {"loss", "loss_0_max", "loss_1_min", "loss_2_arch_random"} and "arch_task" not in log
    assert torch.equal(torch.cat([p.detach() for p in algo.mutator.parameters()]), alphas)
    algo.before_train_iter(1, 0, 10)
    log = algo.train_step(data, wrapper)
    assert {"arch_task", "arch_flops", "expected_flops_ratio"} <= set(log)
    assert not torch.equal(torch.cat([p.detach() for p in algo.mutator.parameters()]), alphas)
    assert not torch.equal(algo.model.head.fc.weight, weight)
    assert algo.masker.counts() == algo.mutator.max_counts()     # back at full width for evaluation
