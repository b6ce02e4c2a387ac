"""Searchers (registered as ``searcher`` components): Grid, Batch, Random, Skopt, Evolution,
BO (GP with MAP priors and log EI), TPE."""

from .base import Searcher

__all__ = ["Searcher"]
