"""Recorded Slurm outputs and a fake command runner for the Slurm unit tests (no Slurm needed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Callable

RECORDED = Path(__file__).parent / "data" / "recorded"


def recorded(name: str) -> dict:
    """One recording of scripts/slurm/record_outputs.py: argv, rc, stdout, stderr, note."""
    return json.loads((RECORDED / f"{name}.json").read_text())


def completed(argv, rc: int = 0, stdout: str = "", stderr: str = "") -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(argv, rc, stdout, stderr)


def from_recording(argv, name: str) -> subprocess.CompletedProcess:
    rec = recorded(name)
    return completed(argv, rec["rc"], rec["stdout"], rec["stderr"])


class FakeRunner:
    """Stands in for ``subprocess.run``: ``handlers[tool](argv) -> CompletedProcess``; records calls."""

    def __init__(self, **handlers: Callable):
        self.handlers = handlers
        self.calls: list[list[str]] = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        tool = Path(argv[0]).name
        if tool not in self.handlers:
            raise AssertionError(f"unexpected command {argv}")
        return self.handlers[tool](list(argv))

    def of(self, tool: str) -> list[list[str]]:
        return [c for c in self.calls if Path(c[0]).name == tool]
