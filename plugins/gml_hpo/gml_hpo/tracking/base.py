"""The tracking interface: where a task's trials are compared.

A tracker is registered through the core registrar ``gml_register_tracker``; the
top-level ``tracking`` table of a task file picks one by ``type`` (default ``store``,
the embedded task store itself) and the other keys are structured into the class's
``options_class`` (strict, with key paths such as ``tracking.tracking_uri``).

The scheduler calls, in order: ``start_task`` once per scheduler run (``task.resumed``
is True after a restart), ``trial_started`` / ``trial_metrics`` / ``trial_finished``
for each trial (a re-run trial after a crash gets ``trial_started`` again with a
higher ``attempt``), then ``close``. Tracker errors never stop the search: the
scheduler records them as task events and goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..records import TaskInfo, TrialRecord


class Tracker:
    """Base class; every method is a no-op so a backend overrides what it needs."""

    options_class: ClassVar[type | None] = None

    def __init__(self, options: Any = None, *, task_dir: Path | None = None):
        self.options = options
        self.task_dir = Path(task_dir) if task_dir is not None else Path.cwd()

    def start_task(self, task: TaskInfo) -> None:
        """The task starts (or resumes)."""

    def trial_started(self, trial: TrialRecord) -> None:
        """A trial was submitted; ``trial.params`` holds its parameters."""

    def trial_metrics(self, trial_id: str, step: int, metrics: dict[str, float]) -> None:
        """Intermediate scalars reported by a trial at ``step``."""

    def trial_finished(self, trial: TrialRecord) -> None:
        """A trial ended: ``trial.state``, ``trial.reward``, ``trial.exit_code`` are final."""

    def location(self) -> str | None:
        """Where the comparison lives (a URI or path), shown by ``search-ctl show``."""
        return None

    def close(self) -> None:
        """Flush and release resources at the end of a scheduler run."""
