"""Search-space types and their recursive resolution into one flat space.

A search space is any nesting of dicts and lists whose leaves are either fixed
values or gml-core's search-space tables (``gml_core.api.space_item``):
``{type = "Categorical", data = [...], default = ...}``,
``{type = "Int", lower, upper, step, default}`` or ``{type = "Real", lower, upper, step,
default}``, both closed intervals (upper inclusive) in NAS and HPO alike. Leaves get stable
flat keys such as ``backbone.MB_out_channels[2]`` (config order, list indices in brackets).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

from gml_core.api import Categorical, ConfigError, Int, Real, SpaceItem, did_you_mean, join_path, one_of, space_item


def _parse_tree(node: Any, path: str, problems: list) -> Any:
    if isinstance(node, SpaceItem):
        return node
    if isinstance(node, Mapping):
        if "type" in node and isinstance(node["type"], str):
            return space_item(node, path, problems)
        return {str(k): _parse_tree(v, join_path(path, k), problems) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_parse_tree(v, join_path(path, i), problems) for i, v in enumerate(node)]
    return node


def _walk(node: Any, key: str) -> Iterator[tuple[str, SpaceItem]]:
    if isinstance(node, SpaceItem):
        yield key, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, join_path(key, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, join_path(key, i))


def _has_items(node: Any) -> bool:
    return any(True for _ in _walk(node, ""))


class SearchSpace:
    """A nested template of fixed values and ``SpaceItem`` leaves, plus its flat view ``items``."""

    def __init__(self, template: Any = None, path: str = ""):
        problems: list[tuple[str, str]] = []
        self.tree = _parse_tree({} if template is None else template, path, problems)
        if problems:
            raise ConfigError(problems)
        self.items: dict[str, SpaceItem] = dict(_walk(self.tree, ""))

    @classmethod
    def compose(cls, parts: Mapping[str, "SearchSpace"]) -> "SearchSpace":
        """One space from named sub-spaces (``{"backbone": sp, ...}``); keys get the name as prefix."""
        return cls({name: sp.tree for name, sp in parts.items()})

    def __len__(self) -> int:
        return len(self.items)

    def keys(self) -> list[str]:
        return list(self.items)

    def default(self) -> dict[str, Any]:
        return {k: it.default for k, it in self.items.items()}

    def max(self) -> dict[str, Any]:
        return {k: it.max_value() for k, it in self.items.items()}

    def min(self) -> dict[str, Any]:
        return {k: it.min_value() for k, it in self.items.items()}

    def resolve(self, values: Mapping[str, Any] | None = None, fill: str = "default") -> Any:
        """The plain nested configuration with every leaf replaced by its value (missing: ``fill``)."""
        values = values or {}
        filler = {"default": self.default, "max": self.max, "min": self.min}[fill]()

        def sub(node: Any, key: str) -> Any:
            if isinstance(node, SpaceItem):
                return values.get(key, filler[key])
            if isinstance(node, dict):
                return {k: sub(v, join_path(key, k)) for k, v in node.items()}
            if isinstance(node, list):
                return [sub(v, join_path(key, i)) for i, v in enumerate(node)]
            return node

        return sub(self.tree, "")

    def nest(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Readable nested form of a subnet: every sub-tree that holds a searchable leaf, resolved."""
        full = self.resolve(values)

        def prune(node: Any, plain: Any) -> Any:
            if isinstance(node, dict):
                return {k: prune(v, plain[k]) for k, v in node.items() if _has_items(v)}
            return plain

        return prune(self.tree, full)

    def check(self, values: Mapping[str, Any], path: str = "subnet") -> dict[str, Any]:
        """Validate a flat subnet (every key, every value); returns it as a plain dict."""
        problems: list[tuple[str, str]] = []

        def where(key: str) -> str:
            return f"{path}.{key}" if path else key

        for key in values:
            if key not in self.items:
                problems.append((where(key), f"unknown search-space key{did_you_mean(key, self.items)}; "
                                 f"keys: {one_of(self.items)}"))
        for key, item in self.items.items():
            if key not in values:
                problems.append((where(key), f"missing; expected {item.describe()}"))
            elif not item.contains(values[key]):
                problems.append((where(key), f"{values[key]!r} is not {item.describe()}"))
        if problems:
            raise ConfigError(problems)
        return {k: values[k] for k in self.items}

    def parse_subnet(self, data: Mapping[str, Any], path: str = "subnet") -> dict[str, Any]:
        """A subnet given flat (``{"backbone.x[0]": 16}``) or nested like ``nest``; validated and flattened."""
        if not isinstance(data, Mapping):
            raise ConfigError([(path, f"expected a table of architecture choices, got {data!r}")])
        if data and (all(k in self.items for k in data) or any("." in k or "[" in k for k in data)):
            return self.check(dict(data), path)
        problems: list[tuple[str, str]] = []
        flat: dict[str, Any] = {}
        self._flatten(self.tree, data, "", path, flat, problems)
        if problems:
            raise ConfigError(problems)
        return {k: flat[k] for k in self.items}

    def _flatten(self, node: Any, data: Any, key: str, where: str, flat: dict, problems: list) -> None:
        if isinstance(node, SpaceItem):
            if isinstance(data, float) and data.is_integer() and node.type_name != "Real":
                data = int(data)
            if not node.contains(data):
                problems.append((where, f"{data!r} is not {node.describe()}"))
            else:
                flat[key] = data
        elif isinstance(node, dict):
            wanted = [k for k, v in node.items() if _has_items(v)]
            if not isinstance(data, Mapping):
                problems.append((where, f"expected a table with keys {one_of(wanted)}, got {data!r}"))
                return
            for k in data:
                if k not in node:
                    problems.append((join_path(where, k), f"unknown search-space key{did_you_mean(k, node)}; "
                                     f"accepted: {one_of(node)}"))
            for k, v in node.items():
                if k in data:
                    self._flatten(v, data[k], join_path(key, k), join_path(where, k), flat, problems)
                elif _has_items(v):
                    problems.append((join_path(where, k), "missing from the subnet"))
        elif isinstance(node, list):
            if not isinstance(data, (list, tuple)) or len(data) != len(node):
                problems.append((where, f"expected a list of {len(node)} values, got {data!r}"))
                return
            for i, (v, d) in enumerate(zip(node, data)):
                self._flatten(v, d, join_path(key, i), join_path(where, i), flat, problems)
        elif data != node:
            problems.append((where, f"{data!r} does not match the fixed value {node!r} of the search space"))

    def encode(self, values: Mapping[str, Any]) -> list[float]:
        return [self.items[k].encode(values[k]) for k in self.items]

    def decode(self, codes: Sequence[float]) -> dict[str, Any]:
        return {k: it.decode(c) for (k, it), c in zip(self.items.items(), codes)}

    def size(self) -> float:
        """Number of distinct subnets (``inf`` with a continuous ``Real``)."""
        total = 1.0
        for it in self.items.values():
            ch = it.choices()
            total *= len(ch) if ch else math.inf
        return total


def subnet_key(values: Mapping[str, Any]) -> str:
    """A hashable, order-stable text form of a subnet."""
    return ";".join(f"{k}={values[k]!r}" for k in sorted(values))


__all__ = ["Categorical", "Int", "Real", "SearchSpace", "SpaceItem", "subnet_key"]
