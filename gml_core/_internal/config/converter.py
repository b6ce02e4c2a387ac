"""A strict cattrs converter and error reporting with full key paths.

Strict means: no silent coercion. ``3.7`` is not an ``int``, ``"1e-3"`` is not a
``float`` (an ``int`` is accepted where a ``float`` is expected), numbers are not
strings, and unknown keys are errors with a did-you-mean.
"""

from __future__ import annotations

import re
import typing
from typing import Any, Mapping, TypeVar

import attrs
import cattrs
import cattrs.gen
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from ..errors import ConfigError, did_you_mean, one_of
from .spec import ComponentSpec

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _strict_int(value: Any, _type: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_describe(value)}")
    return value


def _strict_float(value: Any, _type: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {_describe(value)}")
    return float(value)


def _strict_str(value: Any, _type: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_describe(value)}")
    return value


def _strict_bool(value: Any, _type: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_describe(value)}")
    return value


def _structure_spec(value: Any, _type: type) -> ComponentSpec:
    if isinstance(value, ComponentSpec):
        return value
    if isinstance(value, str):
        return ComponentSpec(value, {})
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a table with a 'type' key, got {_describe(value)}")
    if "type" not in value:
        raise TypeError(f"table has no 'type' key (keys: {one_of(value)})")
    if not isinstance(value["type"], str):
        raise TypeError(f"'type' must be a string, got {_describe(value['type'])}")
    return ComponentSpec(value["type"], {k: v for k, v in value.items() if k != "type"})


converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(float, _strict_float)
converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(bool, _strict_bool)
converter.register_structure_hook(ComponentSpec, _structure_spec)


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Literal


def _structure_literal(value: Any, tp: Any) -> Any:
    allowed = typing.get_args(tp)
    # bool is an int subclass: compare types too, so true is not accepted for 1
    if any(value == a and type(value) is type(a) for a in allowed):
        return value
    shown = ", ".join(repr(a) for a in allowed)
    hint = did_you_mean(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
    raise ValueError(f"expected one of {shown}, got {value!r}{hint}")


converter.register_structure_hook_func(_is_literal, _structure_literal)


def _accepts_none(tp: Any) -> bool:
    return tp is Any or tp is type(None) or type(None) in typing.get_args(tp)


def _failed_fields(exc: ClassValidationError) -> set[str] | None:
    """The names of the fields whose values failed, or None if a failure is not tied to one field."""
    with_notes, without = exc.group_exceptions()
    names = {getattr(note, "name", None) for _, note in with_notes}
    return None if without or None in names else names


def _class_structure_fn(cls: type) -> Any:
    """cattrs' structure function for an attrs class, with two additions.

    ``None`` means "the default": mmengine-style Python configs write ``key=None`` for "not set"
    (``pretrained=None``). For a field that has a default and no ``None`` in its type, ``None`` means
    that default. TOML has no None, so this only changes what a Python config means; a field without a
    default still says "expected ..., got None".

    Every problem at once: a class's own value checks (``__attrs_post_init__``, validators) run only once
    every field has the right type, so a wrong type in one key used to hide a bad value in another. When
    only fields with defaults fail, the class is built once more with those fields at their defaults, and
    the value problems of the other fields are reported with the type errors.
    """
    base = cattrs.gen.make_dict_structure_fn(cls, converter)
    try:
        attrs.resolve_types(cls)
        fields = attrs.fields(cls)
    except Exception:  # unresolvable annotations: keep cattrs' own behaviour
        return base
    has_default = {f.name for f in fields if f.default is not attrs.NOTHING}
    none_default = {f.name for f in fields if f.name in has_default and not _accepts_none(f.type)}

    def structure_fn(value: Any, tp: Any) -> Any:
        if isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if not (v is None and k in none_default)}
        try:
            return base(value, tp)
        except ClassValidationError as exc:
            failed = _failed_fields(exc)
            if not isinstance(value, Mapping) or not failed or not failed <= has_default:
                raise
            try:
                base({k: v for k, v in value.items() if k not in failed}, tp)
            except ClassValidationError as again:  # cattrs wraps what the constructor raised, without a field note
                checks = again.group_exceptions()[1]
                if checks:
                    raise ClassValidationError(exc.message, [*exc.exceptions, *checks], exc.cl) from None
            raise

    return structure_fn

converter.register_structure_hook_factory(attrs.has, _class_structure_fn)
converter.register_unstructure_hook(ComponentSpec, lambda s: s.to_dict())


def component_field(kind: str, **kwargs: Any) -> Any:
    """An attrs field holding a ``ComponentSpec`` of registry ``kind``, checked at config time."""
    metadata = {**kwargs.pop("metadata", {}), "gml_kind": kind}
    return attrs.field(metadata=metadata, **kwargs)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def join_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = str(key)
    if not _IDENT.match(key):
        return f'{path}["{key}"]'
    return f"{path}.{key}" if path else key


def _accepted(cls: Any) -> list[str]:
    try:
        return [a.alias if hasattr(a, "alias") and a.alias else a.name for a in attrs.fields(cls)]
    except Exception:
        return []


def collect_problems(exc: BaseException, path: str, out: list[tuple[str, str]]) -> None:
    """Flatten a cattrs exception tree into ``(key_path, message)`` pairs."""
    if isinstance(exc, ForbiddenExtraKeysError):
        accepted = _accepted(exc.cl)
        for key in sorted(exc.extra_fields):
            out.append((join_path(path, key), f"unknown key{did_you_mean(key, accepted)}; accepted keys: {one_of(accepted)}"))
        return
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            key = getattr(note, "name", None)
            if key is None:
                key = getattr(note, "index", "?")
            collect_problems(sub, join_path(path, key), out)
        for sub in without:
            collect_problems(sub, path, out)
        return
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            collect_problems(sub, path, out)
        return
    if isinstance(exc, ConfigError):  # raised by a config class's own cross-field checks
        root = path.split(".", 1)[0].split("[", 1)[0]
        for sub_path, message in exc.problems:
            absolute = not path or sub_path == root or sub_path.startswith((root + ".", root + "["))
            out.append((sub_path if absolute else join_path(path, sub_path), message))
        return
    if isinstance(exc, KeyError):
        out.append((path, "required key is missing"))
        return
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    out.append((path, message))


def structure(data: Any, cls: type[T], path: str = "", source: str | None = None) -> T:
    """Structure ``data`` into ``cls``; every problem is raised at once as ``ConfigError``."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        problems: list[tuple[str, str]] = []
        collect_problems(exc, path, problems)
        raise ConfigError(problems, source) from None
