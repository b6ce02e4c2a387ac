"""``Supervised``: plain training of a model, so ``gml run`` works with no plugin."""

from .base import GmlAlgorithm


class Supervised(GmlAlgorithm):
    """Cross-entropy training of ``algorithm.model`` (label smoothing from ``train``)."""
