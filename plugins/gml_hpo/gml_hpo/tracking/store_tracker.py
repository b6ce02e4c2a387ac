"""The embedded default tracker: the task store itself (plus ``search-ctl report``)."""

from __future__ import annotations

from .base import Tracker


class StoreTracker(Tracker):
    """Everything is already in the task's SQLite store; nothing else to write."""

    def location(self) -> str | None:
        return f"{self.task_dir / 'task.db'} (plots: search-ctl report)"
