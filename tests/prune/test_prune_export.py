"""The exported model equals the masked model, has the exact expected size, and loads back."""

import pytest
import torch
import torchvision
from prune_helpers import ConcatNet, randomize_bn

from gml_core._internal.algorithms import BuildContext, DataInfo
from gml_core._internal.config.spec import ComponentSpec
from gml_core._internal.models.small_cnn import SmallCNN
from gml_core._internal.resources import count_flops, count_params
from gml_core.api import explicit_model_spec
from gml_prune.export import model_spec, prefix_keep, prune_model, save_pruned, save_torchscript
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.masking import ChannelMasker

CASES = {
    "smallcnn": (lambda: SmallCNN(width=8), (2, 1, 8, 8)),
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), (2, 3, 32, 32)),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=10), (2, 3, 32, 32)),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), (2, 3, 32, 32)),
    "concat": (ConcatNet, (2, 3, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_equals_masked_and_flops_model_is_exact(name):
    build, shape = CASES[name]
    torch.manual_seed(0)
    model = randomize_bn(build()).eval()
    graph = analyze(model, shape)
    flops = FlopsModel(graph, model)
    assert flops.other == 0 and flops.full == count_flops(model, shape)
    gen = torch.Generator().manual_seed(1)
    keep = {g.index: torch.randperm(g.size, generator=gen)[: max(1, g.size * 3 // 5)].sort().values
            for g in graph.prunable}
    masker = ChannelMasker(model, graph)
    masker.set_masks({gi: torch.zeros(graph.groups[gi].size).index_fill_(0, idx, 1.0) for gi, idx in keep.items()})
    x = torch.randn(*shape, generator=gen)
    with torch.no_grad():
        masked = model(x)
        with masker.paused():
            full = model(x)
            small = prune_model(model, graph, keep)
        out = small(x)
    assert torch.allclose(out, masked, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(full, masked, atol=1e-3)         # the masks really changed something
    assert count_flops(small, shape) == flops({gi: len(idx) for gi, idx in keep.items()})
    assert count_params(small) < count_params(model)
    assert type(small) is type(model)


def test_smallcnn_exact_parameter_count():
    model = SmallCNN(num_classes=10, in_channels=1, width=8)
    graph = analyze(model, (1, 1, 8, 8))
    c1, c2, c3, c4, c5 = 5, 3, 11, 20, 37
    small = prune_model(model, graph, prefix_keep(dict(zip([g.index for g in graph.prunable], [c1, c2, c3, c4, c5]))))
    conv_bn = lambda cin, cout: cin * cout * 9 + 2 * cout   # bias-free 3x3 conv + BN affine  # noqa: E731
    expected = conv_bn(1, c1) + conv_bn(c1, c2) + conv_bn(c2, c3) + conv_bn(c3, c4) + conv_bn(c4, c5) + c5 * 10 + 10
    assert count_params(small) == expected
    assert small.backbone.layer3[0].conv.weight.shape == (c4, c3, 3, 3)
    assert small.backbone.layer4[0].bn.running_mean.shape == (c5,) and small.head.fc.in_features == c5


def test_checkpoint_rebuilds_through_init_from(tmp_path):
    torch.manual_seed(0)
    model = randomize_bn(SmallCNN(width=8)).eval()
    graph = analyze(model, (1, 1, 8, 8))
    counts = {g.index: g.size // 2 for g in graph.prunable}
    small = prune_model(model, graph, prefix_keep(counts)).eval()
    spec = model_spec(explicit_model_spec(ComponentSpec("gml.SmallCNN", {"width": 8, "init_from": "x.pth"}), 10, 1).to_dict(),
                      graph, counts)
    assert spec["base"] == {"type": "gml.SmallCNN", "width": 8, "num_classes": 10, "in_channels": 1}
    path = save_pruned(tmp_path / "pruned.pth", small, spec)
    raw = torch.load(path, weights_only=True)                    # plain data + tensors only
    assert raw["model_spec"]["type"] == "gml.PrunedModel"
    context = BuildContext(DataInfo(10, 1, (8, 8)))
    # a later config may name any model type: the checkpoint's model_spec wins
    rebuilt = context.build_model(ComponentSpec("gml.SmallCNN", {"init_from": str(path)})).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), small(x))
    assert count_params(rebuilt) == count_params(small)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_export(tmp_path):
    model = torchvision.models.resnet18(num_classes=10).eval()
    graph = analyze(model, (1, 3, 32, 32))
    small = prune_model(model, graph, prefix_keep({g.index: g.size // 2 for g in graph.prunable}))
    path = save_torchscript(small, (1, 3, 32, 32), tmp_path / "m.pt")
    loaded = torch.jit.load(str(path))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), small(x), atol=1e-5)
    assert not list(tmp_path.glob(".m.pt*"))                    # no temporary file left behind


def test_wrong_channels_in_checkpoint_give_a_clear_error():
    from gml_core._internal.errors import GmlUserError
    from gml_prune.export import build_pruned_model

    with pytest.raises(GmlUserError, match="does not exist in gml.SmallCNN"):
        build_pruned_model({"type": "gml.SmallCNN", "width": 4}, {"nope": 2}, [1, 1, 8, 8])
    with pytest.raises(GmlUserError, match="cannot keep 9 of 4 channels"):
        build_pruned_model({"type": "gml.SmallCNN", "width": 4}, {"backbone.conv1": 9}, [1, 1, 8, 8])
