"""Searchable backbones: subnets run, export to plain modules with identical outputs, exact sizes, errors."""

import pytest
import torch
from nas_helpers import build_model, cat, classifier_spec, conv_params, has_slice_ops, mbv3_backbone, mbv3_params

from gml_core._internal.errors import ConfigError
from gml_nas.classifier import ImageClassifierSearch


def _subnets(space, n_random=2, seed=0):
    from gml_nas.mutator import StatelessMutator

    m = StatelessMutator(seed).prepare(space)
    return [space.max(), space.min(), *[m.random_subnet() for _ in range(n_random)]]


def _check_export(model: ImageClassifierSearch, subnet, x):
    model.set_subnet(subnet)
    model.eval()
    static = model.export().eval()
    assert not has_slice_ops(static)
    with torch.no_grad():
        diff = (static(x) - model(x)).abs().max().item()
    assert diff < 1e-9, diff
    return static


def test_mobilenet_v3_slice_subnets_export_exactly(float64):
    torch.manual_seed(0)
    spec = classifier_spec()
    model = build_model(spec)
    x = torch.randn(3, 1, 12, 12)
    for subnet in _subnets(model.space):
        static = _check_export(model, subnet, x)
        arch = model.space.resolve(subnet)["backbone"]
        expected = mbv3_params(arch, 1, 10, se=[False, True], expand_max=[2, 3])
        assert sum(p.numel() for p in static.parameters()) == expected


def test_mobilenet_v3_structure_follows_the_search_space():
    model = build_model(classifier_spec())
    bb = model.backbone
    assert [len(s) for s in bb.stages] == [2, 2]
    assert bb.stages[1][0].se is not None and bb.stages[0][0].se is None
    assert isinstance(bb.stages[1][0].depthwise.act, torch.nn.Hardswish)
    assert bb.stages[0][0].depthwise.conv.kernel_size == (5, 5)
    model.set_subnet(model.space.min())
    assert bb.feat_dim == 32 and model.head.fc.active_in == 32
    assert model(torch.randn(2, 1, 12, 12)).shape == (2, 10)


def test_resnet_slice_subnets_export_exactly(float64):
    torch.manual_seed(1)
    backbone = {"type": "gml.ResNetSlice", "depth": 18, "stem": "small",
                "search_space": {"stem_channels": cat([8, 16]), "stage_out_channels": [cat([8, 16]), cat([16, 32])],
                                 "stage_blocks": [cat([1, 2]), cat([1, 2])]},
                "strides": [1, 2]}
    model = build_model(classifier_spec(backbone, resolution=False))
    x = torch.randn(2, 1, 8, 8)
    for subnet in _subnets(model.space):
        static = _check_export(model, subnet, x)
        arch = model.space.resolve(subnet)["backbone"]
        stem, outs, blocks = arch["stem_channels"], arch["stage_out_channels"], arch["stage_blocks"]
        total = conv_params(1, stem, 3) + 2 * stem
        cin = stem
        for out, d in zip(outs, blocks):
            for j in range(d):
                c = cin if j == 0 else out
                total += conv_params(c, out, 3) + conv_params(out, out, 3) + 4 * out
                if j == 0:
                    total += conv_params(c, out, 1) + 2 * out
            cin = out
        total += cin * 10 + 10
        assert sum(p.numel() for p in static.parameters()) == total


def test_resnet_slice_bottleneck_matches_torchvision_size():
    import torchvision

    from gml_nas.backbones import ResNetSlice

    ours = sum(p.numel() for p in ResNetSlice(50).parameters())
    theirs = sum(p.numel() for n, p in torchvision.models.resnet50().named_parameters() if not n.startswith("fc."))
    assert ours == theirs


def test_shufflenet_oneshot_subnets_export_exactly(float64):
    torch.manual_seed(2)
    backbone = {"type": "gml.ShuffleNetV2_OneShot", "stage_blocks": [1, 2], "stage_out_channels": [16, 32],
                "stem_channels": 8, "last_channels": 32, "stem_stride": 1, "stem_pool": False}
    model = build_model(classifier_spec(backbone, resolution=False))
    assert len(model.space) == 3
    x = torch.randn(2, 1, 8, 8)
    for subnet in _subnets(model.space, 3):
        static = _check_export(model, subnet, x)
        bb = model.backbone
        chosen = sum(sum(p.numel() for p in b.candidates[b.active].parameters()) for b in bb.blocks)
        fixed = sum(p.numel() for m in (bb.stem, bb.last_conv, model.head) for p in m.parameters())
        assert sum(p.numel() for p in static.parameters()) == chosen + fixed


def test_shufflenet_candidates_have_spos_shapes():
    from gml_nas.backbones.shufflenet import make_candidate

    x = torch.randn(2, 16, 8, 8)
    for name in ("shuffle_3x3", "shuffle_5x5", "shuffle_7x7", "xception"):
        assert make_candidate(name, 16, 16, 1)(x).shape == (2, 16, 8, 8)
        assert make_candidate(name, 16, 48, 2)(x).shape == (2, 48, 4, 4)
    dw = [m for m in make_candidate("shuffle_7x7", 16, 16, 1).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.kernel_size[0] for m in dw] == [1, 7, 1]
    assert sum(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in make_candidate("xception", 16, 16, 1).modules()) == 3


def test_imagenet_sized_mobilenet_builds_with_bignas_like_flops():
    from gml_core._internal.resources import count_flops

    r = lambda lo, hi, st: {"type": "Int", "lower": lo, "upper": hi, "step": st}  # noqa: E731
    space = {
        "MB_stage_blocks": [1, cat([1, 2]), cat([2, 3]), cat([2, 3]), cat([2, 3, 4]), cat([2, 3, 4]), cat([2, 3, 4]), 1],
        "MB_kernel_size": [3, cat([3, 5]), cat([3, 5]), cat([3, 5]), cat([3, 5]), cat([3, 5]), cat([3, 5]), 1],
        "MB_expand_ratio": [1, 1, cat([4, 5, 6]), cat([4, 5, 6]), cat([4, 5, 6]), cat([4, 5, 6]), cat([6]), 6],
        "MB_out_channels": [r(16, 25, 8), r(16, 25, 8), r(24, 33, 8), r(32, 41, 8), r(64, 73, 8), r(112, 121, 8),
                            r(192, 201, 8), cat([1792, 1984])],
    }
    spec = classifier_spec({"type": "gml.MobileNetV3Slice", "search_space": space}, resolution=False,
                           num_classes=1000, in_channels=3)
    model = build_model(spec)
    model.set_subnet(model.space.min())
    flops = count_flops(model, (1, 3, 224, 224))
    assert 100e6 < flops < 600e6


@pytest.mark.parametrize("change, path, message", [
    (lambda s: s["search_space"].update(MB_kernel_sizes=[3]), "backbone.search_space.MB_kernel_sizes",
     "did you mean 'MB_kernel_size'"),
    (lambda s: s["search_space"]["MB_out_channels"].pop(), "backbone.search_space.MB_stage_blocks",
     "expected 3 entries"),
    (lambda s: s["search_space"]["MB_kernel_size"].__setitem__(1, cat([3, 4])),
     "backbone.search_space.MB_kernel_size[1]", "odd kernel"),
    (lambda s: s["search_space"]["MB_stage_blocks"].__setitem__(0, 2), "backbone.search_space.MB_stage_blocks[0]",
     "stem and the last conv"),
    (lambda s: s["search_space"]["MB_out_channels"].__setitem__(
        1, {"type": "Int", "lower": 16, "upper": 8}), "backbone.search_space.MB_out_channels[1].upper",
     "must be at least lower (16)"),
    (lambda s: s.pop("strides"), "backbone.strides", "required"),
    (lambda s: s.update(acts=["relu", "gelu"]), "backbone.acts", "unknown activation"),
    (lambda s: s.update(widht=3), "backbone.widht", "unknown argument"),
])
def test_bad_backbone_config_is_one_line_with_key_path(change, path, message):
    backbone = mbv3_backbone()
    change(backbone)
    with pytest.raises(ConfigError) as info:
        build_model(classifier_spec(backbone))
    assert any(p == path and message in m for p, m in info.value.problems), info.value.problems


def test_classifier_wiring_errors():
    spec = classifier_spec()
    spec["connect_head"] = {"in_channels": "backbone.feat_dimm"}
    with pytest.raises(ConfigError, match="did you mean 'feat_dim'"):
        build_model(spec)
    spec = classifier_spec()
    spec["head"]["in_channels"] = 1984
    with pytest.raises(ConfigError, match="head.in_channels: 1984 differs from backbone.feat_dim"):
        build_model(spec)
    spec = classifier_spec({"type": "gml.SmallCNN"})
    with pytest.raises(ConfigError, match="not a searchable backbone"):
        build_model(spec)


def test_random_subnets_cover_every_choice():
    from gml_nas.mutator import StatelessMutator

    model = build_model(classifier_spec())
    m = StatelessMutator(0).prepare(model.space)
    seen = {k: set() for k in model.space.keys()}
    for _ in range(200):
        for k, v in m.random_subnet().items():
            seen[k].add(v)
    assert all(seen[k] == set(item.choices()) for k, item in model.space.items.items())
