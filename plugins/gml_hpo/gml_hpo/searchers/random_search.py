"""RandomSearcher: seeded independent sampling (log-uniform with ``log``), no duplicates
on finite spaces."""

from __future__ import annotations

from .base import Params, Searcher


class RandomSearcher(Searcher):
    def _suggest(self, running: list[Params]) -> Params | None:
        return self.random_new(running)
