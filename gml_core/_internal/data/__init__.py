"""Datasets: a ``DataBundle`` of train/val datasets yielding ``(image, label)``."""

from __future__ import annotations

import attrs
from torch.utils.data import Dataset

from ..algorithms.base import DataInfo


@attrs.frozen
class DataBundle:
    """Train and validation datasets plus their shape information."""

    train: Dataset
    val: Dataset
    info: DataInfo


__all__ = ["DataBundle", "DataInfo"]
