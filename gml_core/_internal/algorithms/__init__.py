"""Algorithm base class, build context and the built-in ``Supervised`` algorithm."""

from .base import BuildContext, DataInfo, GmlAlgorithm

__all__ = ["BuildContext", "DataInfo", "GmlAlgorithm"]
