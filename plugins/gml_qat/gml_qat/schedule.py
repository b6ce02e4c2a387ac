"""``freeze_bn_after`` / ``freeze_observer_after`` values (epochs, iterations, or never) and checked numbers.

Accepted: an integer (epochs), ``"N epochs"`` / ``"N epoch"``, ``"N iters"`` / ``"N iter"`` /
``"N iterations"`` (spaces optional, e.g. ``"200iter"``), or ``"never"`` (also ``-1``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from gml_core.api import converter

_PATTERN = re.compile(r"^\s*(\d+)\s*(epochs?|iters?|iterations?|it)\s*$", re.IGNORECASE)


@attrs.frozen
class Period:
    """A point in training: ``value`` epochs or iterations; ``unit == "never"`` disables the event."""

    value: int = 0
    unit: Literal["epoch", "iter", "never"] = "never"

    def iteration(self, iters_per_epoch: int) -> float:
        """The first iteration at which the event is due (``inf`` for never)."""
        if self.unit == "never":
            return float("inf")
        return self.value * iters_per_epoch if self.unit == "epoch" else self.value

    def __str__(self) -> str:
        return "never" if self.unit == "never" else f"{self.value} {self.unit}{'s' if self.value != 1 else ''}"


def parse_period(value: Any) -> Period:
    if isinstance(value, Period):
        return value
    if isinstance(value, bool):
        raise TypeError(f"expected a number of epochs, 'N iters' or 'never', got {value!r}")
    if isinstance(value, int):
        if value == -1:
            return Period(0, "never")
        if value < 0:
            raise ValueError(f"expected a number of epochs >= 0 (or -1 for never), got {value}")
        return Period(value, "epoch")
    if isinstance(value, str):
        if value.strip().lower() == "never":
            return Period(0, "never")
        m = _PATTERN.match(value)
        if m:
            unit = "epoch" if m.group(2).lower().startswith("epoch") else "iter"
            return Period(int(m.group(1)), unit)
    raise ValueError(f"expected a number of epochs (3), iterations with a unit ('200 iters'), "
                     f"or 'never', got {value!r}")


def _unstructure(period: Period) -> Any:
    if period.unit == "never":
        return "never"
    return period.value if period.unit == "epoch" else f"{period.value} iters"


converter.register_structure_hook(Period, lambda value, _type: parse_period(value))
converter.register_unstructure_hook(Period, _unstructure)


class PositiveInt(int):
    """An integer >= 1, checked when the config is read (the error names the key)."""


class NonNegativeFloat(float):
    """A number >= 0, checked when the config is read."""


def _positive_int(value: Any, _type: Any) -> PositiveInt:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"must be >= 1, got {value}")
    return PositiveInt(value)


def _non_negative_float(value: Any, _type: Any) -> NonNegativeFloat:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return NonNegativeFloat(value)


converter.register_structure_hook(PositiveInt, _positive_int)
converter.register_structure_hook(NonNegativeFloat, _non_negative_float)
converter.register_unstructure_hook(PositiveInt, int)
converter.register_unstructure_hook(NonNegativeFloat, float)
