"""GridSearcher: every point of the Cartesian product, once, in order."""

from __future__ import annotations

from typing import Any

from ..space import SearchSpace, params_key
from .base import Params, Searcher


class GridSearcher(Searcher):
    """Exact enumeration; when the product is used up the task ends."""

    @classmethod
    def check_space(cls, space: SearchSpace, options: Any) -> list[tuple[str, str]]:
        return [(f"task.search_args.{d.name}", "GridSearcher needs a finite arg: give this Real a 'num' "
                                               "(number of grid points) or use Categorical")
                for d in space.dims if not d.finite]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._iter = self.space.grid()

    def _suggest(self, running: list[Params]) -> Params | None:
        taken = {params_key(p) for p in running}
        for params in self._iter:
            key = params_key(params)
            if key not in self.issued and key not in taken:
                return params
        self.exhausted = True
        return None
