"""Resolve ``scope.Name`` component types and build them with checked arguments."""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Mapping

from .config.converter import collect_problems, converter, join_path
from .config.spec import ComponentSpec
from .errors import ConfigError, GmlUserError, did_you_mean, one_of
from .plugins import get_host

#: scope names served by gml's own registries
GML_SCOPE = "gml"


def resolve(kind: str, type_name: str) -> Callable[..., Any]:
    """The builder for ``type_name`` of registry ``kind`` (``Name``, ``gml.Name`` or ``scope.Name``)."""
    host = get_host()
    if "." in type_name:
        scope, name = type_name.split(".", 1)
        if scope != GML_SCOPE:
            scopes = host.registry("scope")
            if scope not in scopes:
                raise GmlUserError(
                    f"unknown scope '{scope}' in type '{type_name}'{did_you_mean(scope, [GML_SCOPE, *scopes.names()])}; "
                    f"installed scopes: {one_of([GML_SCOPE, *scopes.names()])}"
                )
            return scopes.get(scope)(kind, name)
        type_name = name
    return host.registry(kind).get(type_name)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        return typing.get_type_hints(target)
    except Exception:
        return {}


def _parameters(fn: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], bool]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}, True
    named = {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    return named, open_kwargs


def accepts(fn: Callable[..., Any], name: str) -> bool:
    named, open_kwargs = _parameters(fn)
    return name in named or open_kwargs


def check_args(fn: Callable[..., Any], args: Mapping[str, Any], path: str,
               injected: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Type-check ``args`` against ``fn``'s signature; returns (structured args, problems)."""
    named, open_kwargs = _parameters(fn)
    hints = _hints(fn)
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key not in named and not open_kwargs:
            problems.append((join_path(path, key),
                             f"unknown argument{did_you_mean(key, named)}; accepted: {one_of(named)}"))
            continue
        hint = hints.get(key)
        if hint is None or hint is Any:
            out[key] = value
            continue
        try:
            out[key] = converter.structure(value, hint)
        except Exception as exc:
            collect_problems(exc, join_path(path, key), problems)
    for name, param in named.items():
        if param.default is inspect.Parameter.empty and name not in args and name not in injected \
                and name != "self":
            problems.append((join_path(path, name), "required argument is missing"))
    return out, problems


def build(kind: str, spec: ComponentSpec, path: str = "", **defaults: Any) -> Any:
    """Build ``spec``; ``defaults`` (e.g. ``num_classes``) fill arguments the builder accepts."""
    fn = resolve(kind, spec.type)
    injected = tuple(k for k in defaults if accepts(fn, k))
    kwargs, problems = check_args(fn, spec.args, path, injected)
    if problems:
        raise ConfigError(problems)
    for key in injected:
        kwargs.setdefault(key, defaults[key])
    return fn(**kwargs)
