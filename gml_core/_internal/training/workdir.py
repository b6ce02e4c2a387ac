"""Work-dir ownership: one live run per work dir, and finished runs are never overwritten.

A live run holds an exclusive ``flock`` on ``<work_dir>/.gml.lock`` (the kernel releases it
when the process dies, SIGKILL included); a second run in that work dir is refused, naming the
holder's pid. A run started without ``--resume`` in a work dir that already holds a run
(checkpoints or a summary) does not touch it: it writes to the first free sibling
``<work_dir>-2``, ``<work_dir>-3``, ... and says so. ``--resume`` continues in the work dir given.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import GmlUserError
from ..process_lock import ProcessLock

LOCK = ".gml.lock"
_RUN_FILES = ("summary.json", "last_checkpoint", "best.pth")


def holds_a_run(work_dir: Path) -> bool:
    """Whether ``work_dir`` has results or checkpoints of an earlier run."""
    if not work_dir.is_dir():
        return False
    return any((work_dir / name).exists() for name in _RUN_FILES) or any(work_dir.glob("epoch_*.pth"))


class WorkDirLock:
    """An exclusive lock on a work dir, held until ``release`` or process exit."""

    def __init__(self, work_dir: Path, created: bool):
        self.work_dir, self.created = work_dir, created
        self._lock = ProcessLock(work_dir / LOCK)

    def acquire(self) -> None:
        if not self._lock.acquire():
            _refuse(self.work_dir, ProcessLock.holder(self.work_dir / LOCK))

    def release(self, failed: bool = False) -> None:
        """Unlock; after a failed start, a work dir this run created and left empty is removed."""
        self._lock.release()
        if failed and self.created:
            leftovers = [p for p in self.work_dir.iterdir() if p.name != LOCK] if self.work_dir.is_dir() else []
            if not leftovers:
                shutil.rmtree(self.work_dir, ignore_errors=True)


def _refuse(work_dir: Path, holder: dict | None) -> None:
    raise GmlUserError(f"work dir {work_dir} is in use by another gml run ({ProcessLock.describe(holder)}); wait for "
                       "it to end or pass another --work-dir")


def claim(requested: Path, resume: bool) -> tuple[WorkDirLock, str]:
    """Lock the work dir this run writes to; returns the lock and a note (``""`` when none).

    Without ``resume``, a work dir holding an earlier run is left alone and the first free
    sibling ``<name>-N`` is used instead.
    """
    work_dir, note = requested, ""
    if not resume and holds_a_run(requested):
        _refuse_if_locked(requested)
        n = 2
        while holds_a_run(requested.with_name(f"{requested.name}-{n}")) or _locked(
                requested.with_name(f"{requested.name}-{n}")):
            n += 1
        work_dir = requested.with_name(f"{requested.name}-{n}")
        note = (f"work dir {requested} holds an earlier run; this run writes to {work_dir} "
                "(pass --resume to continue the earlier one)")
    created = not work_dir.exists()
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GmlUserError(f"--work-dir {work_dir}: cannot create it ({exc.strerror or exc})") from None
    if not os.access(work_dir, os.W_OK | os.X_OK):
        raise GmlUserError(f"--work-dir {work_dir}: not writable")
    lock = WorkDirLock(work_dir, created)
    try:
        lock.acquire()
    except OSError as exc:
        raise GmlUserError(f"--work-dir {work_dir}: cannot write its lock file ({exc.strerror or exc})") from None
    for stale in work_dir.glob(".*.tmp"):  # a writer killed mid-write; no live run owns it (we hold the lock)
        stale.unlink(missing_ok=True)
    return lock, note


def _locked(work_dir: Path) -> bool:
    return ProcessLock.holder(work_dir / LOCK) is not None


def _refuse_if_locked(work_dir: Path) -> None:
    holder = ProcessLock.holder(work_dir / LOCK)
    if holder is not None:
        _refuse(work_dir, holder)
