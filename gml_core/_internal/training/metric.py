"""Top-k accuracy on logits returned by ``GmlAlgorithm.predict``."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.evaluator import BaseMetric


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, topk: Sequence[int]) -> list[int]:
    """Number of samples whose label is among the top-k logits, for each k."""
    top = logits.topk(max(topk), dim=1).indices
    hits = top.eq(labels.view(-1, 1))
    return [int(hits[:, :k].any(dim=1).sum()) for k in topk]


class TopKAccuracy(BaseMetric):
    """Reports ``accuracy/top1`` (and ``accuracy/top5`` when there are more than 5 classes), in percent."""

    default_prefix = "accuracy"

    def __init__(self, num_classes: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.topk = (1, 5) if num_classes > 5 else (1,)

    def process(self, data_batch: Any, data_samples: Sequence[torch.Tensor]) -> None:
        logits = torch.stack([torch.as_tensor(s) for s in data_samples]).float().cpu()
        labels = data_batch[1].cpu() if isinstance(data_batch, (list, tuple)) else data_batch["labels"].cpu()
        self.results.append((len(labels), topk_correct(logits, labels, self.topk)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        total = sum(n for n, _ in results)
        return {f"top{k}": 100.0 * sum(c[i] for _, c in results) / max(total, 1) for i, k in enumerate(self.topk)}


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, loader: Any, num_classes: int) -> dict[str, float]:
    """Top-k accuracy of a plain model over a loader of ``(inputs, labels)``."""
    was_training = model.training
    model.eval()
    topk = (1, 5) if num_classes > 5 else (1,)
    correct, total = [0] * len(topk), 0
    try:
        for inputs, labels in loader:
            hits = topk_correct(model(inputs), labels, topk)
            correct = [a + b for a, b in zip(correct, hits)]
            total += len(labels)
    finally:
        model.train(was_training)
    return {f"accuracy/top{k}": 100.0 * c / max(total, 1) for k, c in zip(topk, correct)}


@torch.no_grad()
def evaluate_with_metric(model: torch.nn.Module, loader: Any, metric: BaseMetric) -> dict[str, float]:
    """An mmengine metric of a plain model over a loader of ``(inputs, targets)``: the metric
    receives each batch and ``model(inputs)``; keys carry the metric's prefix."""
    was_training = model.training
    model.eval()
    metric.results.clear()
    try:
        for batch in loader:
            metric.process(batch, model(batch[0]))
    finally:
        model.train(was_training)
    values = metric.compute_metrics(metric.results)
    metric.results.clear()
    prefix = f"{metric.prefix}/" if metric.prefix else ""
    return {f"{prefix}{k}": float(v) for k, v in values.items()}
