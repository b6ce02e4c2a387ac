"""Small helpers for nested component tables and error key paths."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from gml_core.config.converter import join_path
from gml_core.config.spec import ComponentSpec
from gml_core.errors import ConfigError


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


def build_part(kind: str, table: Any, path: str, **defaults: Any) -> Any:
    """Build a nested component table; every error names its key path under ``path``."""
    from gml_core.components import accepts, check_args, resolve
    from gml_core.errors import GmlUserError

    spec = to_spec(table, path)
    try:
        fn = resolve(kind, spec.type)
    except ConfigError:
        raise
    except GmlUserError as exc:
        raise ConfigError([(join_path(path, "type"), str(exc))]) from None
    injected = tuple(k for k in defaults if accepts(fn, k))
    kwargs, problems = check_args(fn, spec.args, path, injected)
    if problems:
        raise ConfigError(problems)
    for key in injected:
        kwargs.setdefault(key, defaults[key])
    with key_prefix(path):
        return fn(**kwargs)


__all__ = ["build_part", "join_path", "key_prefix", "plain", "to_spec"]
