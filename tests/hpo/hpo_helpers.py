"""Helpers shared by the gml-hpo tests (a uniquely named module, unlike ``conftest``)."""

from __future__ import annotations

import sys
from pathlib import Path

PY = sys.executable
BIN = Path(sys.executable).parent


def report_cmd(values: list[float], sleep: float = 0.0, attr: str = "acc", exit_code: int | None = 0) -> str:
    """A shell trial printing one report line per value (optionally sleeping between them);
    used as a Categorical value of a ``bash -c {cmd}`` template (values are shell-quoted), so braces need no escaping."""
    parts = []
    for i, v in enumerate(values, start=1):
        parts.append(f"echo 'GML_HPO_REPORT {{\"step\": {i}, \"{attr}\": {v}}}'")
        if sleep:
            parts.append(f"sleep {sleep}")
    if exit_code is not None:
        parts.append(f"exit {exit_code}")
    return "; ".join(parts)
