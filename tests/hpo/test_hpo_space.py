"""Search spaces, Grid/Batch/Random enumeration and sampling."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import pytest

from gml_hpo.searchers.batch import BatchSearcher
from gml_hpo.searchers.grid import GridSearcher
from gml_hpo.searchers.random_search import RandomSearcher
from gml_hpo.space import SearchSpace, params_key, parse_dim, render


def space_of(args: dict, cwd: Path = Path(".")) -> SearchSpace:
    problems: list = []
    dims = [parse_dim(k, v, f"task.search_args.{k}", cwd, problems) for k, v in args.items()]
    assert not problems, problems
    return SearchSpace(dims)


def drain(searcher, limit=10_000):
    out = []
    while len(out) < limit:
        p = searcher.suggest([])
        if p is None:
            break
        out.append(p)
    return out


def test_grid_enumerates_exactly_the_product_with_nested_and_file(tmp_path):
    for name in ("b.toml", "a.toml", "skip.txt"):
        (tmp_path / name).write_text("")
    space = space_of({
        "lr": {"type": "Real", "lower": 0.001, "upper": 0.1, "log": True, "num": 3},
        "depth": {"type": "Int", "lower": 2, "upper": 6, "step": 2},
        "arch": {"type": "Nested", "data": [{"width": 2, "d": 3}, {"width": 4, "d": 2}]},
        "cfg": {"type": "File", "path": "*.toml"},
        "opt": {"type": "Categorical", "data": ["sgd", "adam"]},
    }, tmp_path)
    assert space.by_name["lr"].values == (0.001, 0.01, 0.1)
    assert space.by_name["depth"].values == (2, 4, 6)
    assert space.by_name["cfg"].values == ("a.toml", "b.toml")
    got = drain(GridSearcher(space))
    expected = [dict(zip(["lr", "depth", "arch", "cfg", "opt"], combo)) for combo in itertools.product(
        (0.001, 0.01, 0.1), (2, 4, 6), ({"width": 2, "d": 3}, {"width": 4, "d": 2}), ("a.toml", "b.toml"),
        ("sgd", "adam"))]
    assert len(got) == 3 * 3 * 2 * 2 * 2 == len({params_key(p) for p in got})
    assert sorted(map(params_key, got)) == sorted(map(params_key, expected))
    assert GridSearcher(space).suggest([]) == expected[0]
    flat = space.flatten(got[0])
    assert flat == {"lr": 0.001, "depth": 2, "width": 2, "d": 3, "cfg": "a.toml", "opt": "sgd"}


def test_grid_skips_running_and_restored_points():
    space = space_of({"x": {"type": "Categorical", "data": [1, 2, 3, 4]}})
    s = GridSearcher(space)
    s.restore([({"x": 1}, 0.5)], [{"x": 2}])
    assert s.suggest([{"x": 3}]) == {"x": 4}
    assert s.suggest([]) is None and s.exhausted


def test_batch_runs_each_set_once_zipping_nested_args():
    space = space_of({
        "a": {"type": "Nested", "data": [{"lr": 0.1, "bs": 32}, {"lr": 0.2, "bs": 64}]},
        "b": {"type": "Nested", "data": [{"opt": "sgd"}, {"opt": "adam"}]},
    })
    got = drain(BatchSearcher(space))
    assert [space.flatten(p) for p in got] == [{"lr": 0.1, "bs": 32, "opt": "sgd"},
                                               {"lr": 0.2, "bs": 64, "opt": "adam"}]


def test_random_respects_bounds_log_and_step_and_reproduces_with_seed():
    space = space_of({
        "lr": {"type": "Real", "lower": 1e-4, "upper": 1.0, "log": True},
        "m": {"type": "Real", "lower": 0.5, "upper": 0.9},
        "depth": {"type": "Int", "lower": 2, "upper": 11, "step": 3},
        "bs": {"type": "Categorical", "data": [32, 64, 128]},
    })
    a = [RandomSearcher(space, seed=7).suggest([]) for _ in range(1)]
    s1, s2 = RandomSearcher(space, seed=7), RandomSearcher(space, seed=7)
    run1 = [s1.suggest([]) for _ in range(400)]
    run2 = [s2.suggest([]) for _ in range(400)]
    assert run1 == run2 and run1[0] == a[0]
    assert run1 != [RandomSearcher(space, seed=8).suggest([]) for _ in range(400)][:400]
    lrs = [p["lr"] for p in run1]
    assert all(1e-4 <= v <= 1.0 for v in lrs)
    assert all(0.5 <= p["m"] <= 0.9 for p in run1)
    assert {p["depth"] for p in run1} == {2, 5, 8, 11}
    assert {p["bs"] for p in run1} == {32, 64, 128}
    # log-uniform: each decade gets about a quarter of the samples
    decades = [math.floor(-math.log10(v)) for v in lrs if v < 1.0]
    counts = [decades.count(d) for d in range(4)]
    assert min(counts) > 60, counts


def test_random_has_no_duplicates_on_finite_spaces_and_exhausts():
    space = space_of({"a": {"type": "Int", "lower": 1, "upper": 3}, "b": {"type": "Categorical", "data": ["x", "y"]}})
    s = RandomSearcher(space, seed=0)
    got = drain(s)
    assert len(got) == 6 == len({params_key(p) for p in got})
    assert s.exhausted


def test_int_log_and_unit_encoding_round_trip():
    space = space_of({"n": {"type": "Int", "lower": 1, "upper": 1000, "log": True},
                      "lr": {"type": "Real", "lower": 1e-3, "upper": 1.0, "log": True}})
    rng = random.Random(0)
    ns = [space.sample(rng)["n"] for _ in range(300)]
    assert sum(n < 32 for n in ns) > 100  # log scale: half of the mass below sqrt(1000)
    for p in (space.sample(rng) for _ in range(20)):
        back = space.from_unit(space.to_unit(p))
        assert back["n"] == p["n"] and back["lr"] == pytest.approx(p["lr"])


def test_render_formats_values_as_typed_on_a_command_line():
    assert render("a={a} b={b} c={c:.2f} {{x}}", {"a": 0.1, "b": True, "c": 0.12345}) == "a=0.1 b=true c=0.12 {x}"
