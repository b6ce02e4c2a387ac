"""Feature connectors: modules that map a captured feature before the loss.

The distiller fills ``in_channels`` (and, for a student connector, ``out_channels``:
the channel count of the teacher side) from a dry run, so configs rarely set them.
A connector built with a ``pretrain_criterion`` is trained first through its own
``forward_pretrain`` on the teacher's features, then frozen (Factor Transfer's
paraphraser).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from gml_core.api import ComponentSpec, GmlUserError


def _need(value: Optional[int], name: str, cls: str) -> int:
    if value is None:
        raise GmlUserError(f"{cls}: {name} is unknown; set it in the connector table")
    if value < 1:
        raise GmlUserError(f"{cls}: {name} must be >= 1, got {value}")
    return value


class BaseConnector(nn.Module):
    """A connector; ``pretrain_criterion`` (a loss module) marks one that is pre-trained."""

    def __init__(self, pretrain_criterion: Optional[ComponentSpec] = None, pretrain_epochs: int = 1):
        super().__init__()
        self.pretrain_criterion: Optional[nn.Module] = None
        if pretrain_criterion is not None:
            from gml_core.api import build_component
            self.pretrain_criterion = build_component("loss", pretrain_criterion, f"{type(self).__name__}.pretrain_criterion")
        if pretrain_epochs < 1:
            raise GmlUserError(f"{type(self).__name__}: pretrain_epochs must be >= 1, got {pretrain_epochs}")
        self.pretrain_epochs = pretrain_epochs
        self.register_buffer("pretrained", torch.zeros((), dtype=torch.bool))
        self.frozen = False

    @property
    def needs_pretrain(self) -> bool:
        return self.pretrain_criterion is not None

    def forward_pretrain(self, x: torch.Tensor) -> torch.Tensor:
        """The output compared with ``x`` by ``pretrain_criterion`` while pre-training."""
        raise NotImplementedError(f"{type(self).__name__} has no pre-training stage")

    def freeze(self) -> None:
        """Stop training this connector (after its pre-training)."""
        self.frozen = True
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "BaseConnector":
        return super().train(mode and not self.frozen)


class ConvBNConnector(BaseConnector):
    """Conv (1x1 by default) plus BatchNorm: FitNet's regressor, AB's connector."""

    def __init__(self, in_channels: Optional[int] = None, out_channels: Optional[int] = None,
                 kernel_size: int = 1, stride: int = 1, with_bn: bool = True, with_relu: bool = False):
        super().__init__()
        cin = _need(in_channels, "in_channels", "ConvBNConnector")
        cout = _need(out_channels, "out_channels", "ConvBNConnector")
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, bias=not with_bn)]
        if with_bn:
            layers.append(nn.BatchNorm2d(cout))
        if with_relu:
            layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)
        conv = layers[0]
        nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (kernel_size * kernel_size * cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class LinearConnector(BaseConnector):
    """A linear map of flat features (e.g. embeddings or logits of different sizes)."""

    def __init__(self, in_channels: Optional[int] = None, out_channels: Optional[int] = None, bias: bool = True):
        super().__init__()
        self.fc = nn.Linear(_need(in_channels, "in_channels", "LinearConnector"),
                            _need(out_channels, "out_channels", "LinearConnector"), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _conv_block(cin: int, cout: int, slope: float, transpose: bool = False) -> list[nn.Module]:
    conv = nn.ConvTranspose2d if transpose else nn.Conv2d
    return [conv(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(slope)]


class Paraphraser(BaseConnector):
    """Factor Transfer's paraphraser (Kim et al., 2018), on the teacher side.

    An encoder (three 3x3 conv-BN-LeakyReLU layers, ``in_channels`` -> ``in_channels *
    rate``) gives the teacher factor; a mirrored decoder of transposed convs
    reconstructs the feature. ``forward_pretrain`` returns the reconstruction, trained
    with ``pretrain_criterion`` (reconstruction loss, MSELoss in the paper) before the
    student trains; ``forward`` returns the factor.
    """

    def __init__(self, in_channels: Optional[int] = None, rate: float = 0.5,
                 pretrain_criterion: Optional[ComponentSpec] = None, pretrain_epochs: int = 1,
                 negative_slope: float = 0.1):
        super().__init__(pretrain_criterion, pretrain_epochs)
        cin = _need(in_channels, "in_channels", "Paraphraser")
        if not rate > 0:
            raise GmlUserError(f"Paraphraser: rate must be > 0, got {rate}")
        k = max(1, int(round(cin * rate)))
        self.factor_channels = k
        self.encoder = nn.Sequential(*_conv_block(cin, cin, negative_slope), *_conv_block(cin, k, negative_slope),
                                     *_conv_block(k, k, negative_slope))
        self.decoder = nn.Sequential(*_conv_block(k, k, negative_slope, True),
                                     *_conv_block(k, cin, negative_slope, True),
                                     *_conv_block(cin, cin, negative_slope, True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward_pretrain(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Translator(BaseConnector):
    """Factor Transfer's translator, on the student side: three 3x3 conv-BN-LeakyReLU layers
    mapping the student feature to a factor of ``out_channels`` (the paraphraser's)."""

    def __init__(self, in_channels: Optional[int] = None, out_channels: Optional[int] = None,
                 negative_slope: float = 0.1):
        super().__init__()
        cin = _need(in_channels, "in_channels", "Translator")
        cout = _need(out_channels, "out_channels", "Translator")
        self.encoder = nn.Sequential(*_conv_block(cin, cin, negative_slope), *_conv_block(cin, cout, negative_slope),
                                     *_conv_block(cout, cout, negative_slope))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)
