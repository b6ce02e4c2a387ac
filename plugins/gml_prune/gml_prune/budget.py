"""FLOPs targets: a fraction of the full model (``0.5``, ``"50%"``) or an absolute count (``"300M"``)."""

from __future__ import annotations

from typing import Any

from gml_core.api import ConfigError

#: default channel multiple: CPU conv / GEMM kernels turn FLOPs into latency best on multiples
#: of 16 channels (measured with benchmarks/prune_torchvision.py; see docs/benchmarks.md)
DEFAULT_ROUND_TO = 16

_HELP = "use a fraction of the full model's FLOPs (0 < x <= 1, or \"50%\") or an absolute count like \"300M\""


def check_target(value: Any) -> str | None:
    """A message when ``value`` is not a valid FLOPs target (used at config time), else None."""
    try:
        _parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def _parse(value: Any) -> tuple[str, float]:
    from gml_core.api import parse_count
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number or a string, got {value!r}; {_HELP}")
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                frac = float(text[:-1]) / 100.0
            except ValueError:
                raise ValueError(f"cannot read {value!r}; {_HELP}") from None
            return _fraction(frac, value)
        try:
            count = parse_count(text)
        except ValueError:
            raise ValueError(f"cannot read {value!r}; {_HELP}") from None
        if count <= 0:
            raise ValueError(f"{value!r} is not positive; {_HELP}")
        return ("absolute", count)
    if value <= 0:
        raise ValueError(f"{value!r} is not positive; {_HELP}")
    if value <= 1:
        return ("fraction", float(value))
    return ("absolute", float(value))


def _fraction(frac: float, original: Any) -> tuple[str, float]:
    if not 0 < frac <= 1:
        raise ValueError(f"{original!r} is not between 0% and 100%; {_HELP}")
    return ("fraction", frac)


def resolve_target(value: Any, full_flops: float, key: str) -> float:
    """The absolute FLOPs target; a ``ConfigError`` at ``key`` when invalid or above the full model."""
    try:
        kind, number = _parse(value)
    except ValueError as exc:
        raise ConfigError([(key, str(exc))]) from None
    target = number * full_flops if kind == "fraction" else number
    if target > full_flops * (1 + 1e-9):
        raise ConfigError([(key, f"{value!r} ({target:.4g} FLOPs) is above the full model's "
                                 f"{full_flops:.4g} FLOPs; nothing to prune")])
    return target
