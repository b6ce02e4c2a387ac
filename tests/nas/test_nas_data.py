"""``search_split``: train / search-validation / test, stratified and disjoint."""

from collections import Counter

import pytest

from gml_core._internal.components import build
from gml_core._internal.config.spec import ComponentSpec
from gml_core._internal.errors import ConfigError


def _labels(ds):
    return [int(ds[i][1]) for i in range(len(ds))]


def test_search_split_holds_out_a_stratified_part_of_training():
    inner = build("dataset", ComponentSpec("digits", {"resize": 8}), "data")
    bundle = build("dataset", ComponentSpec("search_split", {"dataset": {"type": "digits", "resize": 8},
                                                             "search_ratio": 0.25, "seed": 1}), "data")
    assert len(bundle.train) + len(bundle.search) == len(inner.train) == 1437
    assert set(bundle.train.indices).isdisjoint(bundle.search.indices)
    assert bundle.val is not None and len(bundle.val) == len(inner.val)  # the test split is untouched
    whole, held = Counter(_labels(inner.train)), Counter(_labels(bundle.search))
    for cls, n in whole.items():  # stratified: every class held out in proportion (rounding aside)
        assert abs(held[cls] - 0.25 * n) <= 1.0
    again = build("dataset", ComponentSpec("search_split", {"dataset": {"type": "digits", "resize": 8},
                                                            "search_ratio": 0.25, "seed": 1}), "data")
    assert again.search.indices == bundle.search.indices


@pytest.mark.parametrize("args, where", [
    ({"dataset": {"type": "digits"}, "search_ratio": 1.0}, "data.search_ratio"),
    ({"dataset": {"type": "digits", "resize": -1}}, "data.dataset"),
    ({"dataset": {"type": "search_split"}}, "data.dataset.type"),
])
def test_search_split_errors_name_the_key(args, where):
    with pytest.raises(ConfigError) as info:
        build("dataset", ComponentSpec("search_split", args), "data")
    assert where in str(info.value)
