"""The library call ``gml_prune.oneshot.prune``: reaches the target, rounds channels, never returns silently."""

import pytest
import torch
import torchvision
from torch import nn

from gml_core.api import ConfigError, count_flops
from gml_prune.graph import analyze
from gml_prune.importance import group_round
from gml_prune.oneshot import prune


def kept_channels(small: nn.Module) -> list[int]:
    return [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]


@pytest.mark.parametrize("allocation", ["uniform", "global"])
def test_resnet18_reaches_half_flops_with_multiples_of_round_to(allocation):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    shape = (1, 3, 32, 32)
    small = prune(model, shape, 0.5, allocation=allocation, round_to=16)
    ratio = count_flops(small, shape) / count_flops(model, shape)
    assert 0.4 < ratio <= 0.5
    channels = kept_channels(small)
    assert all(c % 16 == 0 for c in channels), channels          # every resnet18 group has >= 64 channels
    assert sum(channels) < sum(kept_channels(model))
    assert small(torch.randn(*shape)).shape == (1, 10)


def test_group_round_is_capped_for_small_groups_and_heads():
    graph = analyze(torchvision.models.mobilenet_v3_small(weights=None, num_classes=10), (1, 3, 32, 32))
    rounds = {g.size: group_round(g, 16) for g in graph.prunable}
    assert rounds[16] == 4 and rounds[72] == 16 and rounds[24] == 4    # at most a quarter of the group
    assert all(group_round(g, 1) == 1 for g in graph.prunable)


def test_a_model_without_prunable_groups_is_an_error():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm(6), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(ConfigError, match="model: Sequential has no prunable channel group"):
        prune(model, (1, 3, 8, 8), 0.5)


def test_an_unreachable_target_is_an_error_naming_the_key():
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    with pytest.raises(ConfigError, match=r"target_flops: .* is out of reach"):
        prune(model, (1, 3, 32, 32), 0.01, min_keep=0.5)
    with pytest.raises(ConfigError, match="allocation: 'best' is not one of"):
        prune(model, (1, 3, 32, 32), 0.5, allocation="best")
