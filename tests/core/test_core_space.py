"""gml-core's search-space items: one meaning of every bound (closed intervals), encodings, errors."""

import math
import random

import numpy as np
import pytest

from gml_core.api import Categorical, ConfigError, Int, Real, space_item


def test_int_is_a_closed_interval_on_a_grid_from_lower():
    assert Int(16, 32, 8).choices() == list(range(16, 33, 8))
    assert Int(192, 289, 32).choices() == Int(192, 288, 32).choices() == [192, 224, 256, 288]
    assert Int(5, 5).choices() == [5]
    item = Int(1, 9, 2)
    assert [item.contains(v) for v in (1, 2, 9, 11, True)] == [True, False, True, False, False]


def test_real_grids_match_numpy():
    assert Real(0.0, 1.0, step=0.25).choices() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert np.allclose(Real(1e-4, 1e-1, num=4, log=True).choices(), np.geomspace(1e-4, 1e-1, 4))
    assert np.allclose(Real(0.0, 2.0, num=5).choices(), np.linspace(0.0, 2.0, 5))


def test_unit_encoding_round_trips_and_uses_the_log_scale():
    r = Real(1e-4, 1.0, log=True)
    assert math.isclose(r.to_unit(1e-2), 0.5)  # log10 midpoint of [1e-4, 1]
    assert math.isclose(r.from_unit(0.25), 1e-3)
    i = Int(1, 1000, log=True)
    assert i.from_unit(0.5) in (31, 32)  # nearest grid value to sqrt(1000) on the log scale
    c = Categorical(["a", "b", "c"])
    assert [c.from_unit(c.to_unit(v)) for v in "abc"] == list("abc")
    rng = random.Random(0)
    draws = [i.sample(rng) for _ in range(2000)]
    assert 0.4 < sum(d < 32 for d in draws) / len(draws) < 0.6  # log-uniform: half the mass below sqrt(1000)


@pytest.mark.parametrize("table, path, message", [
    ({"type": "Int", "lower": 5, "upper": 4}, "x.upper", "must be at least lower (5); both bounds are inclusive"),
    ({"type": "Real", "lower": 1.0, "upper": 1.0}, "x.upper", "must be greater than lower"),
    ({"type": "Int", "lower": 1, "upper": 9, "step": 2, "default": 4}, "x.default", "1, 3, 5, 7, 9"),
    ({"type": "Int", "lower": 1.5, "upper": 9}, "x.lower", "expected an integer"),
    ({"type": "Real", "lower": 0, "upper": 1, "log": True}, "x.lower", "log scale needs lower > 0"),
    ({"type": "Categorical", "data": []}, "x.data", "non-empty"),
    ({"type": "Categorical", "data": [1, 1]}, "x.data[1]", "duplicate value 1"),
    ({"type": "Categorial", "data": [1]}, "x.type", "did you mean 'Categorical'"),
    ({"type": "Int", "lower": 1, "upper": 9, "stp": 2}, "x.stp", "did you mean 'step'"),
])
def test_bad_tables_name_their_key_path(table, path, message):
    with pytest.raises(ConfigError) as info:
        space_item(table, "x")
    (got_path, got_message), = info.value.problems
    assert got_path == path and message in got_message


def test_extremes_follow_size_for_numbers_and_listing_for_names():
    ops = Categorical(["shuffle_3x3", "shuffle_7x7", "xception"])
    assert not ops.extremes_by_size and (ops.min_value(), ops.max_value()) == ("shuffle_3x3", "xception")
    widths = Categorical([16, 8, 12])
    assert widths.extremes_by_size and (widths.min_value(), widths.max_value()) == (8, 16)
    assert Int(2, 6).extremes_by_size and not Categorical([True, False]).extremes_by_size
