"""Every model family prunes to a smaller, exact model: ViT / Swin attention and MLPs, ConvNeXt, CNNs.

The independent check: channels whose contribution is zeroed by hand (their producing
weights, biases and norm scales set to 0; an attention head's q, k, v rows) can be
removed without changing the output at all, so ``prune(zeroed)(x) == zeroed(x)``.
"""

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

from gml_core.api import count_flops
from gml_prune.attention import PrunedMultiheadAttention
from gml_prune.export import build_pruned_model, prune_model
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.groups import DW, HEADS, NORM, OUT
from gml_prune.masking import ChannelMasker
from gml_prune.swin import PrunedShiftedWindowAttention


def tiny_vit():
    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64,
                             num_classes=5)


def tiny_convnext():
    return ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 1)], num_classes=5)


def tiny_swin():
    return SwinTransformer([4, 4], 16, [2, 2], [2, 4], [4, 4], num_classes=5)


FAMILIES = {
    "vit": tiny_vit,
    "convnext": tiny_convnext,
    "swin": tiny_swin,
    "resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=5),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(weights=None, num_classes=5),
}


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights, norm statistics and affine parameters, so a wrong slice shows in the output."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) and m.weight is not None:
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
        if isinstance(m, nn.Linear):                      # torchvision zero-initialises some heads
            nn.init.normal_(m.weight, std=m.in_features ** -0.5, generator=gen)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.5, 0.5, generator=gen)
    return model.eval()


@torch.no_grad()
def zero_channels(model: nn.Module, graph, drop: dict) -> None:
    """Set to zero everything that produces the channels ``drop[group]`` (by hand, not via gml's masks)."""
    for gi, idx in drop.items():
        group = graph.groups[gi]
        for m in group.members:
            module = model.get_submodule(m.module)
            where = torch.tensor(m.index) if m.index else torch.arange(m.offset, m.offset + group.size)
            rows = where[torch.as_tensor(idx)]                # scattered positions where a shuffle moved them
            if m.role == HEADS:                           # q, k, v of a head -> 0: its output is 0
                w, b = (module.qkv.weight, module.qkv.bias) if hasattr(module, "qkv") else \
                    (module.in_proj_weight, module.in_proj_bias)
                d, inner = m.repeat, w.shape[0] // 3
                feats = torch.cat([torch.arange(h * d, (h + 1) * d) for h in idx.tolist()])
                for part in range(3):
                    w[part * inner + feats] = 0
                    b[part * inner + feats] = 0
            elif m.role in (OUT, DW, NORM):
                module.weight[rows] = 0
                if module.bias is not None:
                    module.bias[rows] = 0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_pruning_zeroed_channels_keeps_the_output(family):
    torch.manual_seed(0)
    model = randomize(FAMILIES[family]())
    shape = (2, 3, 32, 32)
    graph = analyze(model, shape)
    assert graph.prunable, graph.describe()
    drop = {g.index: torch.arange(1, g.size, 2) for g in graph.prunable}
    keep = {g.index: torch.arange(0, g.size, 2) for g in graph.prunable}
    zero_channels(model, graph, drop)
    x = torch.randn(*shape)
    small = prune_model(model, graph, keep).eval()
    with torch.no_grad():
        ref, out = model(x), small(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    counts = {gi: len(k) for gi, k in keep.items()}
    assert count_flops(small, shape) == FlopsModel(graph, model)(counts)
    assert count_flops(small, shape) < 0.8 * count_flops(model, shape)


def test_vit_heads_and_mlp_are_groups_with_smaller_shapes():
    model = randomize(tiny_vit())
    graph = analyze(model, (1, 3, 32, 32))
    keys = {g.key: g.size for g in graph.prunable}
    for i in range(2):
        assert keys[f"encoder.layers.encoder_layer_{i}.self_attention"] == 4
        assert keys[f"encoder.layers.encoder_layer_{i}.mlp.0"] == 64
    assert len(keys) == 4                                 # the residual stream goes through LayerNorms
    residual = next(g for g in graph.groups if "conv_proj" in g.modules("out"))
    assert not residual.prunable
    small = prune_model(model, graph, {g.index: torch.arange(g.size // 2) for g in graph.prunable})
    attn = small.encoder.layers[0].self_attention
    assert isinstance(attn, PrunedMultiheadAttention) and attn.num_heads == 2 and attn.head_dim == 8
    assert attn.in_proj_weight.shape == (48, 32) and attn.out_proj.weight.shape == (32, 16)
    assert small.encoder.layers[1].mlp[0].out_features == 32 and small.encoder.layers[1].mlp[3].in_features == 32


def test_swin_heads_and_mlp_are_groups_with_smaller_shapes():
    model = randomize(tiny_swin())
    graph = analyze(model, (1, 3, 32, 32))
    keys = {g.key: g.size for g in graph.prunable}
    assert keys == {"features.1.0.attn": 2, "features.1.1.attn": 2, "features.3.0.attn": 4, "features.3.1.attn": 4,
                    "features.1.0.mlp.0": 64, "features.1.1.mlp.0": 64, "features.3.0.mlp.0": 128,
                    "features.3.1.mlp.0": 128}
    small = prune_model(model, graph, {graph.group("features.3.1.attn").index: torch.tensor([1, 3])})
    attn = small.features[3][1].attn
    assert isinstance(attn, PrunedShiftedWindowAttention) and attn.num_heads == 2 and attn.head_dim == 8
    assert attn.qkv.weight.shape == (48, 32) and attn.proj.weight.shape == (32, 16)
    torch.testing.assert_close(attn.relative_position_bias_table,
                               model.features[3][1].attn.relative_position_bias_table[:, [1, 3]])


def test_convnext_prunes_the_mlp_between_layernorm_and_layer_scale():
    model = randomize(tiny_convnext())
    graph = analyze(model, (1, 3, 32, 32))
    sizes = sorted((g.key, g.size) for g in graph.prunable)
    assert sizes == [("features.1.0.block.3", 64), ("features.1.1.block.3", 64), ("features.3.0.block.3", 128)]
    g = graph.group("features.1.0.block.3")
    assert g.modules("in") == ["features.1.0.block.5"]
    small = prune_model(model, graph, {g.index: torch.arange(16)})
    assert small.features[1][0].block[3].out_features == 16 and small.features[1][0].block[5].in_features == 16


@pytest.mark.parametrize("family", ["vit", "swin"])
def test_masked_heads_equal_the_exported_model(family):
    torch.manual_seed(1)
    model = randomize(FAMILIES[family]())
    graph = analyze(model, (2, 3, 32, 32))
    keep = {g.index: torch.randperm(g.size)[: g.size // 2].sort().values for g in graph.prunable}
    small = prune_model(model, graph, keep).eval()
    masker = ChannelMasker(model, graph)
    masker.set_masks({gi: torch.zeros(graph.groups[gi].size).index_fill_(0, k, 1.0) for gi, k in keep.items()})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), small(x), atol=1e-5, rtol=1e-5)
        masker.detach()
        assert not torch.allclose(model(x), small(x), atol=1e-3)


def test_pruned_vit_rebuilds_traces_and_exports():
    spec = {"type": "torchvision.vit_b_16", "image_size": 32, "num_classes": 5}
    model = randomize(torchvision.models.vit_b_16(weights=None, image_size=32, num_classes=5))
    graph = analyze(model, (1, 3, 32, 32))
    assert len(graph.prunable) == 24                      # 12 x (heads, MLP hidden)
    counts = {g.index: max(1, g.size // 4) for g in graph.prunable}
    small = prune_model(model, graph, {gi: torch.arange(n) for gi, n in counts.items()}).eval()
    rebuilt = build_pruned_model(spec, {graph.groups[gi].key: n for gi, n in counts.items()}, [1, 3, 32, 32])
    rebuilt.load_state_dict(small.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), small(x))
        torch.testing.assert_close(torch.jit.trace(small, x)(x), small(x))
    exported = torch.export.export(small, (x,))
    torch.testing.assert_close(exported.module()(x), small(x))
