"""Datasets: a ``DataBundle`` of train/val datasets yielding ``(image, label)``."""

from __future__ import annotations

from typing import Any

import attrs
from torch.utils.data import Dataset

from ..algorithms.base import DataInfo


@attrs.frozen
class DataBundle:
    """Train and validation datasets plus their shape information.

    ``metric`` (optional) replaces top-k accuracy: called with the algorithm, it returns
    an mmengine ``BaseMetric`` that receives ``(data_batch, model outputs)``; ``best_indicator``
    is the metric key ``best.pth`` follows (higher is better).
    """

    train: Dataset
    val: Dataset
    info: DataInfo
    metric: Any = None
    best_indicator: str = "accuracy/top1"


__all__ = ["DataBundle", "DataInfo"]
