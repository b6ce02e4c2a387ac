"""BatchSearcher: run each listed set of values once (``Nested`` args of plain values)."""

from __future__ import annotations

from typing import Any

from ..space import SearchSpace, params_key
from .base import Params, Searcher


class BatchSearcher(Searcher):
    """Every arg is Nested; several Nested args must have equal lengths and are zipped."""

    @classmethod
    def check_space(cls, space: SearchSpace, options: Any) -> list[tuple[str, str]]:
        problems = []
        for d in space.dims:
            path = f"task.search_args.{d.name}"
            if d.kind != "Nested":
                problems.append((path, f"BatchSearcher takes only Nested args, got {d.kind}"))
                continue
            for i, item in enumerate(d.values):
                for key, value in item.items():
                    if isinstance(value, (dict, list)):
                        problems.append((f"{path}.data[{i}].{key}", "BatchSearcher needs plain values "
                                                                    "(number, string, boolean)"))
        sizes = {d.name: len(d.values) for d in space.dims if d.kind == "Nested"}
        if len(set(sizes.values())) > 1:
            problems.append(("task.search_args", f"Nested args of BatchSearcher must have equal lengths, "
                                                 f"got {sizes}"))
        return problems

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        n = len(self.space.dims[0].values) if self.space.dims else 0
        self._sets = [{d.name: d.values[i] for d in self.space.dims} for i in range(n)]

    def _suggest(self, running: list[Params]) -> Params | None:
        taken = {params_key(p) for p in running}
        for params in self._sets:
            key = params_key(params)
            if key not in self.issued and key not in taken:
                return params
        self.exhausted = True
        return None
