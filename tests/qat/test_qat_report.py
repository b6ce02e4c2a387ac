"""The int8 report's accuracy: a stated, deterministic rule for tied logits."""

from __future__ import annotations

import torch

from gml_qat.report import top1


class Fixed(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[x.long()]


def test_tied_logits_count_for_the_lowest_class_index():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0],   # tie 1/2, label 1 -> correct
                           [2.0, 0.0, 2.0, 2.0],   # tie 0/2/3, label 3 -> wrong (0 wins)
                           [0.0, 0.0, 0.0, 5.0],   # label 3, no tie -> correct
                           [4.0, 4.0, 1.0, 1.0]])  # tie 0/1, label 1 -> wrong
    labels = torch.tensor([1, 3, 3, 1])
    loader = [(torch.arange(2), labels[:2]), (torch.arange(2, 4), labels[2:])]
    accuracy, ties = top1(Fixed(logits), loader)
    assert accuracy == 50.0 and ties == 3
    # same rule however the batches are cut (a topk kernel may break ties differently per shape)
    assert top1(Fixed(logits), [(torch.arange(4), labels)]) == (50.0, 3)


def test_int8_flops_and_params_match_the_float_model_with_bn_folded():
    import torchvision

    from gml_core._internal.models.small_cnn import SmallCNN
    from gml_core.api import count_flops, count_params
    from gml_qat.counts import int8_flops, int8_params
    from gml_qat.engine import quantized_engine
    from gml_qat.quantizers.eager import TorchDefaultQuantizer
    from gml_qat.quantizers.fx import FxQuantizer

    cases = [(SmallCNN(width=4), (1, 1, 16, 16), FxQuantizer("x86")),
             (SmallCNN(width=4), (1, 1, 16, 16), TorchDefaultQuantizer("fbgemm", "backbone.conv1", "backbone.layer4")),
             (torchvision.models.resnet18(), (1, 3, 64, 64), FxQuantizer("fbgemm"))]
    for fp32, shape, quantizer in cases:
        fp32.eval()
        prepared = quantizer.prepare(fp32, (torch.randn(2, *shape[1:]),))
        with torch.no_grad():
            prepared(torch.randn(4, *shape[1:]))
        int8 = quantizer.convert(prepared)
        assert count_params(int8) < count_params(fp32) // 10  # the core's counter misses packed weights
        # torch's FLOP counter counts conv/linear only; folding BN changes none of their multiply-adds
        with quantized_engine(quantizer.backend):
            assert int8_flops(int8, shape) == count_flops(fp32, shape)
        # every BN (C channels: weight and bias) is folded into its conv, whose new bias has C entries
        bn_channels = sum(m.num_features for m in fp32.modules() if isinstance(m, torch.nn.BatchNorm2d))
        biasless = sum(m.out_channels for m in fp32.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is None)
        assert bn_channels == biasless  # every conv of these models is followed by a BN
        assert int8_params(int8) == count_params(fp32) - 2 * bn_channels + biasless
