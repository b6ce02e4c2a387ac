"""Search spaces: the five argument types of a task file and their product.

A trial's ``params`` map each argument name to its value (a ``Nested`` argument's
value is the chosen dict); :meth:`SearchSpace.flatten` turns them into the
placeholder values used to render the template. Every dimension also has a
*unit* encoding in [0, 1] (log scale for ``log: true``) and, when finite, an index
encoding, used by the searchers.
"""

from __future__ import annotations

import glob
import itertools
import json
import math
import string
from pathlib import Path
from typing import Any, Iterator, Sequence

import attrs

ARG_TYPES = ("Real", "Int", "Categorical", "Nested", "File")
BUILTIN_PLACEHOLDERS = ("trial_dir", "trial_id")


def params_key(params: dict[str, Any]) -> str:
    """A canonical string for duplicate detection."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


@attrs.frozen
class Dim:
    """One search argument. ``values`` is None for a continuous Real."""

    name: str
    kind: str  # Real | Int | Categorical | Nested | File
    lower: float = 0.0
    upper: float = 1.0
    log: bool = False
    values: tuple | None = None

    @property
    def finite(self) -> bool:
        return self.values is not None

    @property
    def size(self) -> float:
        return len(self.values) if self.values is not None else math.inf

    @property
    def ordered(self) -> bool:
        """Real and Int have an order (mutations move locally); choices do not."""
        return self.kind in ("Real", "Int")

    def placeholders(self) -> list[str]:
        if self.kind == "Nested":
            return list(self.values[0]) if self.values else []
        return [self.name]

    # -- encodings -------------------------------------------------------------------
    def _warp(self, x: float) -> float:
        return math.log(x) if self.log else x

    def _unwarp(self, u: float) -> float:
        return math.exp(u) if self.log else u

    def to_unit(self, value: Any) -> float:
        if self.ordered:
            lo, hi = self._warp(self.lower), self._warp(self.upper)
            return (self._warp(float(value)) - lo) / (hi - lo)
        n = len(self.values)
        return 0.5 if n == 1 else self.index(value) / (n - 1)

    def from_unit(self, u: float) -> Any:
        u = min(1.0, max(0.0, float(u)))
        if not self.ordered:
            return self.values[int(round(u * (len(self.values) - 1)))]
        lo, hi = self._warp(self.lower), self._warp(self.upper)
        x = min(self.upper, max(self.lower, self._unwarp(lo + u * (hi - lo))))
        if self.values is None:
            return x
        wx = self._warp(x)
        return min(self.values, key=lambda v: abs(self._warp(float(v)) - wx))

    def index(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            if v == value:
                return i
        raise ValueError(f"{value!r} is not a value of search arg '{self.name}'")

    def sample(self, rng) -> Any:
        """A random value: uniform (log-uniform with ``log``) or a uniform choice."""
        if self.finite and not (self.ordered and self.log):
            return self.values[rng.randrange(len(self.values))]
        return self.from_unit(rng.random())


_KEYS = {
    "Nested": {"type", "data"},
    "File": {"type", "path"},
}


def parse_dim(name: str, spec: Any, path: str, cwd: Path, problems: list[tuple[str, str]]) -> Dim | None:
    """Validate one ``search_args`` entry; append ``(key_path, message)`` problems."""
    from gml_core.api import did_you_mean, one_of
    if not isinstance(spec, dict):
        problems.append((path, f"expected a table with a 'type' key ({one_of(ARG_TYPES)}), got {spec!r}"))
        return None
    kind = spec.get("type")
    if kind not in ARG_TYPES:
        problems.append((f"{path}.type", f"unknown search arg type {kind!r}{did_you_mean(str(kind), ARG_TYPES)}; "
                                        f"accepted: {one_of(ARG_TYPES)}"))
        return None
    start = len(problems)
    if kind in ("Real", "Int", "Categorical"):
        # one meaning of every bound in gml: gml-core parses Int/Real/Categorical for NAS and HPO alike
        from gml_core.api import space_item

        if kind == "Categorical" and isinstance(spec.get("data"), list):
            for i, item in enumerate(spec["data"]):
                if isinstance(item, (dict, list)):
                    problems.append((f"{path}.data[{i}]",
                                     "Categorical values are plain values; use Nested to set several args"))
            if len(problems) > start:
                return None
        item = space_item(spec, path, problems)
        if item is None:
            return None
        values = item.choices()
        if kind == "Categorical":
            return Dim(name, kind, values=tuple(values))
        return Dim(name, kind, float(item.lower), float(item.upper), bool(item.log),
                   tuple(values) if values is not None else None)
    for key in sorted(set(spec) - _KEYS[kind]):
        problems.append((f"{path}.{key}", f"unknown key for {kind}{did_you_mean(key, _KEYS[kind])}; "
                                          f"accepted keys: {one_of(_KEYS[kind])}"))
    if kind == "Nested":
        data = spec.get("data")
        if not isinstance(data, list) or not data:
            problems.append((f"{path}.data", f"expected a non-empty list, got {data!r}"))
            return None
        keys = None
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not item:
                problems.append((f"{path}.data[{i}]", f"expected a table of placeholder values, got {item!r}"))
            elif keys is None:
                keys = set(item)
            elif set(item) != keys:
                problems.append((f"{path}.data[{i}]", f"keys {sorted(item)} differ from data[0]'s {sorted(keys)}"))
        if len(problems) > start:
            return None
        seen: set[str] = set()
        for i, item in enumerate(data):
            key = params_key({"v": item})
            if key in seen:
                problems.append((f"{path}.data[{i}]", f"duplicate value {item!r}"))
            seen.add(key)
        return Dim(name, kind, values=tuple(data)) if len(problems) == start else None
    pattern = spec.get("path")
    if not isinstance(pattern, str) or not pattern:
        problems.append((f"{path}.path", f"expected a glob pattern string, got {pattern!r}"))
        return None
    full = pattern if Path(pattern).is_absolute() else str(cwd / pattern)
    matches = sorted(glob.glob(full, recursive=True))
    if not matches:
        problems.append((f"{path}.path", f"no file matches {pattern!r} (relative to {cwd})"))
        return None
    rel = [str(Path(m).relative_to(cwd)) if not Path(pattern).is_absolute() else m for m in matches]
    return Dim(name, kind, values=tuple(rel))


class SearchSpace:
    """An ordered set of dimensions and the template they fill."""

    def __init__(self, dims: Sequence[Dim]):
        self.dims = list(dims)
        self.by_name = {d.name: d for d in self.dims}

    def __len__(self) -> int:
        return len(self.dims)

    @property
    def finite(self) -> bool:
        return all(d.finite for d in self.dims)

    @property
    def size(self) -> float:
        return math.prod(d.size for d in self.dims) if self.dims else 1

    def placeholders(self) -> list[str]:
        return [p for d in self.dims for p in d.placeholders()]

    def flatten(self, params: dict[str, Any]) -> dict[str, Any]:
        """Placeholder values of ``params`` (a Nested choice expands into its keys)."""
        out: dict[str, Any] = {}
        for d in self.dims:
            v = params[d.name]
            if d.kind == "Nested":
                out.update(v)
            else:
                out[d.name] = v
        return out

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every point of a finite space, the last dimension varying fastest."""
        for combo in itertools.product(*(d.values for d in self.dims)):
            yield {d.name: v for d, v in zip(self.dims, combo)}

    def sample(self, rng) -> dict[str, Any]:
        return {d.name: d.sample(rng) for d in self.dims}

    def to_unit(self, params: dict[str, Any]) -> list[float]:
        return [d.to_unit(params[d.name]) for d in self.dims]

    def from_unit(self, units: Sequence[float]) -> dict[str, Any]:
        return {d.name: d.from_unit(u) for d, u in zip(self.dims, units)}

    def contains(self, params: dict[str, Any]) -> bool:
        if set(params) != set(self.by_name):
            return False
        for d in self.dims:
            v = params[d.name]
            if d.finite:
                if not any(v == x for x in d.values):
                    return False
            elif not (isinstance(v, (int, float)) and not isinstance(v, bool) and d.lower <= v <= d.upper):
                return False
        return True


def template_fields(template: str) -> list[str]:
    """Placeholder names used in a template (``{{`` escapes a brace)."""
    names = []
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            names.append(field)
    return names


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class _Formatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return format(value, format_spec) if format_spec else format_value(value)


def render(template: str, values: dict[str, Any]) -> str:
    """Fill a template; a value without format spec is written as typed on a command line
    (floats in full precision, booleans as ``true``/``false``)."""
    return _Formatter().vformat(template, (), values)
