"""Evolution search over a flat search space under FLOPs / params limits, resumable.

Candidates must spend the budget: a limit ``L`` on a cost admits subnets whose cost lies in
``[min_ratio * min(L, cost of the largest subnet), L]`` (``min_ratio`` 0.85 by default; 0 admits
everything under ``L``), since on a well-trained supernet a larger subnet under the limit is the
better one and the interesting trade-offs sit at the constraint.
Generation 0 is the largest and the smallest subnet (when they fit) and
random subnets that fit, ``population_size`` in all. After
scoring a generation, the ``top_k`` best subnets seen so far survive; the next
generation is made of crossovers of two survivors (``crossover_ratio`` of it)
and mutations of one (each key re-sampled with ``mutation_prob``), keeping only
unseen subnets within the limits. Equal scores rank the larger cost first: a score
counts correct images, so ties are common on a small search split, and the larger of
two tied subnets did better on the test split more often (docs/benchmarks/nas.md).
The state (scores, costs, population, random state) is written after every scored
candidate, so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from gml_core.api import GmlUserError, atomic_write_text

from .mutator import StatelessMutator
from .search_config import SearchConfig
from .space import SearchSpace, subnet_key

Subnet = dict[str, Any]
CostFns = Mapping[str, Callable[[Subnet], float]]


class EvolutionSearch:
    """Maximise ``score(subnet)`` subject to ``cost_fns[name](subnet) <= limits[name]``."""

    def __init__(self, space: SearchSpace, score: Callable[[Subnet], float], cost_fns: CostFns,
                 limits: Mapping[str, Optional[float]], config: SearchConfig, state_file: Optional[Path] = None,
                 log: Callable[[str], None] = lambda _: None):
        self.space, self.score_fn, self.cost_fns = space, score, dict(cost_fns)
        self.limits = {k: v for k, v in limits.items() if v is not None}
        self.floors: dict[str, float] = {}
        self.config = config
        self.mutator = StatelessMutator(config.seed).prepare(space)
        self.state_file = state_file
        self.log = log
        self.costs: dict[str, dict[str, float]] = {}
        self.scores: dict[str, float] = {}
        self.subnets: dict[str, Subnet] = {}
        self.population: list[str] = []
        self.generation = 0

    # -- candidates -------------------------------------------------------------------
    def _cost(self, subnet: Subnet) -> dict[str, float]:
        key = subnet_key(subnet)
        if key not in self.costs:
            self.costs[key] = {name: float(fn(subnet)) for name, fn in self.cost_fns.items()}
            self.subnets[key] = dict(subnet)
        return self.costs[key]

    def _set_floors(self) -> None:
        largest = self._cost(self.space.max())
        self.floors = {name: self.config.min_ratio * min(limit, largest[name]) for name, limit in self.limits.items()}

    def fits(self, subnet: Subnet) -> bool:
        """Within every limit and at least at its floor (``min_ratio``)."""
        if len(self.floors) != len(self.limits):
            self._set_floors()
        cost = self._cost(subnet)
        return all(self.floors[name] <= cost[name] <= limit for name, limit in self.limits.items())

    def _draw(self, make: Callable[[], Subnet], n: int, taken: set[str]) -> list[str]:
        out: list[str] = []
        for _ in range(self.config.max_sample_tries):
            if len(out) >= n:
                break
            child = make()
            key = subnet_key(child)
            if key in taken or key in self.scores or not self.fits(child):
                continue
            taken.add(key)
            out.append(key)
        return out

    def _initial(self) -> list[str]:
        """The largest and smallest subnets (trained every BigNAS step) when they fit, then random ones."""
        taken: set[str] = set()
        keys = [subnet_key(s) for s in (self.space.max(), self.space.min()) if self.fits(s)]
        keys = list(dict.fromkeys(keys))[: self.config.population_size]
        taken.update(keys)
        keys += self._draw(self.mutator.random_subnet, self.config.population_size - len(keys), taken)
        if not keys:
            limits = ", ".join(f"{self.floors[k]:g} <= {k} <= {v:g}" for k, v in self.limits.items())
            smallest = self._cost(self.space.min())
            raise GmlUserError(f"no subnet within {limits} found in {self.config.max_sample_tries} random draws (lower min_ratio to widen the band); "
                               f"the smallest subnet has {', '.join(f'{k} {v:g}' for k, v in smallest.items())}")
        return keys

    def _next(self, top: list[str]) -> list[str]:
        cfg, taken = self.config, set()
        n_cross = int(round(cfg.crossover_ratio * cfg.population_size)) if len(top) > 1 else 0
        parents = [self.subnets[k] for k in top]
        rng = self.mutator.rng
        children = self._draw(lambda: self.mutator.mutate(rng.choice(parents), cfg.mutation_prob),
                              cfg.population_size - n_cross, taken)
        if n_cross:
            children += self._draw(lambda: self.mutator.crossover(*rng.sample(parents, 2)), n_cross, taken)
        missing = cfg.population_size - len(children)
        if missing > 0:
            children += self._draw(self.mutator.random_subnet, missing, taken)
        return children

    def top(self, k: Optional[int] = None) -> list[str]:
        """The ``k`` (default ``top_k``) best: highest score, then the larger costs (in ``cost_fns`` order)."""
        def rank(key: str) -> tuple:
            return (-self.scores[key], *(-c for c in self.costs[key].values()), key)

        ranked = sorted(self.scores, key=rank)
        return ranked[: (k or self.config.top_k)]

    # -- the loop ---------------------------------------------------------------------
    def run(self, resume: bool = False) -> list[dict[str, Any]]:
        """Search; returns the ``top_k`` best as ``{"subnet", "score", **costs}``, best first."""
        if resume and self.state_file is not None and self.state_file.is_file():
            self._load()
            self.log(f"resumed at generation {self.generation} with {len(self.scores)} scored subnets")
        if not self.population and self.generation < self.config.generations:
            self.population = self._initial()
            self._save()
        while self.generation < self.config.generations:
            for key in self.population:
                if key not in self.scores:
                    self.scores[key] = float(self.score_fn(self.subnets[key]))
                    self._save()
            best = self.top(1)[0]
            self.log(f"generation {self.generation + 1}/{self.config.generations}: {len(self.population)} candidates, "
                     f"best score {self.scores[best]:.3f} ({_costs_text(self.costs[best])})")
            self.generation += 1
            self.population = self._next(self.top()) if self.generation < self.config.generations else []
            self._save()
        return self.results()

    def results(self) -> list[dict[str, Any]]:
        return [{"subnet": self.subnets[k], "score": self.scores[k], **self.costs[k]} for k in self.top()]

    def front(self, cost: str = "flops") -> list[dict[str, Any]]:
        """The scored candidates no other scored candidate beats at lower or equal ``cost``, cheapest first."""
        points = [{"subnet": self.subnets[k], "score": self.scores[k], **self.costs[k]} for k in self.scores]
        return pareto_front(points, cost)

    # -- state ------------------------------------------------------------------------
    def _save(self) -> None:
        if self.state_file is None:
            return
        state = {
            "version": 1, "generation": self.generation, "population": self.population,
            "candidates": {k: {"subnet": self.subnets[k], "costs": self.costs[k], "score": self.scores.get(k)}
                           for k in self.subnets},
            "rng": _rng_to_json(self.mutator.rng.getstate()),
            "limits": self.limits, "min_ratio": self.config.min_ratio, "space": self.space.keys(),
        }
        atomic_write_text(self.state_file, json.dumps(state))

    def _load(self) -> None:
        path = self.state_file
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise GmlUserError(f"{path}: cannot read the search state ({exc}); delete it or drop --resume") from None
        if state.get("space") != self.space.keys():
            raise GmlUserError(f"{path}: the search state belongs to another search space; delete it or drop --resume")
        if state.get("limits") != self.limits or state.get("min_ratio", self.config.min_ratio) != self.config.min_ratio:
            raise GmlUserError(f"{path}: the search state used limits {state.get('limits')}, now {self.limits}; "
                               "use the same limits (and min_ratio) or drop --resume")
        for key, cand in state["candidates"].items():
            self.subnets[key] = cand["subnet"]
            self.costs[key] = cand["costs"]
            if cand["score"] is not None:
                self.scores[key] = cand["score"]
        self.population = list(state["population"])
        self.generation = int(state["generation"])
        self.mutator.rng.setstate(_rng_from_json(state["rng"]))


def random_subnets(space: SearchSpace, cost_fns: CostFns, limits: Mapping[str, Optional[float]], n: int,
                   seed: int = 0, max_tries: int = 10000) -> list[tuple[Subnet, dict[str, float]]]:
    """Up to ``n`` distinct random subnets within the limits, in draw order, each with its costs."""
    mutator = StatelessMutator(seed).prepare(space)
    limits = {k: v for k, v in limits.items() if v is not None}
    out: list[tuple[Subnet, dict[str, float]]] = []
    seen: set[str] = set()
    for _ in range(max_tries):
        if len(out) >= n:
            break
        subnet = mutator.random_subnet()
        key = subnet_key(subnet)
        if key in seen:
            continue
        seen.add(key)
        costs = {name: float(fn(subnet)) for name, fn in cost_fns.items()}
        if all(costs[name] <= lim for name, lim in limits.items()):
            out.append((subnet, costs))
    return out


def random_search(space: SearchSpace, score: Callable[[Subnet], float], cost_fns: CostFns,
                  limits: Mapping[str, Optional[float]], budget: int, seed: int = 0,
                  max_tries: int = 10000) -> dict[str, Any]:
    """Baseline: the best of ``budget`` distinct random subnets within the limits (ties: the larger costs)."""
    scored = [{"subnet": subnet, "score": float(score(subnet)), **costs}
              for subnet, costs in random_subnets(space, cost_fns, limits, budget, seed, max_tries)]
    return max(scored, key=lambda r: (r["score"], *(r[name] for name in cost_fns)), default={})


def pareto_front(points: list[dict[str, Any]], cost: str = "flops", score: str = "score") -> list[dict[str, Any]]:
    """Points not dominated in (lower ``cost``, higher ``score``): sorted by cost, each strictly better than
    every cheaper one kept."""
    out: list[dict[str, Any]] = []
    for p in sorted(points, key=lambda p: (p[cost], -p[score])):
        if not out or p[score] > out[-1][score]:
            out.append(p)
    return out


def _costs_text(costs: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:,.0f}" for k, v in costs.items())


def _rng_to_json(state: Any) -> Any:
    return [state[0], list(state[1]), state[2]]


def _rng_from_json(data: Any) -> Any:
    return (data[0], tuple(data[1]), data[2])


__all__ = ["EvolutionSearch", "pareto_front", "random_search", "random_subnets"]
