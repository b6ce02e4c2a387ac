"""Evolution search: respects limits, beats random sampling on a synthetic score, resumes exactly."""

import json
import tomllib

import pytest

from gml_core._internal.errors import ConfigError, GmlUserError
from gml_nas.search import EvolutionSearch, random_search, random_subnets
from gml_nas.search_config import SearchConfig
from gml_nas.space import SearchSpace
from gml_nas.subnet_io import read_subnet, write_results

N_KEYS = 12
TARGET = [3, 1, 4, 1, 5, 0, 2, 6, 5, 3, 5, 0]


def space():
    return SearchSpace({"x": [{"type": "Int", "lower": 0, "upper": 7} for _ in range(N_KEYS)]})


def values(subnet):
    return [subnet[f"x[{i}]"] for i in range(N_KEYS)]


def score(subnet):
    return -sum((v - t) ** 2 for v, t in zip(values(subnet), TARGET))


COSTS = {"flops": lambda s: float(sum(values(s)))}
LIMIT = 36.0  # the target costs 35


def config(**kw):
    base = dict(population_size=16, top_k=4, generations=6, mutation_prob=0.15, crossover_ratio=0.5, seed=0)
    return SearchConfig(**{**base, **kw})


def test_evolution_respects_the_limit_and_beats_random_sampling():
    wins, evo_scores, rnd_scores = 0, [], []
    for seed in range(5):
        evo = EvolutionSearch(space(), score, COSTS, {"flops": LIMIT}, config(seed=seed))
        best = evo.run()
        assert all(COSTS["flops"](evo.subnets[k]) <= LIMIT for k in evo.scores)
        assert all(r["flops"] <= LIMIT for r in best) and len(best) == 4
        assert [r["score"] for r in best] == sorted((r["score"] for r in best), reverse=True)
        rnd = random_search(space(), score, COSTS, {"flops": LIMIT}, budget=len(evo.scores), seed=seed)
        assert rnd["flops"] <= LIMIT
        evo_scores.append(best[0]["score"])
        rnd_scores.append(rnd["score"])
        wins += best[0]["score"] > rnd["score"]
    assert wins >= 4 and sum(evo_scores) > sum(rnd_scores), (evo_scores, rnd_scores)


def test_interrupted_search_resumes_to_the_same_result(tmp_path):
    full = EvolutionSearch(space(), score, COSTS, {"flops": LIMIT}, config(generations=3)).run()
    calls = {"n": 0}

    def flaky(subnet):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return score(subnet)

    state = tmp_path / "state.json"
    with pytest.raises(KeyboardInterrupt):
        EvolutionSearch(space(), flaky, COSTS, {"flops": LIMIT}, config(generations=3), state).run()
    assert json.loads(state.read_text())["generation"] == 1
    resumed = EvolutionSearch(space(), score, COSTS, {"flops": LIMIT}, config(generations=3), state).run(resume=True)
    assert resumed == full
    with pytest.raises(GmlUserError, match="limits"):
        EvolutionSearch(space(), score, COSTS, {"flops": 30.0}, config(generations=3), state).run(resume=True)


def test_impossible_limit_is_a_clear_error():
    evo = EvolutionSearch(space(), score, COSTS, {"flops": -1.0}, config(max_sample_tries=20))
    with pytest.raises(GmlUserError, match="smallest subnet has flops 0"):
        evo.run()


def test_search_config_checks():
    with pytest.raises(ConfigError, match="top_k"):
        SearchConfig(top_k=30, population_size=10)
    with pytest.raises(ConfigError, match="algorithm.search.flops"):
        SearchConfig(flops="lots")
    assert SearchConfig(flops="1.5M").flops_limit == 1.5e6


def test_results_files_are_readable_and_validated(tmp_path):
    sp = space()
    best = EvolutionSearch(sp, score, COSTS, {"flops": LIMIT}, config(generations=2)).run()
    entries = [{"rank": i + 1, "score": r["score"], "flops": r["flops"], "arch": sp.nest(r["subnet"])}
               for i, r in enumerate(best)]
    toml_path, json_path = write_results(entries, tmp_path, header="test")
    assert tomllib.loads(toml_path.read_text())["subnets"][0]["arch"]["x"] == values(best[0]["subnet"])
    assert read_subnet(toml_path, sp) == best[0]["subnet"]
    assert read_subnet(json_path, sp, rank=2) == best[1]["subnet"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[arch]\nx = [1, 2]\n")
    with pytest.raises(ConfigError, match=r"bad.toml: arch.x: expected a list of 12 values"):
        read_subnet(bad, sp)
    with pytest.raises(GmlUserError, match="rank 9 not available"):
        read_subnet(toml_path, sp, rank=9)


def test_candidates_spend_the_budget():
    """Every scored candidate lies in [min_ratio * limit, limit]; min_ratio = 0 admits everything under it."""
    evo = EvolutionSearch(space(), score, COSTS, {"flops": LIMIT}, config(generations=3, min_ratio=0.9))
    evo.run()
    assert evo.scores and all(0.9 * LIMIT <= COSTS["flops"](evo.subnets[k]) <= LIMIT for k in evo.scores)
    loose = EvolutionSearch(space(), score, COSTS, {"flops": LIMIT}, config(generations=3, min_ratio=0.0))
    loose.run()
    assert min(COSTS["flops"](loose.subnets[k]) for k in loose.scores) < 0.9 * LIMIT
    # a limit above the largest subnet (cost 84) counts from the largest subnet's cost
    big = EvolutionSearch(space(), score, COSTS, {"flops": 1000.0}, config(generations=1, min_ratio=0.9))
    big.run()
    assert all(COSTS["flops"](big.subnets[k]) >= 0.9 * 84 for k in big.scores)
    with pytest.raises(ConfigError, match="algorithm.search.min_ratio"):
        SearchConfig(min_ratio=1.5)


def test_pareto_front_against_brute_force():
    import random

    from gml_nas.search import pareto_front

    rng = random.Random(0)
    points = [{"flops": rng.randint(0, 30), "score": rng.randint(0, 20), "id": i} for i in range(200)]
    front = pareto_front(points)

    def dominated(p):
        return any(q["flops"] <= p["flops"] and q["score"] >= p["score"] and
                   (q["flops"] < p["flops"] or q["score"] > p["score"]) for q in points)

    expected = {(p["flops"], p["score"]) for p in points if not dominated(p)}
    assert {(p["flops"], p["score"]) for p in front} == expected
    assert [p["flops"] for p in front] == sorted(p["flops"] for p in front)


def test_equal_scores_rank_the_larger_subnet_first():
    """A score counts correct images, so ties happen; among them the larger cost ranks first (searched and random)."""
    def flat(subnet):  # two levels of score only: many ties
        return float(sum(values(subnet)) > 20)

    evo = EvolutionSearch(space(), flat, COSTS, {"flops": LIMIT}, config(generations=2, min_ratio=0.0))
    best = evo.run()
    tied = [k for k, v in evo.scores.items() if v == best[0]["score"]]
    assert len(tied) > len(best)
    assert best[0]["flops"] == max(evo.costs[k]["flops"] for k in tied)
    assert [r["flops"] for r in best] == sorted((r["flops"] for r in best), reverse=True)
    rnd = random_search(space(), lambda s: 0.0, COSTS, {"flops": LIMIT}, budget=30, seed=0)
    drawn = random_search(space(), lambda s: COSTS["flops"](s), COSTS, {"flops": LIMIT}, budget=30, seed=0)
    assert rnd["flops"] == drawn["flops"]  # the same 30 draws: a constant score picks the most expensive
    draws = random_subnets(space(), COSTS, {"flops": LIMIT}, 30, seed=0)
    assert len({str(sorted(s.items())) for s, _ in draws}) == 30 and all(c["flops"] <= LIMIT for _, c in draws)
    assert rnd["flops"] == max(c["flops"] for _, c in draws)
