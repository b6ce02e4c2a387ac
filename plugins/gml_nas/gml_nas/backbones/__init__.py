"""Searchable backbones built from slice ops (or SPOS choice blocks)."""

from .base import SearchableBackbone
from .mobilenet_v3 import MobileNetV3Slice
from .resnet import ResNetSlice
from .shufflenet import ShuffleNetV2_OneShot

__all__ = ["MobileNetV3Slice", "ResNetSlice", "SearchableBackbone", "ShuffleNetV2_OneShot"]
