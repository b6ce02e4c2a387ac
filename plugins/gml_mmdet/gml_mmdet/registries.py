"""mmdet's registries (with the mmcv-ops fallback installed first) and scope-name handling."""

from __future__ import annotations

import copy
import importlib
import warnings
from typing import Any

from gml_core.api import GmlUserError, did_you_mean, one_of

SCOPE = "mmdet"


def _quiet_import(module: str) -> None:
    from .ops import install

    install()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mmcv-lite.*")
        warnings.filterwarnings("ignore", message=".*MultiScaleDeformableAttention.*")
        importlib.import_module(module)


def models() -> Any:
    """mmdet's ``MODELS`` registry with every model module registered."""
    _quiet_import("mmdet.models")
    from mmdet.registry import MODELS

    return MODELS


def datasets() -> Any:
    _quiet_import("mmdet.datasets")
    from mmdet.registry import DATASETS

    return DATASETS


def transforms() -> Any:
    _quiet_import("mmdet.datasets")
    from mmdet.registry import TRANSFORMS

    return TRANSFORMS


def bare_name(type_name: str) -> str:
    """``mmdet.RetinaNet`` -> ``RetinaNet``; other names unchanged."""
    scope, dot, name = type_name.partition(".")
    return name if dot and scope == SCOPE else type_name


def strip_scopes(value: Any) -> Any:
    """A deep copy with ``_scope_`` keys dropped and the mmdet scope removed from types."""
    if isinstance(value, dict):
        return {k: (bare_name(v) if k == "type" and isinstance(v, str) else strip_scopes(v))
                for k, v in value.items() if k != "_scope_"}
    if isinstance(value, (list, tuple)):
        return [strip_scopes(v) for v in value]
    return copy.deepcopy(value)


def lookup(registry: Any, name: Any, what: str) -> Any:
    """The class registered as ``name`` or a did-you-mean error."""
    found = registry.get(name) if isinstance(name, str) else None
    if found is None:
        names = sorted(registry.module_dict)
        raise GmlUserError(f"unknown mmdet {what} '{name}'{did_you_mean(str(name), names)}; "
                           f"registered: {one_of(names, 20)}")
    return found


def in_mmdet_scope(fn: Any) -> Any:
    """Run ``fn`` with mmengine's default scope set to mmdet (nested types resolve there)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mmengine.registry import DefaultScope

        with DefaultScope.overwrite_default_scope(SCOPE):
            return fn(*args, **kwargs)

    return wrapper
