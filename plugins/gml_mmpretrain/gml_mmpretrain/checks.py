"""Config-time checks of mmpretrain module dicts, pipelines and signatures.

``ModuleCfg`` and ``PipelineCfg`` are argument annotations of the adapter's builders;
structure hooks on gml's converter validate them when gml checks a config, so an
unknown backbone type or a misspelt argument is reported with its key path before
anything is built.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from gml_core.api import GmlUserError, converter, did_you_mean, one_of

from . import registries


class ModuleCfg(dict):
    """Annotation: an mmpretrain module dict ``{type = "ResNet", ...}`` (or a gml-scoped type)."""

    role = "module"
    injected: tuple[str, ...] = ()


class BackboneCfg(ModuleCfg):
    role = "backbone"
    injected = ("in_channels",)


class NeckCfg(ModuleCfg):
    role = "neck"


class HeadCfg(ModuleCfg):
    role = "head"
    injected = ("num_classes",)


class PipelineCfg(list):
    """Annotation: a list of mmpretrain transform dicts."""


def accepted_params(cls: Any) -> tuple[set[str], bool]:
    """Keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up the base classes.

    Returns ``(names, open)``; ``open`` is True when any keyword may be accepted.
    """
    names: set[str] = set()
    chain = [k for k in inspect.getmro(cls) if "__init__" in vars(k)] if inspect.isclass(cls) else [cls]
    for klass in chain:
        try:
            params = inspect.signature(klass.__init__ if inspect.isclass(klass) else klass).parameters
        except (TypeError, ValueError):
            return names, True
        names |= {n for n, p in params.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return names, False
    return names, True


def required_params(cls: Any) -> set[str]:
    """Arguments of ``cls.__init__`` without a default."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return set()
    return {n for n, p in params.items() if p.default is p.empty and n != "self"
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_kwargs(cls: Any, args: Mapping[str, Any], what: str, injected: tuple[str, ...] = ()) -> None:
    """Unknown or missing constructor arguments of ``cls``, as one ``GmlUserError``."""
    names, is_open = accepted_params(cls)
    problems = []
    if not is_open:
        for key in args:
            if key not in names:
                problems.append(f"unknown argument '{key}'{did_you_mean(key, names)}; accepted: {one_of(names)}")
    for name in sorted(required_params(cls) - set(args) - set(injected)):
        problems.append(f"required argument '{name}' is missing")
    if problems:
        raise GmlUserError(f"{what}: " + "; ".join(problems))


def _type_of(value: Any, what: str) -> str:
    if not isinstance(value, Mapping):
        raise GmlUserError(f"{what}: expected a table with a 'type' key, got {value!r}")
    type_name = value.get("type")
    if not isinstance(type_name, str):
        raise GmlUserError(f"{what}: expected a string 'type', got {type_name!r}")
    return type_name


def check_module(value: Any, role: str, injected: tuple[str, ...] = ()) -> None:
    """Validate one module dict of an ImageClassifier (``backbone``, ``neck`` or ``head``)."""
    type_name = _type_of(value, role)
    args = {k: v for k, v in value.items() if k not in ("type", "_scope_")}
    if registries.is_foreign_scope(type_name):
        from gml_core.api import check_component

        problems = check_component("model", {"type": type_name, **args}, role)
        if problems:
            raise GmlUserError("; ".join(f"{path}: {msg}" for path, msg in problems))
        return
    cls = registries.lookup(registries.models(), registries.bare_name(type_name), role)
    check_kwargs(cls, args, f"{role} '{type_name}'", injected)
    loss = value.get("loss")
    if isinstance(loss, Mapping):
        registries.lookup(registries.models(), registries.bare_name(_type_of(loss, f"{role}.loss")), "loss")


def check_pipeline(value: Any, what: str = "pipeline") -> None:
    """Every transform of a pipeline is registered in mmpretrain (or mmcv) and takes its arguments."""
    if not isinstance(value, (list, tuple)):
        raise GmlUserError(f"{what}: expected a list of transform tables, got {value!r}")
    for i, step in enumerate(value):
        type_name = _type_of(step, f"{what}[{i}]")
        cls = registries.lookup(registries.transforms(), registries.bare_name(type_name), "transform")
        args = {k: v for k, v in step.items() if k not in ("type", "_scope_")}
        check_kwargs(cls, args, f"{what}[{i}] '{type_name}'")


def _structure_module(value: Any, cls: type) -> ModuleCfg:
    try:
        check_module(value, cls.role, cls.injected)
    except GmlUserError as exc:
        raise ValueError(str(exc)) from None
    return cls(value)


def _structure_pipeline(value: Any, _type: type) -> PipelineCfg:
    try:
        check_pipeline(value)
    except GmlUserError as exc:
        raise ValueError(str(exc)) from None
    return PipelineCfg(value)


for _cls in (ModuleCfg, BackboneCfg, NeckCfg, HeadCfg):
    converter.register_structure_hook(_cls, _structure_module)
converter.register_structure_hook(PipelineCfg, _structure_pipeline)
