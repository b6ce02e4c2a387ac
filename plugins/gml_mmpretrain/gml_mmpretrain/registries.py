"""Access to mmpretrain's registries and scope-name normalisation.

Types inside mmpretrain config dicts may be written bare (``ResNet``), with the
mmpretrain scope (``mmpretrain.ResNet``) or with the legacy mmcls scope
(``mmcls.ResNet``); mmengine's config reader also inserts ``_scope_`` keys.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from gml_core.api import GmlUserError, did_you_mean, one_of

SCOPES = ("mmpretrain", "mmcls")


def _quiet_import(module: str) -> None:
    import importlib

    with warnings.catch_warnings():
        # mmcv-lite has no compiled ops and says so once on import
        warnings.filterwarnings("ignore", message=".*mmcv-lite.*")
        warnings.filterwarnings("ignore", message=".*MultiScaleDeformableAttention.*")
        importlib.import_module(module)


def models() -> Any:
    """mmpretrain's ``MODELS`` registry with every model module registered."""
    _quiet_import("mmpretrain.models")
    from mmpretrain.registry import MODELS

    return MODELS


def datasets() -> Any:
    """mmpretrain's ``DATASETS`` registry with every dataset registered."""
    _quiet_import("mmpretrain.datasets")
    from mmpretrain.registry import DATASETS

    return DATASETS


def transforms() -> Any:
    """mmpretrain's ``TRANSFORMS`` registry (with mmcv's transforms reachable as parents)."""
    _quiet_import("mmpretrain.datasets")
    from mmpretrain.registry import TRANSFORMS

    return TRANSFORMS


def bare_name(type_name: str) -> str:
    """``mmpretrain.ResNet`` / ``mmcls.ResNet`` -> ``ResNet``; other names unchanged."""
    scope, dot, name = type_name.partition(".")
    return name if dot and scope in SCOPES else type_name


def is_foreign_scope(type_name: str) -> bool:
    """True for ``gml.X`` or another gml scope such as ``torchvision.resnet18``."""
    scope, dot, _ = type_name.partition(".")
    return bool(dot) and scope not in SCOPES


def strip_scopes(value: Any) -> Any:
    """A deep copy with ``_scope_`` keys dropped and mmpretrain/mmcls scopes removed from types."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "_scope_":
                continue
            if key == "type" and isinstance(item, str):
                out[key] = bare_name(item)
            else:
                out[key] = strip_scopes(item)
        return out
    if isinstance(value, (list, tuple)):
        return [strip_scopes(v) for v in value]
    return copy.deepcopy(value)


def role_of(cls: Any) -> str:
    """``backbone``, ``neck``, ``head``, ``loss``, ``classifier``... from where mmpretrain defines ``cls``."""
    module = getattr(cls, "__module__", "")
    for part, role in (("backbones", "backbone"), ("necks", "neck"), ("heads", "head"), ("losses", "loss"),
                       ("classifiers", "classifier"), ("data_preprocessors", "data preprocessor")):
        if f".{part}." in module or module.endswith(f".{part}"):
            return role
    return "module"


def lookup(registry: Any, name: str, what: str) -> Any:
    """The class registered as ``name`` (own or parent registries), or a did-you-mean error.

    For ``what`` in backbone/neck/head/loss the suggestions are that kind of module only.
    """
    found = registry.get(name) if isinstance(name, str) else None
    if found is None:
        names = sorted(registry.module_dict)
        same_role = [n for n in names if role_of(registry.module_dict[n]) == what]
        names = same_role or names
        raise GmlUserError(f"unknown mmpretrain {what} '{name}'{did_you_mean(name, names)}; "
                           f"registered: {one_of(names, 20)}")
    return found


def registered_names(registry: Any) -> list[str]:
    return sorted(registry.module_dict)


def in_mmpretrain_scope(fn: Any) -> Any:
    """Run ``fn`` with mmengine's default scope set to mmpretrain.

    mmengine resolves nested ``type`` names through the *current* default scope; after
    any mmengine Runner in the process (gml's own runs set ``mmengine``) the nested
    backbone/head/transform names would otherwise be looked up in the wrong registry.
    """
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mmengine.registry import DefaultScope

        with DefaultScope.overwrite_default_scope("mmpretrain"):
            return fn(*args, **kwargs)

    return wrapper
