"""Automatic ``fuse_config`` of the eager quantizer, derived from the torch.fx graph."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from qat_helpers import FUSE_SMALLCNN
from torch import nn

from gml_core._internal.models.small_cnn import SmallCNN
from gml_qat.fusion import derive_fuse_config
from gml_qat.quantizers.eager import TorchDefaultQuantizer

#: torchvision resnet18 by hand: the stem fuses its ReLU; a BasicBlock calls its one ``relu`` twice
#: (after bn1 and after the residual add), so only conv-bn pairs fuse there; downsample = conv, bn
RESNET18_BY_HAND = {
    "": [["conv1", "bn1", "relu"]],
    **{f"layer{i}.{j}": [["conv1", "bn1"], ["conv2", "bn2"]] for i in range(1, 5) for j in range(2)},
    **{f"layer{i}.0.downsample": [["0", "1"]] for i in range(2, 5)},
}


def _sorted(config):
    return {k: sorted(v) for k, v in sorted(config.items())}


def test_derived_fusion_equals_the_hand_written_lists():
    import torchvision

    assert derive_fuse_config(SmallCNN(width=16)) == FUSE_SMALLCNN
    assert _sorted(derive_fuse_config(torchvision.models.resnet18())) == _sorted(RESNET18_BY_HAND)


class Branchy(nn.Module):
    """Chains that must not fuse: a conv output read twice, a shared ReLU, a functional ReLU."""

    def __init__(self):
        super().__init__()
        self.conv_a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)  # conv_a also feeds the add
        self.conv_b, self.bn_b = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.shared = nn.ReLU()
        self.conv_c, self.bn_c = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)
        self.fc, self.act = nn.Linear(4, 8), nn.ReLU()

    def forward(self, x):
        a = self.conv_a(x)
        y = self.shared(self.bn_b(self.conv_b(self.bn_a(a) + a)))  # shared is called twice
        y = self.shared(y)
        y = F.relu(self.bn_c(self.conv_c(y)))  # functional ReLU: eager fusion only fuses modules
        return self.act(self.fc(y.mean((2, 3))))


def test_only_dataflow_chains_with_single_use_modules_fuse():
    config = derive_fuse_config(Branchy())
    assert config == {"": [["conv_b", "bn_b"], ["conv_c", "bn_c"], ["fc", "act"]]}


def test_region_limits_the_derived_fusions():
    q = TorchDefaultQuantizer("fbgemm", "backbone.layer2", "backbone.layer3")
    q.prepare(SmallCNN(width=4), (torch.randn(2, 1, 16, 16),))
    assert q.fused == {k: v for k, v in FUSE_SMALLCNN.items() if k in ("backbone.layer2.0", "backbone.layer3.0")}
    assert q.spec()["fuse_config"] == q.fused  # int8 exports rebuild with the same fusions


def test_fused_qat_model_matches_unfused_model_in_eval_mode():
    import torch.ao.nn.intrinsic.qat as nniqat

    torch.manual_seed(0)
    model = SmallCNN(width=8).train()
    x = torch.randn(16, 1, 16, 16)
    with torch.no_grad():
        model(x)  # non-trivial BN running statistics
    model.eval()
    auto = TorchDefaultQuantizer("fbgemm")
    hand = TorchDefaultQuantizer("fbgemm", fuse_config=FUSE_SMALLCNN)
    none = TorchDefaultQuantizer("fbgemm", fuse_config={})
    example = (x[:2],)
    prepared = {name: q.fake_quant_disabled(q.prepare(model, example)).eval()
                for name, q in (("auto", auto), ("hand", hand), ("none", none))}
    fused_types = [type(m) for m in prepared["auto"].modules() if isinstance(m, nniqat.ConvBnReLU2d)]
    assert len(fused_types) == 5
    assert not any(isinstance(m, nniqat.ConvBnReLU2d) for m in prepared["none"].modules())
    with torch.no_grad():
        ref = model(x)
        outputs = {name: m(x) for name, m in prepared.items()}
    # before any observer has seen data, with fake quantization off: fusion does not change the function
    torch.testing.assert_close(outputs["auto"], ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outputs["auto"], outputs["hand"], rtol=0, atol=0)
    torch.testing.assert_close(outputs["none"], ref, rtol=1e-5, atol=1e-5)


def test_untraceable_model_without_fuse_config_fuses_nothing_and_still_prepares():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
            self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 2)

        def forward(self, x):
            if x.shape[-1] > 4:  # torch.fx cannot trace a branch on a (symbolic) size
                x = self.bn(self.conv(x))
            return self.head(torch.flatten(self.pool(x), 1))

    q = TorchDefaultQuantizer("fbgemm")
    prepared = q.prepare(DataDependent(), (torch.randn(2, 1, 8, 8),))
    assert q.fused == {} and "fuse_config" in q.spec()
    assert isinstance(prepared.bn, nn.BatchNorm2d)


def test_int8_export_of_an_auto_fused_model_rebuilds_the_same_model(tmp_path):
    from gml_qat.export import load_int8, save_int8_state

    torch.manual_seed(0)
    q = TorchDefaultQuantizer("fbgemm")
    x = torch.randn(8, 1, 16, 16)
    prepared = q.prepare(SmallCNN(width=4), (x[:2],))
    with torch.no_grad():
        prepared(x)  # calibrate
    int8 = q.convert(prepared)
    path = save_int8_state(int8, tmp_path / "int8.pth", {"type": "gml.SmallCNN", "width": 4}, q.spec(),
                           (1, 1, 16, 16))
    loaded = load_int8(path)
    assert sum(1 for m in loaded.modules() if type(m).__name__ == "ConvReLU2d") == 5
    with torch.no_grad():
        assert torch.equal(loaded(x), int8(x))
