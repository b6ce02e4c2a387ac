"""The scheduler's ownership of a task: an exclusive flock the kernel releases when the process dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "scheduler.lock"


class TaskLock:
    """An exclusive flock on ``<task_dir>/scheduler.lock`` (released by the kernel on death)."""

    def __init__(self, task_dir: Path):
        self.path = task_dir / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            return False
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @staticmethod
    def held(task_dir: Path) -> int | None:
        """The pid of the live scheduler of ``task_dir``, or None."""
        path = task_dir / LOCK_FILE
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return int(path.read_text().strip() or 0) or -1
            except (OSError, ValueError):
                return -1
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
