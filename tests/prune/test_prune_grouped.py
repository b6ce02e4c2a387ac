"""Grouped convolutions: every conv group keeps the same number of input and output channels.

The independent check, as in ``test_prune_families``: channels whose producing weights are
zeroed by hand can be removed without changing the output, so a wrong column slice of a
grouped weight (another group's channels) shows up as a different output.
"""

import pytest
import torch
import torchvision
from prune_helpers import randomize_bn
from test_prune_families import randomize, zero_channels
from torch import nn

from gml_core.api import count_flops
from gml_prune.export import prefix_keep, prune_model
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.groups import block_prefix, block_topk
from gml_prune.masking import ChannelMasker
from gml_prune.oneshot import prune


class GroupedNet(nn.Module):
    """stem(3->8) BN ReLU, grouped(8->12, 4 groups) BN ReLU, + dense(8->12) (a residual sum), 1x1 (12->6), fc."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.grouped = nn.Conv2d(8, 12, 3, padding=1, groups=4, bias=False)
        self.bn2 = nn.BatchNorm2d(12)
        self.side = nn.Conv2d(8, 12, 1, groups=2)
        self.head = nn.Conv2d(12, 6, 1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        y = torch.relu(self.bn2(self.grouped(x)) + self.side(x))
        return self.fc(self.head(y).mean((2, 3)))


def test_block_helpers():
    assert block_prefix(12, 3, 6).tolist() == [0, 1, 4, 5, 8, 9]
    with pytest.raises(ValueError, match="multiple of 3"):
        block_prefix(12, 3, 5)
    keep = block_topk(torch.tensor([1., 5, 2, 9, 0, 3, 8, 7]), 4, blocks=2)
    assert keep.tolist() == [False, True, False, True, False, False, True, True]


def test_grouped_conv_groups_and_block_constraints():
    graph = analyze(GroupedNet(), (1, 3, 8, 8))
    stem = graph.group("stem")
    assert stem.prunable and stem.modules("gin") == ["grouped", "side"]
    assert stem.blocks == 4                          # lcm of 4 groups (grouped) and 2 groups (side)
    out = graph.group("grouped")                     # coupled with side's output by the sum
    assert out.prunable and set(out.modules("out")) == {"grouped", "side"} and out.blocks == 4
    assert out.modules("in") == ["head"]


@pytest.mark.parametrize("seed", [0, 1])
def test_zeroed_channels_of_grouped_convs_prune_exactly(seed):
    torch.manual_seed(seed)
    model = randomize(randomize_bn(GroupedNet(), seed))
    shape = (2, 3, 8, 8)
    graph = analyze(model, shape)
    keep = {g.index: block_topk(torch.rand(g.size), g.size // 2, g.blocks) for g in graph.prunable}
    zero_channels(model, graph, {gi: torch.nonzero(~k).flatten() for gi, k in keep.items()})
    small = prune_model(model, graph, {gi: torch.nonzero(k).flatten() for gi, k in keep.items()}).eval()
    assert (small.grouped.groups, small.grouped.in_channels, small.grouped.out_channels) == (4, 4, 4)
    assert small.grouped.weight.shape == (4, 1, 3, 3) and small.side.weight.shape == (4, 2, 1, 1)
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
    counts = {gi: int(k.sum()) for gi, k in keep.items()}
    assert count_flops(small, shape) == FlopsModel(graph, model)(counts)


def test_unequal_counts_per_conv_group_are_refused():
    model = GroupedNet()
    graph = analyze(model, (1, 3, 8, 8))
    with pytest.raises(ValueError, match="per group"):
        prune_model(model, graph, {graph.group("stem").index: torch.tensor([0, 1, 2, 4])})


def test_masked_blocks_equal_the_exported_model():
    model = randomize(randomize_bn(GroupedNet()))
    graph = analyze(model, (2, 3, 8, 8))
    counts = {g.index: g.size - g.blocks for g in graph.prunable}      # one channel less per conv group
    masker = ChannelMasker(model, graph)
    masker.set_counts(counts)
    with masker.paused():
        small = prune_model(model, graph, prefix_keep(counts, graph)).eval()
    assert prefix_keep(counts, graph)[graph.group("grouped").index].tolist() == [0, 1, 3, 4, 6, 7, 9, 10]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), small(x), atol=1e-5, rtol=1e-5)


# groups prunable before grouped-conv support: resnext50 5 of 39, regnet_x_400mf 5 of 51; ShuffleNet V2 before
# shuffles were followed: 18 of 55 (its stream fixed); now its stream channels are split into sub-groups
@pytest.mark.parametrize("name,prunable,total", [("resnext50_32x4d", 37, 39), ("regnet_x_400mf", 49, 51),
                                                 ("shufflenet_v2_x0_5", 80, 88)])
def test_torchvision_grouped_models_prune_exactly(name, prunable, total):
    torch.manual_seed(0)
    model = randomize(torchvision.models.get_model(name, weights=None, num_classes=5))
    shape = (1, 3, 32, 32)
    graph = analyze(model, shape)
    assert (len(graph.prunable), len([g for g in graph.groups if g.members])) == (prunable, total)
    keep = {g.index: block_topk(torch.rand(g.size), g.size // 2, g.blocks) for g in graph.prunable}
    zero_channels(model, graph, {gi: torch.nonzero(~k).flatten() for gi, k in keep.items()})
    small = prune_model(model, graph, {gi: torch.nonzero(k).flatten() for gi, k in keep.items()}).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-4, rtol=1e-4)
    counts = {gi: int(k.sum()) for gi, k in keep.items()}
    assert count_flops(small, shape) == FlopsModel(graph, model)(counts)
    assert count_flops(small, shape) < 0.5 * count_flops(model, shape)


def test_oneshot_prune_keeps_conv_groups_divisible():
    model = torchvision.models.regnet_y_400mf(weights=None, num_classes=5).eval()
    shape = (1, 3, 32, 32)
    small = prune(model, shape, 0.5)
    grouped = [(n, m) for n, m in small.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert grouped and all(m.in_channels % m.groups == 0 and m.out_channels % m.groups == 0 for _, m in grouped)
    assert all(m.groups == model.get_submodule(n).groups for n, m in grouped)
    assert count_flops(small, shape) <= 0.5 * count_flops(model, shape)
    assert sum(m.out_channels for _, m in grouped) < sum(model.get_submodule(n).out_channels for n, _ in grouped)
    exported = torch.export.export(small, (torch.randn(*shape),))
    x = torch.randn(*shape)
    torch.testing.assert_close(exported.module()(x), small(x))


def test_dmcp_widths_scale_one_block_to_every_conv_group():
    from gml_prune.config import DMCPMutatorConfig, WidthConfig
    from gml_prune.dmcp import DMCPMutator, width_plan

    model = randomize(randomize_bn(GroupedNet()))
    graph = analyze(model, (1, 3, 8, 8))
    cfg = DMCPMutatorConfig(width=WidthConfig(max=1.0, min=0.3, offset=0.3), target_flops=0.6)
    mutator = DMCPMutator(cfg, graph, FlopsModel(graph, model))
    g = graph.group("grouped")                               # 12 channels, 4 conv groups of 3
    plan, one = mutator.plans[g.index], width_plan(3, 1.0, 0.3, 0.3)
    assert (plan.min_ch, plan.step, plan.steps, plan.max_ch) == (4 * one.min_ch, 4 * one.step, one.steps, 12)
    for _ in range(5):
        assert all(n % graph.groups[gi].blocks == 0 for gi, n in mutator.chain_sample().items())
    with torch.no_grad():
        mutator.alphas[f"g{g.index}"].fill_(-2.0)
        scales = mutator.channel_scales()[g.index].view(4, 3)
    assert torch.equal(scales, scales[:1].expand(4, 3))      # the same width profile in every block
    assert scales[0, 0] == 1 and 0 < scales[0, -1] < scales[0, 1] < 1


@pytest.mark.parametrize("allocation", ["uniform", "global"])
@pytest.mark.parametrize("round_to", [1, 16])
def test_both_allocations_keep_equal_counts_per_conv_group(allocation, round_to):
    model = randomize(randomize_bn(GroupedNet()))
    shape = (1, 3, 8, 8)
    graph = analyze(model, shape)
    flops = FlopsModel(graph, model)
    small = prune(model, shape, 0.6, allocation=allocation, round_to=round_to).eval()
    assert small.grouped.groups == 4 and small.side.groups == 2
    for conv in (small.grouped, small.side):
        assert conv.in_channels % conv.groups == 0 and conv.out_channels % conv.groups == 0
    assert small.stem.out_channels % 4 == 0 and small.grouped.out_channels % 4 == 0
    assert count_flops(small, shape) <= 0.6 * flops.full
    with torch.no_grad():
        assert small(torch.randn(*shape)).shape == (1, 3)
