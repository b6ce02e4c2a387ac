"""Pruning through channel shuffles and channel slices (ShuffleNetV2's view-transpose-view, chunk, cat).

Independent checks: the permutation against torch's own ``channel_shuffle`` run on index tensors,
and the pruned model against the original whose dropped channels are zeroed by hand (their
producing weights, biases and norm scales) or masked, which must give the same output.
"""

import pytest
import torch
import torchvision
from test_prune_families import randomize, zero_channels
from torch import nn
from torchvision.models.shufflenetv2 import ShuffleNetV2, channel_shuffle

from gml_core.api import count_flops
from gml_prune.export import build_pruned_model, prune_model
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.masking import ChannelMasker
from gml_prune.oneshot import prune
from gml_prune.shuffle import axis_order, shuffle_order


def tiny_shufflenet():
    return ShuffleNetV2([2, 3, 2], [8, 16, 32, 64, 48], num_classes=5)


class OpShuffle(nn.Module):
    """torch.channel_shuffle and nn.ChannelShuffle (not the view-transpose-view idiom), a split and a cat."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 12, 3, padding=1)
        self.bn = nn.BatchNorm2d(12)
        self.shuffle = nn.ChannelShuffle(3)
        self.b = nn.Conv2d(8, 8, 1)
        self.bn2 = nn.BatchNorm2d(8)
        self.c = nn.Conv2d(12, 6, 1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        y = self.shuffle(torch.relu(self.bn(self.a(x))))
        keep, rest = torch.split(y, [4, 8], dim=1)
        y = torch.channel_shuffle(torch.cat([keep, torch.relu(self.bn2(self.b(rest)))], 1), 2)
        return self.fc(self.c(y).mean((2, 3)))


@pytest.mark.parametrize("channels,groups", [(12, 2), (12, 3), (24, 4), (10, 5), (7, 7)])
def test_shuffle_order_is_torchs_channel_shuffle_on_indices(channels, groups):
    index = torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1)
    assert shuffle_order(channels, groups).tolist() == torch.channel_shuffle(index, groups).flatten().long().tolist()
    assert shuffle_order(channels, groups).tolist() == channel_shuffle(index, groups).flatten().long().tolist()


def test_axis_order_of_three_factors():
    x = torch.arange(24).view(1, 24, 1)
    moved = x.view(1, 2, 3, 4, 1).permute(0, 3, 1, 2, 4).reshape(1, 24, 1)     # factors (2, 3, 4) -> (4, 2, 3)
    assert axis_order((2, 3, 4), (2, 0, 1)).tolist() == moved.flatten().tolist()


def test_moves_follow_torchs_shuffle_and_chunk():
    model = tiny_shufflenet().eval()
    graph = analyze(model, (1, 3, 32, 32))
    selects = [m for m in graph.moves if m.kind == "select"]
    splits = [m for m in graph.moves if m.kind == "split"]
    assert len(selects) == 7 and len(splits) == 4                  # a shuffle per unit, a chunk per stride-1 unit
    for mv in selects:
        order = shuffle_order(len(mv.inputs), 2).tolist()
        assert list(mv.outputs[0]) == [mv.inputs[i] for i in order]
    for mv in splits:
        half = len(mv.inputs) // 2
        assert [list(p) for p in mv.outputs] == [list(mv.inputs[:half]), list(mv.inputs[half:])]
    # every channel that goes through a shuffle stays in a prunable group, except lone channels
    fixed = [g for g in graph.groups if g.members and not g.prunable]
    assert all(g.size == 1 or g.key in ("fixed0", "fc") for g in fixed), graph.describe()


@pytest.mark.parametrize("build,size", [(tiny_shufflenet, 32), (OpShuffle, 8),
                                        (lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=10), 64)])
def test_pruned_shuffle_model_equals_the_zeroed_and_the_masked_model(build, size):
    torch.manual_seed(0)
    model = randomize(build())
    shape = (2, 3, size, size)
    graph = analyze(model, shape)
    assert graph.moves and len(graph.prunable) >= 4, graph.describe()
    gen = torch.Generator().manual_seed(3)
    keep = {}
    for g in graph.prunable:
        k = torch.nonzero(torch.rand(g.size, generator=gen) < 0.55).flatten()
        keep[g.index] = k if k.numel() else torch.tensor([g.size - 1])
    x = torch.randn(*shape)
    small = prune_model(model, graph, keep).eval()
    assert isinstance(small, torch.fx.GraphModule)
    assert any(n.startswith("gml_channel_order") for n, _ in small.named_buffers())
    masker = ChannelMasker(model, graph)
    masker.set_masks({gi: torch.zeros(graph.groups[gi].size).index_fill_(0, k, 1.0) for gi, k in keep.items()})
    with torch.no_grad():
        masked, out = model(x), small(x)
        masker.detach()
        assert not torch.allclose(model(x), out, atol=1e-3)         # pruning changed the output ...
    torch.testing.assert_close(out, masked, atol=1e-5, rtol=1e-5)  # ... exactly as masking does
    drop = {gi: torch.tensor(sorted(set(range(graph.groups[gi].size)) - set(k.tolist())), dtype=torch.long)
            for gi, k in keep.items()}
    zero_channels(model, graph, {gi: d for gi, d in drop.items() if d.numel()})
    with torch.no_grad():
        torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-5)
    counts = {gi: int(k.numel()) for gi, k in keep.items()}
    assert count_flops(small, shape) == FlopsModel(graph, model)(counts)


def test_shufflenet_coverage():
    graph = analyze(torchvision.models.shufflenet_v2_x1_0(), (1, 3, 64, 64))
    groups = [g for g in graph.groups if g.members]
    assert (len(graph.prunable), len(groups)) == (86, 92)
    assert {g.fixed_reason for g in groups if not g.prunable} == {"model input", "model output", "a single channel"}


def test_shufflenet_prunes_to_target_rebuilds_and_exports():
    spec = {"type": "torchvision.shufflenet_v2_x0_5", "num_classes": 10}
    model = randomize(torchvision.models.shufflenet_v2_x0_5(num_classes=10))
    shape = (1, 3, 64, 64)
    small = prune(model, shape, 0.5).eval()
    ratio = count_flops(small, shape) / count_flops(model, shape)
    assert 0.4 < ratio <= 0.5
    x = torch.randn(*shape)
    with torch.no_grad():
        ref = small(x)
        assert ref.shape == (1, 10)
        torch.testing.assert_close(torch.jit.trace(small, x)(x), ref)
    exported = torch.export.export(small, (x,))
    torch.testing.assert_close(exported.module()(x), ref)
    # the checkpoint path: the architecture from the spec (first-n channels), then the saved weights and orders
    graph = analyze(model, shape)
    gen = torch.Generator().manual_seed(5)
    keep = {g.index: torch.randperm(g.size, generator=gen)[: max(1, g.size // 2)].sort().values for g in graph.prunable}
    other = prune_model(model, graph, keep).eval()
    rebuilt = build_pruned_model(spec, {graph.groups[gi].key: len(k) for gi, k in keep.items()}, list(shape))
    rebuilt.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), other(x))


class Limits(nn.Module):
    """A residual sum of a tensor and its shuffle (fixed: channels would be coupled across positions) and a
    chunk / cat along the height (channels untouched: stays prunable)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.c = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.a(x)
        y = self.b(y + channel_shuffle(y, 2))
        top, bottom = torch.relu(self.bn(y)).chunk(2, dim=2)
        return self.fc(self.c(torch.cat([bottom, top], 2)).mean((2, 3)))


def test_limits_fix_what_is_not_a_pure_move_and_keep_other_axes():
    model = randomize(Limits())
    graph = analyze(model, (1, 3, 8, 8))
    a, b = graph.group("a"), graph.group("b")
    assert not a.prunable and "differently split channels" in a.fixed_reason
    assert b.prunable and graph.group("c").prunable and not any(m.kind == "split" for m in graph.moves)
    keep = {b.index: torch.tensor([0, 3, 5]), graph.group("c").index: torch.tensor([1, 2])}
    small = prune_model(model, graph, keep).eval()
    assert not isinstance(small, torch.fx.GraphModule)            # nothing moved was pruned: the class stays
    drop = {b.index: torch.tensor([1, 2, 4, 6, 7]), graph.group("c").index: torch.tensor([0, 3])}
    zero_channels(model, graph, drop)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
