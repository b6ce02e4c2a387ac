"""Small helpers for nested component tables and error key paths."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from gml_core.api import ComponentSpec, ConfigError, join_path


def to_spec(table: Any, path: str) -> ComponentSpec:
    """A ``{type = ..., ...}`` table as a ``ComponentSpec``; a clear error otherwise."""
    if isinstance(table, ComponentSpec):
        return table
    if not isinstance(table, Mapping) or not isinstance(table.get("type"), str):
        raise ConfigError([(path, f"expected a table with a 'type' key, got {table!r}")])
    return ComponentSpec(table["type"], {k: v for k, v in table.items() if k != "type"})


def plain(value: Any) -> Any:
    """Plain data (dicts, lists, scalars) from specs, tuples and mappings."""
    if isinstance(value, ComponentSpec):
        return plain(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@contextmanager
def key_prefix(prefix: str) -> Iterator[None]:
    """Re-raise a ``ConfigError`` with ``prefix`` in front of every key path."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError([(_join(prefix, p), m) for p, m in exc.problems], exc.source) from None


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix or path == prefix or path.startswith((prefix + ".", prefix + "[")):
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


__all__ = ["join_path", "key_prefix", "plain", "to_spec"]
