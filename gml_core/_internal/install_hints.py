"""Install hints for names owned by plugins that are not installed (data: install_hints.toml).

Every hint has the same shape, whatever the name (algorithm, scope, command, config key, plugin):
``<what> '<name>' is provided by gml-foo, <state>``, where the state is "which is not installed:
pip install gml-foo", "which is installed but not loaded (...)" or "which failed to load (...)".
A name whose plugin is installed and loaded gets no hint: it is simply unknown.
"""

from __future__ import annotations

import functools
import os
import tomllib
from importlib import metadata
from pathlib import Path

#: how a hint names each kind of name
LABELS = {"kind": "component kind", "scope": "scope", "command": "command", "config_key": "config key",
          "plugin": "plugin"}


@functools.cache
def _table() -> dict[str, dict[str, str]]:
    with (Path(__file__).with_name("install_hints.toml")).open("rb") as fh:
        return tomllib.load(fh)


def provider(kind: str, name: str) -> str | None:
    """The distribution that provides ``name`` of ``kind`` (``scope``, ``command``, ``kind``,
    ``config_key``, ``plugin`` or a registry kind)."""
    return _table().get(kind, {}).get(name)


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _state(dist: str, loaded: dict[str, bool] | None) -> str | None:
    """How ``dist`` stands: None when it is installed and loaded fine (no hint then)."""
    if loaded is not None and dist in loaded:
        return None if loaded[dist] else "which failed to load (see `gml plugins`)"
    if not _installed(dist):
        return f"which is not installed: pip install {dist}"
    if loaded is None:
        return None
    why = ("GML_LOAD_PLUGINS=" + os.environ["GML_LOAD_PLUGINS"] if os.environ.get("GML_LOAD_PLUGINS")
           else "GML_DISABLE_PLUGIN_AUTOLOAD is set")
    return f"which is installed but not loaded ({why})"


def _loaded() -> dict[str, bool]:
    """Distribution -> loaded without error, for the plugins of this process."""
    from .plugins import get_host

    out: dict[str, bool] = {}
    for info in get_host().plugins:
        out[info.distribution] = out.get(info.distribution, True) and not info.broken
    return out


def install_hint(kind: str, name: str, check_host: bool = True) -> str:
    """``"algorithm 'X' is provided by gml-foo, which is not installed: pip install gml-foo"``, or
    ``""`` when no plugin is known for it or its plugin is loaded (``check_host=False``: during the
    plugin host's own start, when only installed or not can be told)."""
    dist = provider(kind, name)
    if not dist:
        return ""
    state = _state(dist, _loaded() if check_host else None)
    return f"{LABELS.get(kind, kind)} '{name}' is provided by {dist}, {state}" if state else ""


def config_key_hints(keys: list[str], scope: object = None) -> dict[str, list[str]]:
    """Top-level config keys that a plugin which is not loaded would read: hint -> keys. A config's
    ``default_scope`` (``'mmdet'``) names the plugin for keys that several dialects share."""
    by_dist: dict[str, list[str]] = {}
    scoped = provider("scope", scope) if isinstance(scope, str) else None
    for key in keys:
        dist = provider("config_key", key) and (scoped or provider("config_key", key))
        if dist:
            by_dist.setdefault(dist, []).append(key)
    out: dict[str, list[str]] = {}
    loaded = _loaded()
    for dist, found in by_dist.items():
        state = _state(dist, loaded)
        if state:
            shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
            out[f"config key{'s' if len(found) > 1 else ''} {shown} {'are' if len(found) > 1 else 'is'} "
                f"read by {dist}, {state}"] = found
    return out
