"""Model-based searchers: Evolution against Random, Skopt on a 1-D quadratic, the registrar."""

from __future__ import annotations

import statistics

from gml_hpo.searchers.evolution import EvolutionOptions, EvolutionSearcher
from gml_hpo.searchers.random_search import RandomSearcher
from gml_hpo.searchers.skopt_search import SkoptOptions, SkoptSearcher
from gml_hpo.space import Dim, SearchSpace, params_key


def sphere_space(n=6) -> SearchSpace:
    return SearchSpace([Dim(f"x{i}", "Real", -5.0, 5.0) for i in range(n)])


def sphere(p) -> float:
    return sum((v - 1.0) ** 2 for v in p.values())


def best_after(searcher, budget: int, parallel: int = 2) -> float:
    """Ask/tell loop with ``parallel`` trials in flight (the oldest finishes first)."""
    running, best = [], float("inf")
    while len(searcher.history) < budget:
        while len(running) < parallel:
            running.append(searcher.suggest(running))
        done = running.pop(0)
        value = sphere(done)
        best = min(best, value)
        searcher.observe(done, -value)  # maximise the negated loss
    return best


def test_evolution_beats_random_on_a_toy_function_over_seeds():
    space = sphere_space()
    evo = [best_after(EvolutionSearcher(space, EvolutionOptions(population_size=10, sample_size=3), seed=s), 120)
           for s in range(8)]
    rnd = [best_after(RandomSearcher(space, seed=s), 120) for s in range(8)]
    assert statistics.median(evo) < 0.5 * statistics.median(rnd), (evo, rnd)
    assert sum(e < r for e, r in zip(evo, rnd)) >= 6


def test_evolution_avoids_running_and_finished_points_on_finite_spaces():
    space = SearchSpace([Dim("a", "Categorical", values=tuple(range(4))), Dim("b", "Categorical", values=(0, 1))])
    s = EvolutionSearcher(space, EvolutionOptions(population_size=2, sample_size=1), seed=0)
    seen, running = set(), []
    for i in range(8):
        p = s.suggest(running)
        assert p is not None and params_key(p) not in seen
        seen.add(params_key(p))
        running.append(p)
        if len(running) == 2:
            done = running.pop(0)
            s.observe(done, float(done["a"]))
    assert s.suggest(running) is None and s.exhausted


def test_skopt_finds_the_minimum_of_a_1d_quadratic_within_a_few_calls():
    space = SearchSpace([Dim("x", "Real", -3.0, 3.0)])
    s = SkoptSearcher(space, SkoptOptions(n_initial_points=4, n_points=2000, n_restarts_optimizer=3),
                      optimize_mode="minimize", seed=0)
    xs = []
    for _ in range(10):
        p = s.suggest([])
        xs.append(p["x"])
        s.observe(p, (p["x"] - 1.2) ** 2)
    assert min(abs(x - 1.2) for x in xs) < 0.05, xs


def test_skopt_handles_mixed_spaces_pending_points_and_failures():
    space = SearchSpace([Dim("lr", "Real", 1e-4, 1.0, log=True), Dim("d", "Int", 2, 8, values=(2, 4, 6, 8)),
                         Dim("opt", "Categorical", values=("sgd", "adam", "rms"))])
    s = SkoptSearcher(space, SkoptOptions(n_initial_points=3, n_points=500, n_restarts_optimizer=1), seed=1)
    running = []
    for i in range(7):
        p = s.suggest(running)
        assert space.contains(p)
        running.append(p)
        if len(running) == 2:
            done = running.pop(0)
            s.observe(done, None if i == 3 else done["lr"])
    assert len(s.issued) == 7  # seven distinct points


def test_searchers_come_from_the_registry(tmp_path):
    from gml_core._internal.plugins import registry

    reg = registry("searcher")
    assert {"GridSearcher", "BatchSearcher", "RandomSearcher", "SkoptSearcher", "EvolutionSearcher",
            "BOSearcher", "TPESearcher"} <= set(reg.names())
    assert "AshaAssessor" in registry("assessor").names()
    assert reg.get("EvolutionSearcher") is EvolutionSearcher
    assert reg.entry("SkoptSearcher").distribution == "gml-hpo"
