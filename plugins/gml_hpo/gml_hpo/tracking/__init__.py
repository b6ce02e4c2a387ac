"""Experiment-tracking backends (registered as ``tracker`` components)."""

from .base import Tracker

__all__ = ["Tracker"]
