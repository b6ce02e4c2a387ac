"""One live process per directory: an exclusive ``flock`` on a lock file.

The kernel releases the lock when its holder dies, SIGKILL included, so a crash never leaves a
stale lock behind. The holder writes its pid and start time into the file, so a process that is
refused can name it. ``gml run`` locks its work dir with it, ``search-run`` its task dir.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


class ProcessLock:
    """An exclusive lock on ``path``, held until ``release`` or process exit."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another live process holds it. Raises OSError if the file cannot be made."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # 0o666: the umask decides
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def holder(path: Path) -> dict[str, Any] | None:
        """What the live holder of ``path`` wrote (``{}`` if unreadable), or None when nobody holds it."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _record(os.pread(fd, 4096, 0))
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @staticmethod
    def describe(record: dict[str, Any] | None) -> str:
        """``pid 123, started 2026-01-01 10:00:00`` (or as much of it as is known)."""
        if not record or "pid" not in record:
            return "pid unknown"
        return f"pid {record['pid']}" + (f", started {record['started']}" if record.get("started") else "")


def _record(data: bytes) -> dict[str, Any]:
    text = data.decode(errors="replace").strip()
    if text.isdigit():  # an older search-run wrote the bare pid
        return {"pid": int(text)}
    try:
        record = json.loads(text or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
