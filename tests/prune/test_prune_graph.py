"""Channel dependency groups match the coupling derived by hand from the architectures."""

import pytest
import torch
import torchvision
from prune_helpers import ConcatNet, WithDynamic
from torch import nn

from gml_core._internal.errors import ConfigError
from gml_core._internal.models.small_cnn import SmallCNN
from gml_prune.graph import analyze


def producers(graph, module):
    """The set of producing layers of the group whose producers include ``module``."""
    for g in graph.groups:
        if module in g.modules("out"):
            return set(g.modules("out")), g
    raise AssertionError(f"{module} produces no group")


def test_resnet18_residual_stages_are_coupled():
    model = torchvision.models.resnet18(num_classes=10)
    graph = analyze(model, (1, 3, 32, 32))
    stage1, g1 = producers(graph, "conv1")
    assert stage1 == {"conv1", "layer1.0.conv2", "layer1.1.conv2"}
    assert set(g1.modules("norm")) == {"bn1", "layer1.0.bn2", "layer1.1.bn2"}
    assert set(g1.modules("in")) == {"layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.downsample.0"}
    for s in (2, 3, 4):
        coupled, g = producers(graph, f"layer{s}.0.conv2")
        assert coupled == {f"layer{s}.0.conv2", f"layer{s}.0.downsample.0", f"layer{s}.1.conv2"}
        assert g.prunable and g.size == 64 * 2 ** (s - 1)
    for s in (1, 2, 3, 4):
        for b in (0, 1):
            inner, g = producers(graph, f"layer{s}.{b}.conv1")
            assert inner == {f"layer{s}.{b}.conv1"} and g.modules("in") == [f"layer{s}.{b}.conv2"]
    _, last = producers(graph, "layer4.1.conv2")
    assert "fc" in last.modules("in")
    _, head = producers(graph, "fc")
    assert not head.prunable and "output" in head.fixed_reason
    assert len(graph.prunable) == 4 + 8


def test_resnet50_bottleneck_stages():
    model = torchvision.models.resnet50(num_classes=10)
    graph = analyze(model, (1, 3, 32, 32))
    blocks = {1: 3, 2: 4, 3: 6, 4: 3}
    for s, n in blocks.items():
        coupled, _ = producers(graph, f"layer{s}.0.conv3")
        assert coupled == {f"layer{s}.0.downsample.0", *(f"layer{s}.{b}.conv3" for b in range(n))}
    stem, _ = producers(graph, "conv1")
    assert stem == {"conv1"}  # layer1.0 has a projection shortcut, so the stem is not tied to stage 1
    assert len(graph.prunable) == 1 + 4 + 2 * sum(blocks.values())


def test_mobilenet_v2_residuals_and_depthwise():
    model = torchvision.models.mobilenet_v2(num_classes=10)
    graph = analyze(model, (1, 3, 32, 32))
    # expected coupling, derived from torchvision's own use_res_connect flags
    expected, current = [], None
    for i, block in enumerate(model.features):
        if not hasattr(block, "use_res_connect"):
            continue
        project = f"features.{i}.conv.{len(block.conv) - 2}"
        if block.use_res_connect:
            current.add(project)
        else:
            current = {project}
            expected.append(current)
    for group in expected:
        coupled, _ = producers(graph, sorted(group)[0])
        assert coupled == group
    assert {"features.2.conv.2", "features.3.conv.2"} in [set(g.modules("out")) for g in graph.groups]
    # an expansion conv, its depthwise conv and both BNs form one group
    _, g = producers(graph, "features.2.conv.0.0")
    assert g.modules("dw") == ["features.2.conv.1.0"]
    assert set(g.modules("norm")) == {"features.2.conv.0.1", "features.2.conv.1.1"}
    assert g.modules("in") == ["features.2.conv.2"]


def test_mobilenet_v3_squeeze_excitation_joins_the_expansion_group():
    model = torchvision.models.mobilenet_v3_small(num_classes=10)
    graph = analyze(model, (1, 3, 32, 32))
    coupled, g = producers(graph, "features.4.block.0.0")
    assert coupled == {"features.4.block.0.0", "features.4.block.2.fc2"}
    assert g.modules("dw") == ["features.4.block.1.0"]
    assert set(g.modules("in")) == {"features.4.block.2.fc1", "features.4.block.3.0"}
    se, _ = producers(graph, "features.4.block.2.fc1")
    assert se == {"features.4.block.2.fc1"}


def test_smallcnn_chain_and_head():
    graph = analyze(SmallCNN(width=8), (1, 1, 8, 8))
    assert [g.modules("out") for g in graph.prunable] == [
        ["backbone.conv1"], ["backbone.layer1.0.conv"], ["backbone.layer2.0.conv"], ["backbone.layer3.0.conv"],
        ["backbone.layer4.0.conv"]]
    assert [g.size for g in graph.prunable] == [8, 8, 16, 32, 64]


def test_concatenation_offsets():
    graph = analyze(ConcatNet(), (1, 3, 4, 4))
    _, a = producers(graph, "a")
    _, b = producers(graph, "b")
    assert [(m.module, m.role, m.offset) for m in a.members if m.role != "out"] == [("bn", "norm", 0), ("conv", "in", 0)]
    assert [(m.module, m.role, m.offset) for m in b.members if m.role != "out"] == [("bn", "norm", 6), ("conv", "in", 6)]
    _, c = producers(graph, "conv")
    fc = [m for m in c.members if m.module == "fc"][0]
    assert (fc.role, fc.repeat) == ("in", 16)   # a spatial flatten: 16 features per channel


def test_shuffle_after_grouped_conv_maps_channels_by_the_permutation():
    class Shuffle(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 1)
            self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
            self.b = nn.Conv2d(8, 6, 1)
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            x = self.grouped(self.a(x))
            n, c, h, w = x.shape
            x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
            return self.fc(self.b(x).mean((2, 3)))

    graph = analyze(Shuffle(), (1, 3, 4, 4))
    _, a = producers(graph, "a")
    _, grouped = producers(graph, "grouped")
    _, b = producers(graph, "b")
    assert a.prunable and a.blocks == 2 and a.modules("gin") == ["grouped"]   # 2 conv groups of 4 inputs
    assert grouped.prunable and grouped.blocks == 2                            # the shuffle only permutes them
    (member,) = [m for m in grouped.members if m.module == "b"]
    inverse = torch.argsort(torch.channel_shuffle(torch.arange(8.).view(1, 8, 1, 1), 2).flatten())
    assert member.index == tuple(inverse.tolist())           # channel c of grouped sits at b's input inverse[c]
    assert b.prunable and [mv.kind for mv in graph.moves] == ["select"]


def test_untraceable_module_names_itself_and_can_be_excluded():
    with pytest.raises(ConfigError) as err:
        analyze(WithDynamic(), (1, 3, 4, 4))
    text = str(err.value)
    assert "cannot trace module 'body' (Dynamic)" in text and 'add "body" to algorithm.exclude' in text
    assert "Traceback" not in text and len(text.splitlines()) == 1
    graph = analyze(WithDynamic(), (1, 3, 4, 4), exclude=["body"])
    _, stem = producers(graph, "stem")
    _, mid = producers(graph, "mid")
    assert "excluded module body" in stem.fixed_reason and mid.prunable


def test_input_shape_the_model_cannot_take():
    with pytest.raises(ConfigError) as err:
        analyze(SmallCNN(width=4), (1, 3, 8, 8), shape_key="algorithm.mutator.input_shape")
    assert str(err.value).startswith("algorithm.mutator.input_shape: the model cannot take an input of shape [1, 3, 8, 8]")


def test_analysis_leaves_the_model_untouched():
    model = SmallCNN(width=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    analyze(model, (1, 1, 8, 8))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
