"""Readable subnet files (TOML and JSON) written by the search and read by export / evaluation.

A results file holds ``[[subnets]]`` entries (``rank``, ``score``, costs and an
``arch`` table in the nested form of the search space). ``read_subnet`` accepts
such a file (``rank`` picks one), a file with a top-level ``arch`` table, or a
bare architecture table (nested or with flat keys).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

from gml_core.api import ConfigError, GmlUserError, atomic_write_text

from .space import SearchSpace


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                          ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def results_to_toml(entries: Sequence[Mapping[str, Any]], header: str = "") -> str:
    """``[[subnets]]`` tables; each entry's ``arch`` (nested dict) becomes ``[subnets.arch.<part>]`` tables."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for entry in entries:
        lines += ["", "[[subnets]]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in entry.items() if k != "arch"]
        arch = entry.get("arch", {})
        scalars = {k: v for k, v in arch.items() if not isinstance(v, Mapping)}
        if scalars:
            lines.append("[subnets.arch]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
        for part, table in arch.items():
            if isinstance(table, Mapping):
                lines.append(f"[subnets.arch.{_toml_key(part)}]")
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write_results(entries: Sequence[Mapping[str, Any]], out_dir: Path, stem: str = "best_subnets",
                  header: str = "") -> tuple[Path, Path]:
    """Write ``<stem>.toml`` and ``<stem>.json`` atomically; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    toml_path = atomic_write_text(out_dir / f"{stem}.toml", results_to_toml(entries, header))
    json_path = atomic_write_text(out_dir / f"{stem}.json", json.dumps({"subnets": list(entries)}, indent=2))
    return toml_path, json_path


def read_subnet(path: str | Path, space: SearchSpace, rank: int = 1) -> dict[str, Any]:
    """The flat subnet stored in ``path`` (TOML or JSON), validated against ``space``."""
    path = Path(path)
    if not path.is_file():
        raise GmlUserError(f"subnet file not found: {path}")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            data = tomllib.loads(path.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise GmlUserError(f"{path}: cannot parse: {exc}") from None
    where = "arch"
    if isinstance(data, Mapping) and "subnets" in data:
        subnets = data["subnets"]
        if not isinstance(subnets, list) or not 1 <= rank <= len(subnets):
            raise GmlUserError(f"{path}: rank {rank} not available; the file holds {len(subnets)} subnets")
        data, where = subnets[rank - 1].get("arch"), f"subnets[{rank - 1}].arch"
    elif isinstance(data, Mapping) and "arch" in data:
        data = data["arch"]
    else:
        where = ""
    try:
        return space.parse_subnet(data, where)
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(path)) from None
