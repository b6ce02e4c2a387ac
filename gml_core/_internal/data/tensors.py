"""Shared preprocessing for in-memory image tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ..errors import GmlUserError


def check_sizes(**sizes: int) -> None:
    """``data.<name>: must be >= 0`` for a negative size or limit (0 means: keep / all)."""
    for name, value in sizes.items():
        if value < 0:
            raise GmlUserError(f"data.{name}: must be >= 0 (0 keeps the original), got {value}")


def prepare_images(images: torch.Tensor, resize: int, channels: int, mean: float, std: float) -> torch.Tensor:
    """Normalise ``N x 1 x H x W`` images, optionally resize and repeat to ``channels``."""
    images = (images - mean) / std
    if resize:
        images = F.interpolate(images, size=(resize, resize), mode="bilinear", align_corners=False)
    if channels != 1:
        images = images.repeat(1, channels, 1, 1)
    return images.contiguous()


def tensor_dataset(images: torch.Tensor, labels: torch.Tensor) -> TensorDataset:
    return TensorDataset(images.float(), labels.long())
