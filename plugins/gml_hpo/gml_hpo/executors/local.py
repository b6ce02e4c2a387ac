"""The local executor: each trial is a bash process leading its own process group.

Handles are self-sufficient strings ``local:<pid>:<start-ticks>:<trial_dir>`` so a
restarted scheduler can poll, cancel and re-attach trials it did not start; the
process start time (from /proc) guards against a recycled pid.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from .base import (
    PGID_FILE,
    PID_FILE,
    SCRIPT_FILE,
    Executor,
    JobState,
    JobStatus,
    TrialLaunch,
    read_exit_code,
    write_trial_script,
)

# each trial leads its own process group (killpg reaches all it started; a terminal's Ctrl-C
# does not); process_group=0 keeps Python's fast vfork path, start_new_session does not
_OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}


def _proc_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks ('' off Linux), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return _alive_by_signal(pid)
    fields = stat[stat.rfind(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of stat: starttime


def _alive_by_signal(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


def _parse(handle: str) -> tuple[int, str, Path]:
    kind, pid, start, trial_dir = handle.split(":", 3)
    if kind != "local":
        raise ValueError(f"not a local executor handle: {handle!r}")
    return int(pid), start, Path(trial_dir)


class LocalExecutor(Executor):
    """Runs trials as local subprocesses (``scheduler.type: LocalScheduler``)."""

    #: trials share this machine's cores (the scheduler sets OMP_NUM_THREADS = cores / parallel_size)
    shares_host = True

    def __init__(self, options=None, **kwargs):
        super().__init__(options, **kwargs)
        self._procs: dict[str, subprocess.Popen] = {}
        self._unreaped: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()

    def submit(self, launch: TrialLaunch) -> str:
        script = write_trial_script(launch)
        if launch.trial_dir.joinpath(PID_FILE).exists():  # an earlier attempt ran here
            for stale in ("exit_code", PID_FILE, PGID_FILE):
                (launch.trial_dir / stale).unlink(missing_ok=True)
        proc = subprocess.Popen(
            ["bash", str(script)], cwd=str(launch.trial_dir), **_OWN_GROUP,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **launch.env},
        )
        handle = f"local:{proc.pid}:{_proc_start(proc.pid) or ''}:{launch.trial_dir}"
        self._procs[handle] = self._unreaped[handle] = proc
        return handle

    def _alive(self, handle: str) -> bool:
        pid, start, _ = _parse(handle)
        now = _proc_start(pid)
        return now is not None and (not start or not now or now == start)

    def poll(self, handles: list[str]) -> dict[str, JobStatus]:
        out: dict[str, JobStatus] = {}
        for handle in handles:
            _, _, trial_dir = _parse(handle)
            proc = self._procs.get(handle)
            running = proc.poll() is None if proc is not None else self._alive(handle)
            rc = read_exit_code(trial_dir)
            if rc is not None:
                out[handle] = JobStatus(JobState.FINISHED, rc)
            elif running:
                out[handle] = JobStatus(JobState.RUNNING)
            elif handle in self._cancelled:
                out[handle] = JobStatus(JobState.CANCELLED, None, "cancelled")
            elif proc is not None:
                out[handle] = JobStatus(JobState.FAILED, None, f"trial wrapper ended with status {proc.returncode}")
            else:
                out[handle] = JobStatus(JobState.LOST, None, "process gone without an exit_code sentinel")
        return out

    def cancel(self, handle: str, graceful: bool = True) -> None:
        """SIGTERM (graceful) or SIGKILL to the wrapper's process group and the command's
        own group (``pgid``); the wrapper itself sends SIGKILL after the grace period too."""
        pid, _, trial_dir = _parse(handle)
        self._cancelled.add(handle)
        if not self._alive(handle):  # the wrapper outlives its command's group: nothing is left
            return
        groups = [pid]
        try:
            groups.append(int((trial_dir / PGID_FILE).read_text().strip()))
        except (OSError, ValueError):
            pass
        for group in groups:
            try:
                os.killpg(group, signal.SIGTERM if graceful else signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc = self._procs.get(handle)
        if proc is not None:
            proc.poll()

    def reattach(self, handle: str) -> bool:
        return self._alive(handle)

    def recover(self, launch: TrialLaunch) -> str | None:
        try:
            pid = int((launch.trial_dir / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return None
        start = _proc_start(pid)
        if start is None:
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            return None
        if str(launch.trial_dir / SCRIPT_FILE) not in cmdline:
            return None
        return f"local:{pid}:{start}:{launch.trial_dir}"

    def wait(self, timeout: float) -> None:
        """Sleep until ``timeout`` or until a trial process started here ends (pidfds where
        the OS has them, else 10 ms polling)."""
        # reap what ended (a zombie's pidfd stays readable: it would wake us at once, forever)
        self._unreaped = {h: p for h, p in self._unreaped.items() if p.poll() is None}
        live = list(self._unreaped.values())
        if not live:
            time.sleep(timeout)
            return
        if hasattr(os, "pidfd_open"):
            fds = []
            try:
                for p in live:
                    fds.append(os.pidfd_open(p.pid))
            except OSError:  # an old kernel, or a process already reaped
                pass
            else:
                try:
                    poller = select.poll()
                    for fd in fds:
                        poller.register(fd, select.POLLIN)
                    poller.poll(max(0, int(timeout * 1000)))
                    return
                finally:
                    for fd in fds:
                        os.close(fd)
            for fd in fds:
                os.close(fd)
        deadline = time.monotonic() + timeout
        while not any(p.poll() is not None for p in live):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.01, left))

    def describe(self) -> str:
        return "local subprocesses"

    def close(self) -> None:
        for proc in self._procs.values():
            proc.poll()
