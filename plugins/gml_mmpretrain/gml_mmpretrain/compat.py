"""Let mmengine resolve ``pkg::path`` config bases without ``pkg_resources``.

mmengine 0.10 finds the config tree of an installed package (``mmpretrain::resnet/...``)
through ``pkg_resources``, which setuptools 81 and later no longer ship. When
``pkg_resources`` is missing, the two lookups mmengine's config reader uses are
replaced by ``importlib`` equivalents (when that module is first imported, so gml's
startup stays light); nothing changes when ``pkg_resources`` is present.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from importlib import metadata
from typing import Any

_PATCHED = False


def _module_name(package: str) -> str | None:
    """The top-level module of ``package`` (a distribution or a module name)."""
    if importlib.util.find_spec(package.replace("-", "_")) is not None:
        return package.replace("-", "_")
    try:
        top = metadata.distribution(package).read_text("top_level.txt") or ""
    except metadata.PackageNotFoundError:
        return None
    names = [line.strip() for line in top.splitlines() if line.strip()]
    return names[0] if names else None


def is_installed(package: str) -> bool:
    """True when ``package`` is an installed distribution or an importable module."""
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """The folder of the installed top-level module of ``package``."""
    module = _module_name(package)
    spec = importlib.util.find_spec(module) if module else None
    if spec is None:
        raise metadata.PackageNotFoundError(package)
    if spec.origin is None:
        raise RuntimeError(f"{package} is a namespace package, which is invalid for `get_install_path`")
    return os.path.dirname(spec.origin)


def pkg_resources_missing() -> bool:
    return importlib.util.find_spec("pkg_resources") is None


_TARGET = "mmengine.config.config"


def _apply(module: Any) -> None:
    module.is_installed = is_installed
    module.get_installed_path = get_installed_path


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches mmengine's config module right after it is first imported (keeps gml's startup light)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, original = spec.loader, spec.loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            _apply(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def patch_mmengine_config() -> bool:
    """Make mmengine's config reader find ``pkg::`` bases when ``pkg_resources`` is missing.

    Patches ``mmengine.config.config`` now if it is imported, else when it is first
    imported. Returns True when a patch is (or will be) applied.
    """
    global _PATCHED
    if _PATCHED:
        return True
    if not pkg_resources_missing():
        return False
    module = sys.modules.get(_TARGET)
    if module is not None:
        _apply(module)
    else:
        sys.meta_path.insert(0, _PatchOnImport())
    _PATCHED = True
    return True
