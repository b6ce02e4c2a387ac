"""``search_split``: three splits for one-shot NAS (train / search-validation / test).

``[data] type = "search_split"`` wraps any dataset table (``dataset = {type = "digits", ...}``):
a stratified ``search_ratio`` of its training split is held out as the search split; the
supernet trains on the rest; its validation split becomes the test split. ``gml nas search``
scores candidates on the search split, and ``gml nas export`` reports the chosen subnet on the
test split, which no decision has seen, so the reported figure is not selection-biased.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import attrs
from torch.utils.data import Dataset, Subset

from gml_core.api import ConfigError, DataBundle, GmlUserError


@attrs.frozen
class SearchSplitBundle(DataBundle):
    """A ``DataBundle`` (train, val = the test split, info) plus the held-out ``search`` split."""

    search: Optional[Dataset] = None


def _labels(dataset: Dataset) -> list[int]:
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None and len(tensors) == 2:
        return [int(v) for v in tensors[1]]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def held_out_indices(labels: list[int], ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, search) indices: a stratified, seeded split (scikit-learn's ``train_test_split``)."""
    from sklearn.model_selection import train_test_split

    idx = list(range(len(labels)))
    train, search = train_test_split(idx, test_size=ratio, random_state=seed, stratify=labels)
    return sorted(train), sorted(search)


def search_split(dataset: Mapping[str, Any], search_ratio: float = 0.2, seed: int = 0) -> SearchSplitBundle:
    """Hold out ``search_ratio`` of ``dataset``'s training split (stratified by class, ``seed``)."""
    from gml_core.api import build_component

    if not 0.0 < search_ratio < 1.0:
        raise ConfigError([("search_ratio", f"must be between 0 and 1 (exclusive), got {search_ratio}")])
    if not isinstance(dataset, Mapping) or "type" not in dataset:
        raise ConfigError([("dataset", "must be a dataset table with a type, e.g. { type = \"digits\" }")])
    if dataset["type"] in ("search_split", "gml.search_split"):
        raise ConfigError([("dataset.type", "search_split cannot wrap itself")])
    try:
        inner = build_component("dataset", dict(dataset), "dataset")
    except GmlUserError as exc:  # the core's datasets name their keys "data.<key>": here they sit deeper
        key, _, message = str(exc).partition(": ")
        if not key.startswith("data.") or not message:
            raise
        raise ConfigError([("dataset." + key[len("data."):], message)]) from None
    train_idx, search_idx = held_out_indices(_labels(inner.train), search_ratio, seed)
    return SearchSplitBundle(Subset(inner.train, train_idx), inner.val, inner.info,
                             search=Subset(inner.train, search_idx))


__all__ = ["SearchSplitBundle", "held_out_indices", "search_split"]
