"""Which operations keep, unite or reshape channels (the tables behind ``graph.py``)."""

from __future__ import annotations

import operator
from typing import Any

from torch import fx, nn

#: operands with the same channels are coupled (residual add, SE scaling, ...)
BINARY_ELEMENTWISE = frozenset({
    "add", "sub", "mul", "truediv", "div", "iadd", "isub", "imul", "itruediv", "add_", "sub_", "mul_", "div_",
    "maximum", "minimum", "max", "min", "rsub", "pow", "floordiv",
})

#: per-channel operations that keep the layout (checked against the traced shapes)
PASSTHROUGH_FUNCS = frozenset({
    "relu", "relu_", "relu6", "hardswish", "hardswish_", "hardsigmoid", "sigmoid", "sigmoid_", "silu", "silu_",
    "gelu", "tanh", "tanh_", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "mish", "softplus", "hardtanh",
    "hardtanh_", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool3d", "interpolate", "upsample", "stochastic_depth", "contiguous", "clone", "detach", "float",
    "to", "type_as", "neg", "abs", "clamp", "clamp_", "clamp_min", "clamp_max", "sqrt", "exp", "square", "pad",
})

#: reshape-like operations: a spatial flatten is supported, anything else fixes channels
RESHAPES = frozenset({"flatten", "view", "reshape", "squeeze", "unsqueeze"})

#: reductions over spatial dimensions keep channels
REDUCTIONS = frozenset({"mean", "sum", "amax", "amin"})

#: modules that act per channel and keep the channel count
PASSTHROUGH_MODULES: tuple[type, ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
    nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Softplus, nn.PReLU, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d,
    nn.ZeroPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d,
)

_OPERATOR_NAMES = {getattr(operator, n): n for n in (
    "add", "sub", "mul", "truediv", "floordiv", "pow", "iadd", "isub", "imul", "itruediv", "getitem", "neg", "abs")}


def op_name(node: fx.Node) -> str:
    """A canonical name for a call: ``operator.add``, ``torch.add`` and ``Tensor.add`` are all ``add``."""
    target: Any = node.target
    if node.op == "call_method":
        return str(target)
    if node.op == "call_module":
        return str(target)
    if target in _OPERATOR_NAMES:
        return _OPERATOR_NAMES[target]
    return getattr(target, "__name__", str(target))
