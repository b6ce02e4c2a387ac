"""The scheduler's ownership of a task dir: gml-core's process lock on ``<task_dir>/scheduler.lock``."""

from __future__ import annotations

from pathlib import Path

from gml_core.api import ProcessLock

LOCK_FILE = "scheduler.lock"


class TaskLock(ProcessLock):
    """One live scheduler per task (released by the kernel when it dies)."""

    def __init__(self, task_dir: Path):
        super().__init__(task_dir / LOCK_FILE)

    @staticmethod
    def held(task_dir: Path) -> int | None:
        """The pid of the live scheduler of ``task_dir`` (-1 if unreadable), or None."""
        holder = ProcessLock.holder(task_dir / LOCK_FILE)
        return None if holder is None else int(holder.get("pid") or -1)
