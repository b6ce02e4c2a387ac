"""Search-space dimensions shared by NAS and HPO: ``Int``, ``Real`` and ``Categorical``.

One meaning everywhere: ``lower`` and ``upper`` are both inclusive (a closed interval), for
``Int`` and ``Real`` alike; ``step`` puts the values on a grid that starts at ``lower``
(``Int(192, 289, 32)`` and ``Int(192, 288, 32)`` are both 192, 224, 256, 288). ``log`` samples
and encodes on a log scale. Every dimension has a *unit* encoding in [0, 1] for model-based
searchers (``to_unit`` / ``from_unit``). Tables are parsed by :func:`space_item`, which
reports every problem with its key path. Torch-free.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Sequence

from .config.converter import join_path
from .errors import ConfigError, did_you_mean, one_of

SPACE_TYPES = ("Categorical", "Int", "Real")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class SpaceItem:
    """One searchable dimension: its values, default, extremes, sampling and encodings."""

    type_name = ""
    default: Any
    log = False

    @property
    def ordered(self) -> bool:
        """Numbers have an order (local moves make sense); categorical choices do not."""
        return False

    def choices(self) -> list[Any] | None:
        """Every value (``None`` for a continuous ``Real``)."""
        raise NotImplementedError

    @property
    def extremes_by_size(self) -> bool:
        """``max_value`` / ``min_value`` are the largest / smallest value (else the last / first listed)."""
        return True

    @property
    def finite(self) -> bool:
        return self.choices() is not None

    @property
    def size(self) -> float:
        values = self.choices()
        return len(values) if values is not None else math.inf

    def max_value(self) -> Any:
        raise NotImplementedError

    def min_value(self) -> Any:
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Any:
        """A uniform choice (log-uniform for ``log`` numbers)."""
        return rng.choice(self.choices())

    def contains(self, value: Any) -> bool:
        return any((value == c and type(value) is type(c)) or (is_number(value) and is_number(c) and value == c)
                   for c in self.choices())

    def index(self, value: Any) -> int:
        for i, choice in enumerate(self.choices() or ()):
            if choice == value:
                return i
        raise ValueError(f"{value!r} is not {self.describe()}")

    def to_unit(self, value: Any) -> float:
        """``value`` mapped into [0, 1] (the index scaled, for categorical choices)."""
        n = len(self.choices())
        return 0.5 if n == 1 else self.index(value) / (n - 1)

    def from_unit(self, unit: float) -> Any:
        """The value nearest to ``unit`` in [0, 1] (inverse of ``to_unit``)."""
        values = self.choices()
        return values[int(round(min(1.0, max(0.0, float(unit))) * (len(values) - 1)))]

    def encode(self, value: Any) -> float:
        """A float that identifies ``value`` exactly (for broadcasting between ranks)."""
        return float(self.index(value))

    def decode(self, code: float) -> Any:
        return self.choices()[int(round(code))]

    def describe(self) -> str:
        return f"one of {', '.join(_fmt(c) for c in self.choices())}"

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.type_name}({self.to_dict()})"

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))


class Categorical(SpaceItem):
    """A finite list of values; max/min are the numeric extremes (else the last/first listed)."""

    type_name = "Categorical"

    def __init__(self, data: Sequence[Any], default: Any = None):
        self.data = list(data)
        self.default = self.max_value() if default is None else default

    def choices(self) -> list[Any]:
        return list(self.data)

    @property
    def extremes_by_size(self) -> bool:
        return all(is_number(d) for d in self.data)

    def max_value(self) -> Any:
        return max(self.data) if self.extremes_by_size else self.data[-1]

    def min_value(self) -> Any:
        return min(self.data) if self.extremes_by_size else self.data[0]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Categorical", "data": list(self.data), "default": self.default}


class _Numeric(SpaceItem):
    lower: float
    upper: float

    @property
    def ordered(self) -> bool:
        return True

    def _warp(self, x: float) -> float:
        return math.log(x) if self.log else x

    def to_unit(self, value: Any) -> float:
        lo, hi = self._warp(self.lower), self._warp(self.upper)
        return 0.5 if hi == lo else (self._warp(float(value)) - lo) / (hi - lo)

    def from_unit(self, unit: float) -> Any:
        unit = min(1.0, max(0.0, float(unit)))
        lo, hi = self._warp(self.lower), self._warp(self.upper)
        w = lo + unit * (hi - lo)
        x = min(self.upper, max(self.lower, math.exp(w) if self.log else w))
        values = self.choices()
        if values is None:
            return x
        return min(values, key=lambda v: abs(self._warp(float(v)) - w))

    def sample(self, rng: random.Random) -> Any:
        values = self.choices()
        if values is not None and not self.log:
            return rng.choice(values)
        return self.from_unit(rng.random())

    def encode(self, value: Any) -> float:
        return float(value)


class Int(_Numeric):
    """Integers from ``lower`` to ``upper`` (both inclusive) every ``step``: ``Int(16, 32, 8)`` is 16, 24, 32."""

    type_name = "Int"

    def __init__(self, lower: int, upper: int, step: int = 1, default: int | None = None, log: bool = False):
        self.lower, self.upper, self.step, self.log = lower, upper, step, log
        self.default = self.max_value() if default is None else default

    def choices(self) -> list[int]:
        return list(range(self.lower, self.upper + 1, self.step))

    def max_value(self) -> int:
        return self.choices()[-1]

    def min_value(self) -> int:
        return self.lower

    def contains(self, value: Any) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool) and self.lower <= value <= self.upper
                and (value - self.lower) % self.step == 0)

    def index(self, value: Any) -> int:
        if not self.contains(value):
            raise ValueError(f"{value!r} is not {self.describe()}")
        return (value - self.lower) // self.step

    def decode(self, code: float) -> int:
        return int(round(code))

    def describe(self) -> str:
        values = self.choices()
        shown = ", ".join(map(str, values)) if len(values) <= 12 else f"{values[0]}, {values[1]}, ..., {values[-1]}"
        return f"an integer in [{self.lower}, {self.upper}] step {self.step}: {shown}"

    def to_dict(self) -> dict[str, Any]:
        out = {"type": "Int", "lower": self.lower, "upper": self.upper, "step": self.step, "default": self.default}
        if self.log:
            out["log"] = True
        return out


class Real(_Numeric):
    """The closed interval ``[lower, upper]``: continuous, on a ``step`` grid from ``lower``,
    or on ``num`` evenly spaced points (log-spaced with ``log``)."""

    type_name = "Real"

    def __init__(self, lower: float, upper: float, step: float | None = None, default: float | None = None,
                 log: bool = False, num: int | None = None):
        self.lower, self.upper, self.step, self.log, self.num = float(lower), float(upper), step, log, num
        self.default = self.max_value() if default is None else float(default)

    def choices(self) -> list[float] | None:
        if self.step:
            n = int(math.floor((self.upper - self.lower) / self.step + 1e-9))
            return [round(self.lower + i * self.step, 12) for i in range(n + 1)]
        if self.num:
            if self.num == 1:
                return [self.lower]
            a, b = self._warp(self.lower), self._warp(self.upper)
            points = [a + (b - a) * i / (self.num - 1) for i in range(self.num)]
            return [float(f"{(math.exp(p) if self.log else p):.12g}") for p in points]
        return None

    def max_value(self) -> float:
        values = self.choices()
        return values[-1] if values else self.upper

    def min_value(self) -> float:
        return self.lower

    def contains(self, value: Any) -> bool:
        if not is_number(value):
            return False
        values = self.choices()
        if values:
            return any(abs(value - v) <= 1e-9 * max(1.0, abs(v)) for v in values)
        return self.lower - 1e-12 <= value <= self.upper + 1e-12

    def index(self, value: Any) -> int:
        values = self.choices() or []
        for i, v in enumerate(values):
            if abs(value - v) <= 1e-9 * max(1.0, abs(v)):
                return i
        raise ValueError(f"{value!r} is not {self.describe()}")

    def decode(self, code: float) -> float:
        return float(code)

    def describe(self) -> str:
        values = self.choices()
        if values:
            shown = ", ".join(map(str, values)) if len(values) <= 12 else f"{values[0]}, ..., {values[-1]}"
            return f"a number in [{self.lower}, {self.upper}]: {shown}"
        return f"a number in [{self.lower}, {self.upper}]{' (log scale)' if self.log else ''}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "Real", "lower": self.lower, "upper": self.upper, "default": self.default}
        for key in ("step", "num"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.log:
            out["log"] = True
        return out


#: keys of each type: (required, optional)
ITEM_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Categorical": (("data",), ("default",)),
    "Int": (("lower", "upper"), ("step", "default", "log")),
    "Real": (("lower", "upper"), ("step", "default", "log", "num")),
}


def space_item(spec: Mapping[str, Any], path: str = "", problems: list[tuple[str, str]] | None = None,
               extra_keys: Sequence[str] = ()) -> SpaceItem | None:
    """Parse one ``{type = "Int" | "Real" | "Categorical", ...}`` table.

    With ``problems`` given, problems are appended (``(key_path, message)``) and ``None`` is
    returned for a bad table; without, a ``ConfigError`` is raised. ``extra_keys`` are keys a
    caller accepts beside the item's own (they are ignored here).
    """
    own = problems is None
    found: list[tuple[str, str]] = [] if own else problems
    start = len(found)
    item = _parse(spec, path, found, tuple(extra_keys))
    if own and len(found) > start:
        raise ConfigError(found)
    return item if len(found) == start else None


def _parse(spec: Mapping[str, Any], path: str, problems: list, extra: tuple[str, ...]) -> SpaceItem | None:
    if not isinstance(spec, Mapping):
        problems.append((path, f"expected a table with a 'type' key ({one_of(SPACE_TYPES)}), got {spec!r}"))
        return None
    kind = spec.get("type")
    if kind not in ITEM_KEYS:
        problems.append((join_path(path, "type"), f"unknown search-space type {kind!r}"
                         f"{did_you_mean(str(kind), SPACE_TYPES)}; accepted: {one_of(SPACE_TYPES)}"))
        return None
    required, optional = ITEM_KEYS[kind]
    accepted = required + optional + extra
    start = len(problems)
    for key in spec:
        if key != "type" and key not in accepted:
            problems.append((join_path(path, key), f"unknown key for {kind}{did_you_mean(key, accepted)}; "
                             f"accepted keys: {one_of(accepted)}"))
    for key in required:
        if key not in spec:
            problems.append((join_path(path, key), f"required key of {kind} is missing"))
    if len(problems) > start:
        return None
    if kind == "Categorical":
        return _categorical(spec, path, problems)
    return _numeric(kind, spec, path, problems)


def _categorical(spec: Mapping[str, Any], path: str, problems: list) -> SpaceItem | None:
    data = spec["data"]
    if not isinstance(data, (list, tuple)) or not data:
        problems.append((join_path(path, "data"), f"expected a non-empty list of values, got {data!r}"))
        return None
    seen: set[str] = set()
    for i, value in enumerate(data):
        key = repr((type(value).__name__, value))
        if key in seen:
            problems.append((join_path(join_path(path, "data"), i), f"duplicate value {value!r}"))
            return None
        seen.add(key)
    item = Categorical(data, spec.get("default"))
    if "default" in spec and not item.contains(spec["default"]):
        problems.append((join_path(path, "default"), f"default {spec['default']!r} is not {item.describe()}"))
        return None
    return item


def _numeric(kind: str, spec: Mapping[str, Any], path: str, problems: list) -> SpaceItem | None:
    integer = kind == "Int"
    start = len(problems)
    for key in ("lower", "upper", "step", "default"):
        value = spec.get(key)
        if key in spec and value is not None:
            ok = isinstance(value, int) and not isinstance(value, bool) if integer else is_number(value)
            if not ok:
                problems.append((join_path(path, key), f"expected {'an integer' if integer else 'a number'}, "
                                 f"got {value!r}"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        problems.append((join_path(path, "log"), f"expected true or false, got {log!r}"))
    num = spec.get("num")
    if num is not None and (not isinstance(num, int) or isinstance(num, bool) or num < 1):
        problems.append((join_path(path, "num"), f"expected an integer >= 1 (grid points), got {num!r}"))
    if len(problems) > start:
        return None
    lower, upper, step = spec["lower"], spec["upper"], spec.get("step")
    if step is not None and step <= 0:
        problems.append((join_path(path, "step"), f"must be positive, got {step}"))
        return None
    if upper < lower or (upper == lower and not integer):
        problems.append((join_path(path, "upper"), f"upper ({upper}) must be "
                         f"{'at least' if integer else 'greater than'} lower ({lower}); both bounds are inclusive"))
        return None
    if log and lower <= 0:
        problems.append((join_path(path, "lower"), f"log scale needs lower > 0, got {lower}"))
        return None
    if step is not None and num is not None:
        problems.append((join_path(path, "num"), "give either step or num, not both"))
        return None
    item: SpaceItem
    if integer:
        item = Int(lower, upper, step or 1, spec.get("default"), log)
    else:
        item = Real(lower, upper, step, spec.get("default"), log, num)
    if spec.get("default") is not None and not item.contains(spec["default"]):
        problems.append((join_path(path, "default"), f"default {spec['default']!r} is not {item.describe()}"))
        return None
    return item
