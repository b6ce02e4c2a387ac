"""Searchers (registered as ``searcher`` components): Grid, Batch, Random, Skopt, Evolution."""

from .base import Searcher

__all__ = ["Searcher"]
