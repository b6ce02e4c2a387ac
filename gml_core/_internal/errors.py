"""User-facing errors: one clear line each, exit code 2 from the CLI."""

from __future__ import annotations

import difflib
from typing import Iterable, Sequence


class GmlUserError(Exception):
    """Bad input from the user (config, file, plugin name). Printed without traceback."""


class ConfigError(GmlUserError):
    """One or more problems in a config; each is ``(key_path, message)``."""

    def __init__(self, problems: Sequence[tuple[str, str]], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(f"{prefix}{path}: {msg}" if path else f"{prefix}{msg}" for path, msg in self.problems)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if str(name).lower() in lowered:
            close = [lowered[str(name).lower()]]
    return f" (did you mean '{close[0]}'?)" if close else ""


def one_of(choices: Iterable[str], limit: int = 30) -> str:
    """Format accepted values for an error message."""
    items = sorted(str(c) for c in choices)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "") if items else "(none)"
