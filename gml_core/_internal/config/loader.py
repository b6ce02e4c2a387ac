"""Load TOML or mmengine-style Python configs, apply overrides, structure them."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable

import attrs

from ..errors import ConfigError, GmlUserError, did_you_mean, one_of
from .converter import structure
from .python_config import drop_helpers, helper_names, seed_note
from .schema import AlgorithmConfig, RawRunConfig, RunConfig
from .spec import ComponentSpec

_INDEX = re.compile(r"^(?P<key>[^\[\]]+)(?P<idx>(\[\d+\])*)$")


def read_raw(path: str | Path) -> dict[str, Any]:
    """Read a config file into plain data (TOML, or a Python config through mmengine)."""
    path = Path(path)
    if not path.is_file():
        raise GmlUserError(f"config file not found: {path}")
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GmlUserError(f"{path}: not a text config (invalid UTF-8 at byte {exc.start})") from None
    except OSError as exc:
        raise GmlUserError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if path.suffix == ".toml":
        try:
            with path.open("rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise GmlUserError(f"{path}: invalid TOML: {exc}") from None
    if path.suffix == ".py":
        from mmengine.config import Config

        try:
            cfg = Config.fromfile(str(path))
        except RecursionError:
            raise GmlUserError(f"{path}: circular _base_ chain (a config includes itself, directly or through "
                               "another base)") from None
        except Exception as exc:
            raise GmlUserError(f"{path}: cannot read Python config: {type(exc).__name__}: {exc}") from None
        return _to_plain(cfg.to_dict())
    raise GmlUserError(f"{path}: unsupported config format '{path.suffix}'; accepted: .toml, .py")


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def parse_override(item: str) -> tuple[str, Any]:
    """``key.path=value`` with the value read as a TOML value (bare words stay strings)."""
    if "=" not in item:
        raise GmlUserError(f"--cfg-options '{item}': expected key.path=value")
    key, _, text = item.partition("=")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key.strip(), value


def apply_overrides(raw: dict[str, Any], items: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key.path[i]=value`` overrides applied."""
    raw = copy.deepcopy(raw)
    for item in items:
        key, value = parse_override(item)
        node: Any = raw
        parts = key.split(".")
        for depth, part in enumerate(parts):
            m = _INDEX.match(part)
            if not m:
                raise GmlUserError(f"--cfg-options '{item}': bad key '{part}'")
            name, idx = m.group("key"), [int(i) for i in re.findall(r"\d+", m.group("idx"))]
            last = depth == len(parts) - 1
            if not isinstance(node, dict):
                raise GmlUserError(f"--cfg-options '{item}': '{'.'.join(parts[:depth])}' is not a table")
            if last and not idx:
                node[name] = value
                break
            node = node.setdefault(name, {} if not idx else [])
            for j, i in enumerate(idx):
                if not isinstance(node, list) or i >= len(node):
                    raise GmlUserError(f"--cfg-options '{item}': no element [{i}] at '{name}'")
                if last and j == len(idx) - 1:
                    node[i] = value
                else:
                    node = node[i]
    return raw


def _translate(raw: dict[str, Any], source: str) -> dict[str, Any]:
    from ..plugins import get_host

    translated = get_host().hook.gml_translate_config(config=raw, source=source)
    return raw if translated is None else translated


def structure_algorithm(table: Any, source: str | None = None) -> AlgorithmConfig:
    """Phase two: structure the ``[algorithm]`` table into its algorithm's config class."""
    from ..plugins import get_host

    if not isinstance(table, dict) or not table:
        raise ConfigError([("algorithm", "missing [algorithm] table with a 'type' key")], source)
    algo_type = table.get("type")
    if not isinstance(algo_type, str):
        raise ConfigError([("algorithm.type", f"expected an algorithm name, got {algo_type!r}")], source)
    reg = get_host().registry("algorithm")
    if algo_type.startswith("gml.") and algo_type[4:] in reg:  # the original system's spelling
        table = {**table, "type": algo_type[4:]}
        algo_type = algo_type[4:]
    if algo_type not in reg:
        raise ConfigError([("algorithm.type", reg.unknown_message(algo_type))], source)
    cls = reg.get(algo_type)
    config_class = getattr(cls, "config_class", AlgorithmConfig)
    return structure(table, config_class, "algorithm", source)


def load_config(path: str | Path, overrides: Iterable[str] = (), **runtime_changes: Any) -> RunConfig:
    """Read, override, structure and check a run config; raises ``ConfigError`` with every problem
    of every phase (types and keys, value ranges, component types and arguments) at once."""
    from ..components import component_problems
    from ..plugins import get_host

    source = str(path)
    get_host()  # plugins load first: they may prepare readers (e.g. mmengine's package-scoped bases)
    raw = _translate(read_raw(path), source)
    if Path(path).suffix == ".py":
        raw = drop_helpers(raw, helper_names(path), {a.name for a in attrs.fields(RawRunConfig)})
    raw = apply_overrides(raw, overrides)
    problems: list[tuple[str, str]] = []
    algorithm_table = raw.pop("algorithm", None)
    base = _try(lambda: structure(raw, RawRunConfig, "", source), problems)
    algorithm = _try(lambda: structure_algorithm(algorithm_table, source), problems)
    if base is None and isinstance(raw.get("data"), (dict, str)):  # still check the data component's arguments
        data = _try(lambda: structure(raw["data"], ComponentSpec, "data", source), problems)
        if data is not None:
            problems.extend(component_problems(RawRunConfig(data=data)))
    elif base is not None:
        problems.extend(component_problems(base))
    if algorithm is not None:
        problems.extend(component_problems(algorithm, "algorithm"))
    if problems:
        problems = _with_plugin_hints([_with_seed_note(p, m) for p, m in problems], raw.get("default_scope"))
        raise ConfigError(_unique(problems), source)
    try:
        runtime = attrs.evolve(base.runtime, **{k: v for k, v in runtime_changes.items() if v is not None})
    except ConfigError as exc:
        raise ConfigError([(f"runtime.{p}", m) for p, m in exc.problems], source) from None
    return RunConfig(data=base.data, train=base.train, runtime=runtime, algorithm=algorithm, source=source)


def _with_plugin_hints(problems: list[tuple[str, str]], scope: Any = None) -> list[tuple[str, str]]:
    """A config in a dialect that a plugin which is not loaded translates (keys such as
    ``train_dataloader``): one line naming the plugin instead of one per foreign key."""
    from ..install_hints import config_key_hints

    unknown = [p for p, m in problems if "." not in p and "[" not in p and m.startswith("unknown key")]
    hints = config_key_hints(unknown, scope)
    if not hints:
        return problems
    # the dialect's other keys, and the [algorithm] it leaves to its translator, follow from the hint
    kept = [(p, m) for p, m in problems
            if p not in unknown and not (p == "algorithm" and m.startswith("missing [algorithm]"))]
    return [(keys[0], hint) for hint, keys in hints.items()] + kept


def _with_seed_note(path: str, message: str) -> tuple[str, str]:
    """An unknown top-level key of the original system's configs names its gml equivalent."""
    return (path, message + seed_note(path)) if message.startswith("unknown key") else (path, message)


def _unique(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(problems))


def _try(fn, problems: list[tuple[str, str]]):
    try:
        return fn()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    except GmlUserError as exc:
        problems.append(("", str(exc)))
        return None


def check_components(config: Any) -> None:
    """Resolve every typed component reference and type-check its arguments, all at once."""
    from ..components import check_components as check

    check(config)


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain-data view of a typed config (``gml config show``)."""
    from .converter import converter

    out = converter.unstructure(config)
    out.pop("source", None)
    # the field is declared as the base class; unstructure the algorithm's own config class
    out["algorithm"] = converter.unstructure(config.algorithm, unstructure_as=type(config.algorithm))
    return out


__all__ = ["apply_overrides", "check_components", "config_to_dict", "load_config", "read_raw",
           "structure_algorithm", "did_you_mean", "one_of"]
