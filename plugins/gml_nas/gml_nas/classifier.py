"""``ImageClassifierSearch`` (the supernet), its static export and ``StaticSubnet`` (its loader).

The supernet's flat search space joins the input resolution
(``resize_process.resolution``) and the backbone's keys (``backbone.<key>``).
``connect_head`` wires head arguments to attributes of the active subnet, e.g.
``{ in_channels = "backbone.feat_dim" }``: the head is built at the largest
width and follows the active width of every subnet.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Optional

import torch
from torch import nn

from gml_core.api import ConfigError, build_component, did_you_mean

from .backbones.base import SearchableBackbone
from .ops.slice import BatchNorm2dSlice, ResizeSlice
from .space import SearchSpace
from .specs import to_spec


class ImageClassifierSearch(nn.Module):
    """Optional ``resize_process``, a searchable ``backbone``, an optional ``neck`` and a ``head``."""

    def __init__(self, backbone: Mapping[str, Any], head: Mapping[str, Any], neck: Optional[Mapping[str, Any]] = None,
                 resize_process: Optional[Mapping[str, Any]] = None,
                 connect_head: Optional[Mapping[str, str]] = None, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.backbone = build_component("model", backbone, "backbone", in_channels=in_channels)
        if not isinstance(self.backbone, SearchableBackbone):
            raise ConfigError([("backbone.type", f"{to_spec(backbone, 'backbone').type} is not a searchable backbone; "
                                "accepted: gml.MobileNetV3Slice, gml.ResNetSlice, gml.ShuffleNetV2_OneShot")])
        self.neck = build_component("model", neck, "neck") if neck is not None else None
        self.resize_process: Optional[ResizeSlice] = None
        if resize_process is not None:
            spec = to_spec(resize_process, "resize_process")
            if spec.name != "ResizeSlice" or spec.scope not in (None, "gml"):
                raise ConfigError([("resize_process.type", f"{spec.type!r} is not supported; accepted: ResizeSlice")])
            unknown = [k for k in spec.args if k != "resolution"]
            if unknown or "resolution" not in spec.args:
                key = unknown[0] if unknown else "resolution"
                raise ConfigError([(f"resize_process.{key}", "ResizeSlice takes exactly one key, resolution")])
            self.resize_process = ResizeSlice(spec.args["resolution"])
        self.connect_head = dict(connect_head if connect_head is not None else {"in_channels": "backbone.feat_dim"})
        head_spec = to_spec(head, "head")
        wired = {name: self._follow(ref, f"connect_head.{name}") for name, ref in self.connect_head.items()}
        for name, value in wired.items():
            given = head_spec.args.get(name)
            if given is not None and given != value:
                raise ConfigError([(f"head.{name}", f"{given!r} differs from {self.connect_head[name]} = {value} "
                                    "wired by connect_head; remove it from the head")])
        self.head = build_component("model", head_spec.with_args(**wired), "head", num_classes=num_classes)
        parts = {}
        if self.resize_process is not None:
            parts["resize_process"] = self.resize_process.space
        parts["backbone"] = self.backbone.space
        self.space = SearchSpace.compose(parts)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.set_subnet(self.space.max())

    def _follow(self, ref: str, path: str) -> int:
        """The value of an attribute path such as ``backbone.feat_dim``."""
        owner_name, _, attr = str(ref).partition(".")
        owners = {"backbone": self.backbone, "neck": self.neck}
        owner = owners.get(owner_name)
        if owner is None or not attr:
            raise ConfigError([(path, f"{ref!r} must look like backbone.<attribute> or neck.<attribute>")])
        if not hasattr(owner, attr):
            names = [n for n in dir(type(owner)) if not n.startswith("_")]
            raise ConfigError([(path, f"{owner_name} ({type(owner).__name__}) has no attribute {attr!r}"
                                      f"{did_you_mean(attr, names)}")])
        return getattr(owner, attr)

    # -- subnets ----------------------------------------------------------------------
    def set_subnet(self, values: Mapping[str, Any]) -> None:
        """Activate a subnet given as flat ``{key: value}`` (keys of ``self.space``)."""
        if self.resize_process is not None:
            self.resize_process.set_arch(_strip(values, "resize_process."))
        self.backbone.set_arch(_strip(values, "backbone."))
        if hasattr(self.head, "connect"):
            for name, ref in self.connect_head.items():
                self.head.connect(name, self._follow(ref, f"connect_head.{name}"))
        self.subnet = dict(values)

    def set_dropout(self, ratio: float) -> None:
        if hasattr(self.head, "drop_ratio"):
            self.head.drop_ratio = ratio

    def set_drop_path(self, ratio: float) -> None:
        self.backbone.set_drop_path(ratio)

    def set_bn_update(self, update: bool) -> None:
        """Whether training forwards update BatchNorm running statistics (slice BNs only)."""
        for m in self.modules():
            if isinstance(m, BatchNorm2dSlice):
                m.update_stats = update

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize_process is not None:
            x = self.resize_process(x)
        x = self.backbone(x)
        if self.neck is not None:
            x = self.neck(x)
        return self.head(x)

    def export(self) -> "StaticClassifier":
        """The active subnet as plain torch modules with copies of its weights."""
        resize = self.resize_process.export() if self.resize_process is not None else nn.Identity()
        neck = nn.Identity() if self.neck is None else (self.neck.export() if hasattr(self.neck, "export")
                                                         else copy.deepcopy(self.neck))
        head = self.head.export() if hasattr(self.head, "export") else copy.deepcopy(self.head)
        model = StaticClassifier(resize, self.backbone.export(), neck, head)
        return model.train(self.training)


def _strip(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}


class StaticClassifier(nn.Module):
    """An exported subnet: ``resize``, ``backbone``, ``neck``, ``head`` of plain torch modules."""

    def __init__(self, resize: nn.Module, backbone: nn.Module, neck: nn.Module, head: nn.Module):
        super().__init__()
        self.resize = resize
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone(self.resize(x))))


def StaticSubnet(supernet: Mapping[str, Any], subnet: Mapping[str, Any],  # noqa: N802
                 reinit: bool = False) -> StaticClassifier:
    """Rebuild an exported subnet: build ``supernet`` (a model table), activate ``subnet``, export.

    This is the ``model_spec`` that ``gml nas export`` writes into its checkpoint, so
    ``init_from = "subnet.pth"`` in any gml config rebuilds the static network.
    ``reinit = true`` re-initialises every layer at its own size (to train the
    architecture from scratch).
    """
    model = build_component("model", supernet, "supernet")
    if not isinstance(model, ImageClassifierSearch):
        raise ConfigError([("supernet.type", f"expected gml.ImageClassifierSearch, got {type(model).__name__}")])
    model.set_subnet(model.space.parse_subnet(subnet, "subnet"))
    static = model.export()
    if reinit:
        for module in static.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return static.eval()


__all__ = ["ImageClassifierSearch", "StaticClassifier", "StaticSubnet"]
