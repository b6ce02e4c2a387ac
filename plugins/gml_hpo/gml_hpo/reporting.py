"""Reporting scalars from inside a trial, and reading them back in the scheduler.

A trial reports in either (or both) of two ways:

* ``gml_hpo.report(step=3, acc=0.91, loss=0.3)`` appends one JSON line to
  ``$GML_HPO_TRIAL_DIR/metrics.jsonl``;
* printing a line ``GML_HPO_REPORT {"step": 3, "acc": 0.91}`` on stdout (any language).

Records are flat JSON objects: ``step`` (int, optional: defaults to the previous
step + 1) and scalar values. This module imports only the standard library.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

#: stdout lines starting with this prefix carry one JSON record
STDOUT_PREFIX = "GML_HPO_REPORT "
METRICS_FILE = "metrics.jsonl"
ENV_TRIAL_DIR = "GML_HPO_TRIAL_DIR"
ENV_TRIAL_ID = "GML_HPO_TRIAL_ID"
ENV_TASK = "GML_HPO_TASK"


def _clean(scalars: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in scalars.items():
        if hasattr(value, "item"):  # numpy / torch scalars
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"gml_hpo.report: '{key}' must be a number, got {value!r}")
        out[str(key)] = float(value)
    return out


def report(step: int | None = None, **scalars: Any) -> bool:
    """Append scalars for ``step`` to the current trial's metrics file.

    Returns False (and does nothing) when not running inside a gml-hpo trial, so the
    same script runs standalone.
    """
    trial_dir = os.environ.get(ENV_TRIAL_DIR)
    if not trial_dir:
        return False
    record: dict[str, Any] = {}
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"gml_hpo.report: step must be an integer, got {step!r}")
        record["step"] = step
    record["time"] = time.time()
    record.update(_clean(scalars))
    line = (json.dumps(record, allow_nan=True) + "\n").encode()
    fd = os.open(Path(trial_dir) / METRICS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write on an O_APPEND file: lines never interleave
    finally:
        os.close(fd)
    return True


def parse_record(text: str, rejected: dict[str, str] | None = None) -> dict[str, Any] | None:
    """A record from one JSON line, or None when the line is not a valid record.

    Values that are not numbers are left out; with ``rejected`` each such key is noted
    there with the value as written (the first one seen), for a clear end reason."""
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        if rejected is not None:
            rejected.setdefault("(report line)", text.strip()[:40] + " is not a JSON object")
        return None
    step = obj.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        return None
    values = {}
    for k, v in obj.items():
        if k in ("step", "time"):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v):
            values[k] = float(v)
        elif rejected is not None:
            rejected.setdefault(str(k), json.dumps(v)[:40])
    if not values:
        return None
    return {"step": step, "values": values}


def pattern_record(line: str, pattern: re.Pattern, name: str,
                   rejected: dict[str, str] | None = None) -> dict[str, Any] | None:
    """A record ``{name: value}`` from a log line matching ``pattern`` (its one group is
    the value), or None; a match that is not a number is noted in ``rejected``."""
    m = pattern.search(line)
    if m is None:
        return None
    text = m.group(1)
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        if rejected is not None:
            rejected.setdefault(name, repr(text)[:40])
        return None
    return {"step": None, "values": {name: value}}


class LineTail:
    """Reads complete new lines of a growing file from a byte offset (crash-safe resume).

    The file stays open between reads (one ``read`` per poll); ``close`` releases it.
    """

    def __init__(self, path: Path, offset: int = 0):
        self.path = path
        self.offset = offset
        self._fh = None

    def read_lines(self) -> list[str]:
        if self._fh is None:
            try:
                self._fh = open(self.path, "rb")
            except FileNotFoundError:
                return []
        self._fh.seek(self.offset)
        data = self._fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return data[: end + 1].decode("utf-8", "replace").splitlines()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class MetricsReader:
    """Collects records of one trial from ``metrics.jsonl`` and prefixed lines of its log;
    with ``pattern`` (a regex with one group) also each log line it matches, as one value
    of ``pattern_name``. ``rejected`` notes reported values that were not numbers."""

    def __init__(self, trial_dir: Path, log_path: Path, metrics_offset: int = 0, log_offset: int = 0,
                 last_step: int | None = None, pattern: re.Pattern | None = None, pattern_name: str = ""):
        self.metrics = LineTail(trial_dir / METRICS_FILE, metrics_offset)
        self.log = LineTail(log_path, log_offset)
        self.last_step = last_step
        self.pattern = pattern
        self.pattern_name = pattern_name
        self.rejected: dict[str, str] = {}

    def close(self) -> None:
        self.metrics.close()
        self.log.close()

    @property
    def offsets(self) -> tuple[int, int]:
        return self.metrics.offset, self.log.offset

    def read(self) -> list[tuple[int, dict[str, float]]]:
        """New ``(step, values)`` records, in the order they were written per source."""
        recs = [parse_record(text, self.rejected) for text in self.metrics.read_lines()]
        for line in self.log.read_lines():
            if line.startswith(STDOUT_PREFIX):
                recs.append(parse_record(line[len(STDOUT_PREFIX):], self.rejected))
            elif self.pattern is not None:
                recs.append(pattern_record(line, self.pattern, self.pattern_name, self.rejected))
        out: list[tuple[int, dict[str, float]]] = []
        for rec in recs:
            if rec is None:
                continue
            step = rec["step"]
            if step is None:
                step = 0 if self.last_step is None else self.last_step + 1
            self.last_step = step if self.last_step is None else max(self.last_step, step)
            out.append((step, rec["values"]))
        return out
