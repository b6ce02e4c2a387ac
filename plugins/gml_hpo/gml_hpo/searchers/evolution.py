"""EvolutionSearcher: asynchronous evolution with tournament or top-k selection.

The first ``population_size`` trials (running ones included) are random. After that
each suggestion picks a parent from the population (the ``population_size`` most
recent finished trials with ``aging``, as in regularized evolution, Real et al. 2019;
otherwise the best ones) by a tournament of ``sample_size`` (or uniformly among the
top ``sample_size``), optionally crosses it with a second parent (uniform crossover),
and mutates genes: Gaussian steps in the unit (log-aware) encoding for Real/Int,
a different choice for Categorical/Nested/File. Children equal to a finished or a
running trial are rejected, so parallel slots explore different points.
"""

from __future__ import annotations

from typing import Literal, Optional

import attrs

from ..space import Dim, params_key
from .base import Params, Searcher


@attrs.frozen(kw_only=True)
class EvolutionOptions:
    population_size: int = 16
    sample_size: int = 4
    selection: Literal["tournament", "topk"] = "tournament"
    aging: bool = True
    mutation_prob: Optional[float] = None  # per gene; default 1 / number of args
    mutation_sigma: float = 0.15
    crossover_prob: float = 0.3

    def __attrs_post_init__(self):
        from gml_core.api import ConfigError
        problems = []
        if self.population_size < 2:
            problems.append(("searcher.population_size", f"must be >= 2, got {self.population_size}"))
        if not 1 <= self.sample_size <= max(self.population_size, 1):
            problems.append(("searcher.sample_size", f"must be in [1, population_size], got {self.sample_size}"))
        for name in ("mutation_prob", "crossover_prob"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                problems.append((f"searcher.{name}", f"must be in [0, 1], got {v}"))
        if self.mutation_sigma <= 0:
            problems.append(("searcher.mutation_sigma", f"must be > 0, got {self.mutation_sigma}"))
        if problems:
            raise ConfigError(problems)


class EvolutionSearcher(Searcher):
    options_class = EvolutionOptions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.options is None:
            self.options = EvolutionOptions()

    def _population(self) -> list[tuple[Params, float]]:
        done = [(p, self.score(r)) for p, r in self.history if r is not None]
        size = self.options.population_size
        if self.options.aging:
            return done[-size:]
        return sorted(done, key=lambda t: t[1], reverse=True)[:size]

    def _select(self, population: list[tuple[Params, float]]) -> Params:
        k = min(self.options.sample_size, len(population))
        if self.options.selection == "topk":
            top = sorted(population, key=lambda t: t[1], reverse=True)[:k]
            return top[self.rng.randrange(len(top))][0]
        contenders = self.rng.sample(population, k)
        return max(contenders, key=lambda t: t[1])[0]

    def _mutate_gene(self, d: Dim, value, sigma: float):
        if not d.ordered:
            others = [v for v in d.values if v != value]
            return others[self.rng.randrange(len(others))] if others else value
        u = d.to_unit(value) + self.rng.gauss(0.0, sigma)
        while u < 0.0 or u > 1.0:  # reflect at the bounds
            u = -u if u < 0.0 else 2.0 - u
        new = d.from_unit(u)
        if d.finite and new == value and len(d.values) > 1:
            i = d.index(value)
            step = 1 if (i == 0 or (i < len(d.values) - 1 and self.rng.random() < 0.5)) else -1
            new = d.values[i + step]
        return new

    def _child(self, population: list[tuple[Params, float]], sigma: float) -> Params:
        o = self.options
        parent = dict(self._select(population))
        if len(population) > 1 and self.rng.random() < o.crossover_prob:
            other = self._select(population)
            parent = {name: (parent[name] if self.rng.random() < 0.5 else other[name]) for name in parent}
        dims = self.space.dims
        p = o.mutation_prob if o.mutation_prob is not None else 1.0 / len(dims)
        mutate = [self.rng.random() < p for _ in dims]
        if not any(mutate):
            mutate[self.rng.randrange(len(dims))] = True
        return {d.name: (self._mutate_gene(d, parent[d.name], sigma) if m else parent[d.name])
                for d, m in zip(dims, mutate)}

    def _suggest(self, running: list[Params]) -> Params | None:
        population = self._population()
        if len(self.history) + len(running) < self.options.population_size or not population:
            return self.random_new(running)
        taken = self.issued | {params_key(p) for p in running}
        if self.space.finite and len(taken) >= self.space.size:
            self.exhausted = True
            return None
        sigma = self.options.mutation_sigma
        for attempt in range(60):
            child = self._child(population, sigma * (1.0 + attempt / 10.0))
            if params_key(child) not in taken:
                return child
        return self.random_new(running)
