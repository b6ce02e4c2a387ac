"""Search-space types, recursive flattening with stable keys, subnet parsing and one-line errors."""

import random

import pytest

from gml_core._internal.errors import ConfigError
from gml_nas.space import Categorical, Int, Real, SearchSpace


def test_item_types():
    c = Categorical([16, 24, 8], default=16)
    assert (c.max_value(), c.min_value(), c.default) == (24, 8, 16)
    names = Categorical(["a", "b"])
    assert (names.max_value(), names.min_value(), names.default) == ("b", "a", "b")
    i = Int(16, 33, 8)
    assert i.choices() == [16, 24, 32] and i.default == 32 and i.contains(24) and not i.contains(20)
    # both bounds inclusive, as in gml-hpo: the seed's "one past the last value" spelling means the same
    assert Int(16, 32, 8).choices() == [16, 24, 32]
    assert SearchSpace({"r": {"type": "Int", "lower": 192, "upper": 289, "step": 32}}).items["r"].choices() == \
        SearchSpace({"r": {"type": "Int", "lower": 192, "upper": 288, "step": 32}}).items["r"].choices() == \
        [192, 224, 256, 288]
    r = Real(0.5, 1.0)
    rng = random.Random(0)
    assert all(0.5 <= r.sample(rng) <= 1.0 for _ in range(50)) and r.choices() is None
    assert Real(0.5, 1.0, step=0.25).choices() == [0.5, 0.75, 1.0]


def test_nested_space_flattens_with_stable_keys():
    template = {
        "MB_out_channels": [{"type": "Categorical", "data": [8, 16]}, 24, {"type": "Int", "lower": 8, "upper": 17,
                                                                             "step": 8}],
        "nested": {"inner": [[{"type": "Real", "lower": 0.1, "upper": 0.5, "step": 0.2}]]},
        "fixed": 3,
    }
    space = SearchSpace(template)
    assert space.keys() == ["MB_out_channels[0]", "MB_out_channels[2]", "nested.inner[0][0]"]
    assert SearchSpace(template).keys() == space.keys()
    assert space.max() == {"MB_out_channels[0]": 16, "MB_out_channels[2]": 16, "nested.inner[0][0]": 0.5}
    assert space.resolve(space.min()) == {"MB_out_channels": [8, 24, 8], "nested": {"inner": [[0.1]]}, "fixed": 3}
    nested = space.nest(space.min())
    assert nested == {"MB_out_channels": [8, 24, 8], "nested": {"inner": [[0.1]]}}
    assert space.parse_subnet(nested) == space.min()
    assert space.parse_subnet({"MB_out_channels[0]": 8, "MB_out_channels[2]": 8, "nested.inner[0][0]": 0.1}) == \
        space.min()
    assert space.decode(space.encode(space.max())) == space.max()
    composed = SearchSpace.compose({"backbone": space})
    assert composed.keys()[0] == "backbone.MB_out_channels[0]"
    assert space.size() == 2 * 2 * 3


@pytest.mark.parametrize("template, path, message", [
    ({"x": {"type": "Int", "lower": 5, "upper": 4}}, "ss.x.upper", "must be at least lower"),
    ({"x": {"type": "Int", "lower": 1, "upper": 9, "step": 2, "default": 4}}, "ss.x.default", "1, 3, 5, 7"),
    ({"x": [{"type": "Categorical", "data": [1, 2], "default": 3}]}, "ss.x[0].default", "one of 1, 2"),
    ({"x": {"type": "Categorial", "data": [1]}}, "ss.x.type", "did you mean 'Categorical'"),
    ({"x": {"type": "Int", "lower": 1, "upper": 9, "stp": 2}}, "ss.x.stp", "did you mean 'step'"),
    ({"x": {"type": "Int", "lower": 1.5, "upper": 9}}, "ss.x.lower", "expected an integer"),
    ({"x": {"type": "Categorical", "data": []}}, "ss.x.data", "non-empty"),
    ({"x": {"type": "Real", "lower": 1.0, "upper": 0.5}}, "ss.x.upper", "must be greater"),
])
def test_bad_items_name_their_key_path(template, path, message):
    with pytest.raises(ConfigError) as info:
        SearchSpace(template, "ss")
    (got_path, got_msg), = info.value.problems
    assert got_path == path and message in got_msg


def test_subnet_that_does_not_match_the_space():
    space = SearchSpace({"c": [{"type": "Categorical", "data": [8, 16]}, 24], "k": {"type": "Int", "lower": 3,
                                                                                 "upper": 8, "step": 2}})
    with pytest.raises(ConfigError) as info:
        space.parse_subnet({"c": [12, 25], "kk": 5})
    text = str(info.value)
    assert "subnet.c[0]: 12 is not one of 8, 16" in text
    assert "subnet.c[1]: 25 does not match the fixed value 24" in text
    assert "subnet.kk: unknown search-space key (did you mean 'k'?)" in text
    assert "subnet.k: missing" in text
    with pytest.raises(ConfigError, match=r"subnet.k: 4 is not an integer in \[3, 8\] step 2: 3, 5, 7"):
        space.parse_subnet({"c[0]": 8, "k": 4})
