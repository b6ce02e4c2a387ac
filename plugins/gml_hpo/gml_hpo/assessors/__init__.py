"""Early-stopping assessors (registered as ``assessor`` components)."""

from .base import Assessor

__all__ = ["Assessor"]
