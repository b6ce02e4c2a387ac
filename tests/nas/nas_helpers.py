"""Tiny supernet specs and independent reference computations for the gml-nas tests."""

from __future__ import annotations

import torch
from torch import nn


def cat(data, default=None):
    out = {"type": "Categorical", "data": list(data)}
    if default is not None:
        out["default"] = default
    return out


def mbv3_backbone(se=(False, True)) -> dict:
    """Two inverted-residual stages; every mid width is a multiple of 8 (no rounding involved)."""
    return {
        "type": "gml.MobileNetV3Slice", "stem_stride": 1, "strides": [1, 2], "use_se": list(se),
        "acts": ["relu", "hswish"],
        "search_space": {
            "MB_stage_blocks": [1, cat([1, 2]), cat([1, 2]), 1],
            "MB_kernel_size": [cat([3, 5]), cat([3, 5]), cat([3, 5]), 1],
            "MB_expand_ratio": [1, cat([1, 2]), cat([2, 3]), 2],
            "MB_out_channels": [cat([8, 16]), cat([8, 16]), cat([16, 24]), cat([32, 48])],
        },
    }


def classifier_spec(backbone: dict | None = None, resolution: bool = True, num_classes: int = 10,
                    in_channels: int = 1) -> dict:
    spec = {"type": "gml.ImageClassifierSearch", "backbone": backbone or mbv3_backbone(),
            "head": {"type": "gml.LinearClsHeadV2", "distiller_mode": "soft"},
            "connect_head": {"in_channels": "backbone.feat_dim"},
            "num_classes": num_classes, "in_channels": in_channels}
    if resolution:
        spec["resize_process"] = {"type": "ResizeSlice",
                                  "resolution": {"type": "Int", "lower": 8, "upper": 13, "step": 4}}
    return spec


def build_model(spec: dict):
    from gml_core._internal.components import build
    from gml_core._internal.config.spec import ComponentSpec

    return build("model", ComponentSpec(spec["type"], {k: v for k, v in spec.items() if k != "type"}), "")


def round8(v: float) -> int:
    """MobileNet's channel rounding (multiple of 8, at least 8, never below 90%)."""
    new = max(8, int(v + 4) // 8 * 8)
    return new + 8 if new < 0.9 * v else new


def conv_params(cin: int, cout: int, k: int, groups: int = 1, bias: bool = False) -> int:
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def mbv3_params(arch: dict, in_channels: int, num_classes: int, se: list[bool], expand_max: list[float]) -> int:
    """Parameters of the static MobileNetV3 subnet described by the nested ``arch`` (independent count)."""
    blocks, kernels = arch["MB_stage_blocks"], arch["MB_kernel_size"]
    expands, chans = arch["MB_expand_ratio"], arch["MB_out_channels"]
    total = conv_params(in_channels, chans[0], kernels[0]) + 2 * chans[0]
    cin = chans[0]
    for i in range(1, len(chans) - 1):
        for j in range(blocks[i]):
            c_in = cin if j == 0 else chans[i]
            mid = c_in * expands[i] if expand_max[i - 1] != 1 else c_in
            if expand_max[i - 1] != 1:
                total += conv_params(c_in, mid, 1) + 2 * mid
            total += conv_params(mid, mid, kernels[i], groups=mid) + 2 * mid
            if se[i - 1]:
                sq = round8(mid / 4)
                total += conv_params(mid, sq, 1, bias=True) + conv_params(sq, mid, 1, bias=True)
            total += conv_params(mid, chans[i], 1) + 2 * chans[i]
        cin = chans[i]
    mid = cin * expands[-1]
    total += conv_params(cin, mid, kernels[-1]) + 2 * mid
    total += conv_params(mid, chans[-1], 1, bias=True)
    return total + chans[-1] * num_classes + num_classes


def batches(n: int, shape=(16, 1, 12, 12), seed: int = 0, num_classes: int = 10):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*shape, generator=g), torch.randint(0, num_classes, (shape[0],), generator=g))
            for _ in range(n)]


def has_slice_ops(module: nn.Module) -> bool:
    from gml_nas.ops import slice as slice_ops

    kinds = (slice_ops.Conv2dSlice, slice_ops.LinearSlice, slice_ops.BatchNorm2dSlice, slice_ops.ResizeSlice)
    return any(isinstance(m, kinds) for m in module.modules())


def make_algorithm(cls, config_cls, **algo):
    """A one-shot NAS algorithm over ``classifier_spec()`` (digits-like 1x12x12 data, 10 classes)."""
    from gml_core._internal.algorithms import BuildContext, DataInfo
    from gml_core._internal.config import structure

    table = {"type": cls.__name__, "model": classifier_spec(), "mutator": {"type": "StatelessMutator", "seed": 3},
             **algo}
    return cls(structure(table, config_cls, "algorithm"), BuildContext(DataInfo(10, 1, (12, 12))))
