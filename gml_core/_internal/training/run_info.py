"""``RunInfo``: what an algorithm may use around training (loaders, evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from torch import nn

from ..algorithms.base import DataInfo


@attrs.define
class RunInfo:
    """Handed to ``before_train`` / ``after_train`` of an algorithm."""

    work_dir: Path
    train_loader: Any
    val_loader: Any
    data: DataInfo
    config: Any
    max_iters: int = 0
    iters_per_epoch: int = 0
    runner: Any = None

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Top-k accuracy of ``model`` on the validation set."""
        from .metric import evaluate_model

        return evaluate_model(model, self.val_loader, self.data.num_classes)
