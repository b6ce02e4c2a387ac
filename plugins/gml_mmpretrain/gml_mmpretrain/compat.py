"""Let mmengine resolve ``pkg::path`` config bases without ``pkg_resources``.

mmengine 0.10 finds the config tree of an installed package (``mmpretrain::resnet/...``)
through ``pkg_resources``, which setuptools 81 and later no longer ship. When
``pkg_resources`` is missing, the two lookups mmengine's config reader uses are
replaced by ``importlib`` equivalents; nothing changes when it is present.
"""

from __future__ import annotations

import importlib.util
import os
from importlib import metadata

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


def patch_mmengine_config() -> bool:
    """Install the lookups in ``mmengine.config.config`` when needed; True if patched."""
    global _PATCHED
    if _PATCHED:
        return True
    if not pkg_resources_missing():
        return False
    from mmengine.config import config as mm_config

    mm_config.is_installed = is_installed
    mm_config.get_installed_path = get_installed_path
    _PATCHED = True
    return True
