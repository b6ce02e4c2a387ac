"""Magnitude criteria against direct computations; allocation meets budgets; iterative schedule."""

import math

import pytest
import torch
import torchvision
from prune_helpers import assert_steps_nest

from gml_core._internal.algorithms import BuildContext, DataInfo
from gml_core._internal.config import structure
from gml_core._internal.errors import ConfigError
from gml_prune.config import MagnitudePruningConfig
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.importance import channel_scores, search_global, search_uniform, top_masks


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    graph = analyze(model, (1, 3, 32, 32))
    return model, graph, FlopsModel(graph, model)


def group_of(graph, module):
    return next(g for g in graph.groups if module in g.modules("out"))


def test_l1_l2_and_bn_scale_scores(resnet):
    model, graph, _ = resnet
    g = group_of(graph, "conv1")
    convs = [model.conv1, model.layer1[0].conv2, model.layer1[1].conv2]
    l1 = sum(c.weight.detach().abs().sum(dim=(1, 2, 3)) for c in convs)
    l2 = sum(c.weight.detach().pow(2).sum(dim=(1, 2, 3)).sqrt() for c in convs)
    gammas = sum(b.weight.detach().abs() for b in (model.bn1, model.layer1[0].bn2, model.layer1[1].bn2))
    assert torch.allclose(channel_scores(model, g, "l1"), l1)
    assert torch.allclose(channel_scores(model, g, "l2"), l2)
    assert torch.allclose(channel_scores(model, g, "bn_scale"), gammas)


def test_uniform_allocation_meets_the_flops_target(resnet):
    _, graph, flops = resnet
    target = 0.5 * flops.full
    counts = search_uniform(graph, lambda c: float(flops(c)), target, 0.1, 1)
    assert flops(counts) <= target and flops(counts) > 0.95 * target
    ratios = [counts[g.index] / g.size for g in graph.prunable]
    assert max(ratios) - min(ratios) < 0.02                     # the same fraction everywhere
    rounded = search_uniform(graph, lambda c: float(flops(c)), target, 0.1, 8)
    assert all(n % 8 == 0 for n in rounded.values()) and flops(rounded) <= target


def test_global_allocation_meets_the_target_and_keeps_the_minimum(resnet):
    model, graph, flops = resnet
    scores = {g.index: channel_scores(model, g, "l1") for g in graph.prunable}
    target = 0.4 * flops.full
    masks = search_global(graph, scores, lambda c: float(flops(c)), target, 0.25)
    counts = {gi: int(m.sum()) for gi, m in masks.items()}
    assert flops(counts) <= target and flops(counts) > 0.9 * target
    assert all(counts[g.index] >= math.ceil(0.25 * g.size) for g in graph.prunable)
    # within a group the kept channels are the highest-scoring ones
    for gi, m in masks.items():
        if 0 < int(m.sum()) < m.numel():
            assert scores[gi][m].min() >= scores[gi][~m].max()


def test_top_masks_only_keep_alive_channels():
    scores = {0: torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])}
    alive = {0: torch.tensor([False, True, True, True, True])}
    assert top_masks(scores, {0: 2}, alive)[0].tolist() == [False, True, True, False, False]


def build(**algorithm):
    from gml_prune.algorithms.magnitude import MagnitudePruning

    cfg = structure({"type": "MagnitudePruning", "model": {"type": "gml.SmallCNN", "width": 8}, **algorithm},
                    MagnitudePruningConfig, "algorithm")
    return MagnitudePruning(cfg, BuildContext(DataInfo(10, 1, (8, 8))))


def test_iterative_steps_follow_a_geometric_schedule():
    torch.manual_seed(0)
    algo = build(target_flops=0.3, steps=3, allocation="global")
    full = algo.flops.full
    assert [algo.step_target(k) / full for k in range(3)] == pytest.approx([0.3 ** (1 / 3), 0.3 ** (2 / 3), 0.3])
    assert_steps_nest(algo, 3)   # every step meets its target; pruned channels stay pruned
    assert int(algo.steps_done) == 3


def test_keep_ratio_mode():
    algo = build(keep_ratio=0.5, criterion="bn_scale")
    counts = algo.prune_step(0)
    assert counts == {g.index: g.size // 2 for g in algo.graph.prunable}


def test_config_errors():
    with pytest.raises(ConfigError, match="exactly one of target_flops"):
        build(target_flops=0.5, keep_ratio=0.5)
    with pytest.raises(ConfigError, match="exactly one of target_flops"):
        build()
    with pytest.raises(ConfigError, match=r"algorithm.target_flops: .*below .* min_keep = 0.5"):
        build(target_flops=0.1, min_keep=0.5)
    with pytest.raises(ConfigError, match="algorithm.target_flops: cannot read '12Q'"):
        build(target_flops="12Q")


def test_pruning_an_exported_model_again(tmp_path):
    from gml_core._internal.resources import count_params
    from gml_prune.export import build_pruned_model, prefix_keep, save_pruned

    first = build(keep_ratio=0.5)
    counts = {gi: 1 if i == 0 else n for i, (gi, n) in enumerate(first.prune_step(0).items())}
    first.masker.set_counts(counts)
    small = first.export_pruned(prefix_keep(counts))
    path = save_pruned(tmp_path / "pruned.pth", small, first.export_spec(counts))
    second = build(keep_ratio=0.5, model={"type": "gml.SmallCNN", "init_from": str(path)})
    assert len(second.graph.prunable) == len(first.graph.prunable) - 1   # the 1-channel group is now fixed
    second.prune_step(0)
    again = second.export_pruned(second.masker.keep_indices())
    spec = second.export_spec(second.masker.counts())
    assert spec["base"]["width"] == 8 and spec["channels"]["backbone.conv1"] == 1
    rebuilt = build_pruned_model(spec["base"], spec["channels"], spec["input_shape"])
    assert count_params(rebuilt) == count_params(again) < count_params(small)
