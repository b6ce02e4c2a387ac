"""Resolve ``scope.Name`` component types, check their arguments and build them.

This is the one place that knows how a component table becomes an object: resolve the
builder, type-check the table's keys against its signature, fill the arguments gml injects
(``num_classes`` and ``in_channels`` for models), report every problem with its key path.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Mapping

from .config.converter import collect_problems, converter, join_path
from .config.spec import ComponentSpec
from .errors import ConfigError, GmlUserError, did_you_mean, one_of
from .install_hints import install_hint
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
                hint = install_hint("scope", scope)
                raise GmlUserError(
                    f"unknown scope '{scope}' in type '{type_name}'{did_you_mean(scope, [GML_SCOPE, *scopes.names()])}; "
                    f"installed scopes: {one_of([GML_SCOPE, *scopes.names()])}"
                    + (f"; {hint}" if hint else "")
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


#: arguments gml fills in when building a component of this kind (from the data)
INJECTED: dict[str, tuple[str, ...]] = {"model": ("num_classes", "in_channels")}
#: keys of a component table that gml consumes itself (never passed to the builder)
RESERVED: dict[str, tuple[str, ...]] = {"model": ("init_from",)}


def _as_spec(spec: Any, path: str) -> ComponentSpec:
    if isinstance(spec, ComponentSpec):
        return spec
    try:
        return converter.structure(spec, ComponentSpec)
    except Exception as exc:
        problems: list[tuple[str, str]] = []
        collect_problems(exc, path, problems)
        raise ConfigError(problems) from None


def _builder_args(kind: str, spec: ComponentSpec) -> dict[str, Any]:
    reserved = RESERVED.get(kind, ())
    return {k: v for k, v in spec.args.items() if k not in reserved}


def check_component(kind: str, spec: ComponentSpec | Mapping[str, Any], path: str = "") -> list[tuple[str, str]]:
    """Problems of one component table: unknown type, unknown/missing/ill-typed arguments."""
    try:
        spec = _as_spec(spec, path)
        fn = resolve(kind, spec.type)
    except ConfigError as exc:
        return list(exc.problems)
    except GmlUserError as exc:
        return [(join_path(path, "type"), str(exc))]
    return check_args(fn, _builder_args(kind, spec), path, INJECTED.get(kind, ()))[1]


def iter_component_fields(obj: Any, path: str = ""):
    """Yield ``(kind, spec, key_path)`` for every ``component_field`` inside an attrs object."""
    import attrs

    if attrs.has(type(obj)):
        for field in attrs.fields(type(obj)):
            value = getattr(obj, field.name)
            sub = join_path(path, field.name)
            kind = field.metadata.get("gml_kind")
            if kind and isinstance(value, ComponentSpec):
                yield kind, value, sub
            elif kind and isinstance(value, (list, tuple)) and all(isinstance(v, ComponentSpec) for v in value):
                for i, item in enumerate(value):
                    yield kind, item, join_path(sub, i)
            else:
                yield from iter_component_fields(value, sub)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from iter_component_fields(value, join_path(path, i))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from iter_component_fields(value, join_path(path, key))


def component_problems(config: Any, path: str = "") -> list[tuple[str, str]]:
    """Every problem of every ``component_field`` inside a typed config."""
    problems: list[tuple[str, str]] = []
    for kind, spec, sub in iter_component_fields(config, path):
        problems.extend(check_component(kind, spec, sub))
    return problems


def check_components(config: Any, path: str = "") -> None:
    """Check every ``component_field`` inside a typed config; all problems in one ``ConfigError``."""
    problems = component_problems(config, path)
    if problems:
        raise ConfigError(problems, getattr(config, "source", None) or None)


def build(kind: str, spec: ComponentSpec | Mapping[str, Any], path: str = "", **defaults: Any) -> Any:
    """Build a component table; ``defaults`` (e.g. ``num_classes``) fill arguments the builder accepts.

    Every problem (type, arguments, and a ``ConfigError`` the builder raises) names its key
    path under ``path``.
    """
    spec = _as_spec(spec, path)
    try:
        fn = resolve(kind, spec.type)
    except ConfigError:
        raise
    except GmlUserError as exc:
        raise ConfigError([(join_path(path, "type"), str(exc))]) from None
    injected = tuple(k for k in defaults if accepts(fn, k))
    kwargs, problems = check_args(fn, _builder_args(kind, spec), path, injected)
    if problems:
        raise ConfigError(problems)
    for key in injected:
        kwargs.setdefault(key, defaults[key])
    try:
        return fn(**kwargs)
    except ConfigError as exc:
        raise ConfigError([(_under(path, p), m) for p, m in exc.problems], exc.source) from None
    except GmlUserError:
        raise
    except (ValueError, TypeError, AssertionError) as exc:  # the builder rejected its arguments
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError([(path or spec.type, f"{spec.type} rejected its arguments: {first}")]) from exc


def _under(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix or path == prefix or path.startswith((prefix + ".", prefix + "[")):
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def explicit_model_spec(spec: ComponentSpec, num_classes: int, in_channels: int,
                        checkpoint: Any = None) -> ComponentSpec:
    """The model spec that rebuilds exactly this model: ``init_from`` dropped, the checkpoint's
    own ``model_spec`` (an exported, e.g. pruned, model) preferred, injected arguments explicit.

    ``checkpoint`` is the already loaded ``init_from`` file (so it is read once).
    """
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("model_spec"), Mapping):
        spec = _as_spec(dict(checkpoint["model_spec"]), "model_spec")
    spec = ComponentSpec(spec.type, _builder_args("model", spec))
    try:
        fn = resolve("model", spec.type)
    except GmlUserError:
        return spec
    extra = {k: v for k, v in (("num_classes", num_classes), ("in_channels", in_channels))
             if k not in spec.args and accepts(fn, k)}
    return spec.with_args(**extra)
