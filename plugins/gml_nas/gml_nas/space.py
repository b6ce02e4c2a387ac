"""Search-space types and their recursive resolution into one flat space.

A search space is any nesting of dicts and lists whose leaves are either fixed
values or tables ``{type = "Categorical", data = [...], default = ...}``,
``{type = "Int", lower, upper, step, default}`` (``upper`` exclusive, like
``range``) or ``{type = "Real", lower, upper, step, default}`` (closed interval,
``step`` optional). Leaves get stable flat keys such as
``backbone.MB_out_channels[2]`` (config order, list indices in brackets).
"""

from __future__ import annotations

import math
import random
from typing import Any, Iterator, Mapping, Sequence

from gml_core.api import ConfigError, did_you_mean, join_path, one_of

SPACE_TYPES = ("Categorical", "Int", "Real")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


class SpaceItem:
    """One searchable dimension: its choices, default, extremes and sampling."""

    type_name = ""
    default: Any

    def choices(self) -> list[Any] | None:
        """Every value (``None`` for a continuous ``Real``)."""
        raise NotImplementedError

    def max_value(self) -> Any:
        raise NotImplementedError

    def min_value(self) -> Any:
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.choices())

    def contains(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) or (_is_number(value) and _is_number(c) and value == c)
                   for c in self.choices())

    def encode(self, value: Any) -> float:
        """A float that identifies ``value`` (its index), for broadcasting."""
        return float(self.choices().index(value))

    def decode(self, code: float) -> Any:
        return self.choices()[int(round(code))]

    def describe(self) -> str:
        return f"one of {', '.join(_fmt(c) for c in self.choices())}"

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.type_name}({self.to_dict()})"


class Categorical(SpaceItem):
    """A finite list of values; max/min are numeric extremes (else the last/first listed)."""

    type_name = "Categorical"

    def __init__(self, data: Sequence[Any], default: Any = None):
        self.data = list(data)
        self.default = self.max_value() if default is None else default

    def choices(self) -> list[Any]:
        return list(self.data)

    def max_value(self) -> Any:
        return max(self.data) if all(_is_number(d) for d in self.data) else self.data[-1]

    def min_value(self) -> Any:
        return min(self.data) if all(_is_number(d) for d in self.data) else self.data[0]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Categorical", "data": list(self.data), "default": self.default}


class Int(SpaceItem):
    """``range(lower, upper, step)``: ``Int(16, 33, 8)`` is 16, 24, 32."""

    type_name = "Int"

    def __init__(self, lower: int, upper: int, step: int = 1, default: int | None = None):
        self.lower, self.upper, self.step = lower, upper, step
        self.default = self.max_value() if default is None else default

    def choices(self) -> list[int]:
        return list(range(self.lower, self.upper, self.step))

    def max_value(self) -> int:
        return self.choices()[-1]

    def min_value(self) -> int:
        return self.lower

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value in self.choices()

    def encode(self, value: Any) -> float:
        return float(value)

    def decode(self, code: float) -> Any:
        return int(round(code))

    def describe(self) -> str:
        return f"an integer in range({self.lower}, {self.upper}, {self.step}): {', '.join(map(str, self.choices()))}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Int", "lower": self.lower, "upper": self.upper, "step": self.step, "default": self.default}


class Real(SpaceItem):
    """A closed interval ``[lower, upper]``, continuous or on a ``step`` grid from ``lower``."""

    type_name = "Real"

    def __init__(self, lower: float, upper: float, step: float | None = None, default: float | None = None):
        self.lower, self.upper, self.step = float(lower), float(upper), step
        self.default = self.max_value() if default is None else float(default)

    def choices(self) -> list[float] | None:
        if not self.step:
            return None
        n = int(math.floor((self.upper - self.lower) / self.step + 1e-9))
        return [round(self.lower + i * self.step, 12) for i in range(n + 1)]

    def max_value(self) -> float:
        grid = self.choices()
        return grid[-1] if grid else self.upper

    def min_value(self) -> float:
        return self.lower

    def sample(self, rng: random.Random) -> float:
        grid = self.choices()
        return rng.choice(grid) if grid else rng.uniform(self.lower, self.upper)

    def contains(self, value: Any) -> bool:
        if not _is_number(value):
            return False
        grid = self.choices()
        if grid:
            return any(abs(value - g) < 1e-9 for g in grid)
        return self.lower - 1e-12 <= value <= self.upper + 1e-12

    def encode(self, value: Any) -> float:
        return float(value)

    def decode(self, code: float) -> float:
        return float(code)

    def describe(self) -> str:
        grid = self.choices()
        if grid:
            return f"a number in [{self.lower}, {self.upper}] step {self.step}: {', '.join(map(str, grid))}"
        return f"a number in [{self.lower}, {self.upper}]"

    def to_dict(self) -> dict[str, Any]:
        out = {"type": "Real", "lower": self.lower, "upper": self.upper, "default": self.default}
        if self.step:
            out["step"] = self.step
        return out


_ARGS = {
    "Categorical": (("data",), ("default",)),
    "Int": (("lower", "upper"), ("step", "default")),
    "Real": (("lower", "upper"), ("step", "default")),
}


def parse_item(spec: Mapping[str, Any], path: str, problems: list[tuple[str, str]]) -> SpaceItem | None:
    """Build one item from its table, appending ``(key_path, message)`` problems."""
    kind = spec.get("type")
    if kind not in _ARGS:
        problems.append((join_path(path, "type"), f"unknown search-space type {kind!r}"
                         f"{did_you_mean(str(kind), SPACE_TYPES)}; accepted: {one_of(SPACE_TYPES)}"))
        return None
    required, optional = _ARGS[kind]
    n_before = len(problems)
    for key in spec:
        if key != "type" and key not in required + optional:
            problems.append((join_path(path, key), f"unknown key for {kind}{did_you_mean(key, required + optional)}; "
                             f"accepted keys: {one_of(required + optional)}"))
    for key in required:
        if key not in spec:
            problems.append((join_path(path, key), f"required key of {kind} is missing"))
    if len(problems) > n_before:
        return None
    if kind == "Categorical":
        return _categorical(spec, path, problems)
    if kind == "Int":
        return _int(spec, path, problems)
    return _real(spec, path, problems)


def _categorical(spec: Mapping[str, Any], path: str, problems: list) -> SpaceItem | None:
    data = spec["data"]
    if not isinstance(data, (list, tuple)) or not data:
        problems.append((join_path(path, "data"), f"expected a non-empty list of values, got {data!r}"))
        return None
    if len({repr(d) for d in data}) != len(data):
        problems.append((join_path(path, "data"), f"values must be unique, got {list(data)}"))
        return None
    item = Categorical(data, spec.get("default"))
    if "default" in spec and not item.contains(spec["default"]):
        problems.append((join_path(path, "default"), f"default {spec['default']!r} is not {item.describe()}"))
        return None
    return item


def _int(spec: Mapping[str, Any], path: str, problems: list) -> SpaceItem | None:
    bad = [k for k in ("lower", "upper", "step", "default") if k in spec
           and (not isinstance(spec[k], int) or isinstance(spec[k], bool))]
    for k in bad:
        problems.append((join_path(path, k), f"expected an integer, got {spec[k]!r}"))
    if bad:
        return None
    lower, upper, step = spec["lower"], spec["upper"], spec.get("step", 1)
    if step <= 0:
        problems.append((join_path(path, "step"), f"step must be positive, got {step}"))
        return None
    if upper <= lower:
        problems.append((join_path(path, "upper"), f"upper ({upper}) must be greater than lower ({lower}); "
                         "upper is exclusive like range()"))
        return None
    item = Int(lower, upper, step, spec.get("default"))
    if "default" in spec and not item.contains(spec["default"]):
        problems.append((join_path(path, "default"), f"default {spec['default']} is not {item.describe()}"))
        return None
    return item


def _real(spec: Mapping[str, Any], path: str, problems: list) -> SpaceItem | None:
    bad = [k for k in ("lower", "upper", "step", "default") if k in spec and not _is_number(spec[k])]
    for k in bad:
        problems.append((join_path(path, k), f"expected a number, got {spec[k]!r}"))
    if bad:
        return None
    lower, upper, step = spec["lower"], spec["upper"], spec.get("step")
    if upper <= lower:
        problems.append((join_path(path, "upper"), f"upper ({upper}) must be greater than lower ({lower})"))
        return None
    if step is not None and step <= 0:
        problems.append((join_path(path, "step"), f"step must be positive, got {step}"))
        return None
    item = Real(lower, upper, step, spec.get("default"))
    if "default" in spec and not item.contains(spec["default"]):
        problems.append((join_path(path, "default"), f"default {spec['default']} is not {item.describe()}"))
        return None
    return item


def _parse_tree(node: Any, path: str, problems: list) -> Any:
    if isinstance(node, SpaceItem):
        return node
    if isinstance(node, Mapping):
        if "type" in node and isinstance(node["type"], str):
            return parse_item(node, path, problems)
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
