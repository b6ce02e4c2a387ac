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
    #: a factory of the data's own mmengine metric (e.g. detection mAP); None: top-k accuracy
    metric: Any = None
    #: the validation metric that ranks checkpoints (``best.pth``): top-1 unless the data says otherwise
    indicator: str = "accuracy/top1"

    def make_metric(self) -> Any:
        """A fresh validation metric: the data's own, or top-k accuracy."""
        from .metric import TopKAccuracy

        return self.metric() if self.metric is not None else TopKAccuracy(self.data.num_classes)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """The validation metric of ``model`` (top-k accuracy unless the data brings its own)."""
        from .metric import evaluate_model, evaluate_with_metric

        if self.metric is not None:
            return evaluate_with_metric(model, self.val_loader, self.make_metric())
        return evaluate_model(model, self.val_loader, self.data.num_classes)
