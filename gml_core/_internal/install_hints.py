"""Install hints for names owned by plugins that are not installed (data: install_hints.toml)."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path


@functools.cache
def _table() -> dict[str, dict[str, str]]:
    with (Path(__file__).with_name("install_hints.toml")).open("rb") as fh:
        return tomllib.load(fh)


def provider(kind: str, name: str) -> str | None:
    """The distribution that provides ``name`` of ``kind`` (``scope``, ``command``, ``kind``, a registry kind)."""
    return _table().get(kind, {}).get(name)


def install_hint(kind: str, name: str) -> str:
    """``"'X' is provided by gml-foo: pip install gml-foo"``, or ``""`` when no plugin is known for it."""
    dist = provider(kind, name)
    return f"'{name}' is provided by {dist}: pip install {dist}" if dist else ""
