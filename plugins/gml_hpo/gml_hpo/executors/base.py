"""The executor interface: how a trial is launched, polled, cancelled and re-attached.

An executor is registered through the core registrar ``gml_register_executor`` under
the name users write as ``scheduler.type`` in a task file (``LocalScheduler``,
``SlurmScheduler``, ...). The scheduler looks the name up in the registry, so a new
executor needs no change to the scheduler.

Executor-specific options live in a table of the ``scheduler`` section named by the
class attribute ``options_key`` (e.g. ``scheduler.slurm``); they are structured into
``options_class`` (a frozen attrs class, strict) at validation time, with key paths.

Every executor runs the script written by :func:`write_trial_script`: it runs the
rendered command with bash in ``launch.cwd``, sends its output to
``<trial_dir>/trial.log`` and, when the command ends, writes the sentinel file
``<trial_dir>/exit_code`` atomically (temp file + rename). A job that left the
executor's view is resolved from that sentinel.
"""

from __future__ import annotations

import abc
import enum
import math
import os
import shlex
from pathlib import Path
from typing import Any, ClassVar

import attrs

from ..reporting import STDOUT_PREFIX

SENTINEL = "exit_code"
LOG_FILE = "trial.log"
SCRIPT_FILE = "trial.sh"
COMMAND_FILE = "command.sh"
PID_FILE = "pid"
PGID_FILE = "pgid"


class JobState(str, enum.Enum):
    """What an executor knows about one job.

    FINISHED: the wrapper ended and wrote the sentinel (``exit_code`` holds the command's
    status, zero or not). FAILED: the job failed outside the command (launch error, node
    failure) with no sentinel. CANCELLED / TIMEOUT: cancelled, or over the cluster's time
    limit. LOST: the executor no longer knows the job and there is no sentinel.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    LOST = "LOST"

    @property
    def active(self) -> bool:
        return self in (JobState.PENDING, JobState.RUNNING)


@attrs.frozen
class JobStatus:
    state: JobState
    exit_code: int | None = None
    reason: str = ""


@attrs.frozen(kw_only=True)
class TrialLaunch:
    """Everything needed to start one trial.

    ``env`` holds at least GML_HPO_TASK, GML_HPO_TRIAL_ID and GML_HPO_TRIAL_DIR;
    ``cwd`` is where the command runs (the task's working directory; None means
    ``trial_dir``); ``capture_log`` False keeps only report lines in the log; ``grace_s``
    is the wait between SIGTERM and SIGKILL when the trial is stopped.
    """

    trial_id: str
    command: str
    trial_dir: Path
    env: dict[str, str] = attrs.field(factory=dict)
    time_limit_s: float | None = None
    cwd: Path | None = None
    capture_log: bool = True
    grace_s: float = 10.0

    @property
    def log_path(self) -> Path:
        return self.trial_dir / LOG_FILE

    @property
    def script_path(self) -> Path:
        return self.trial_dir / SCRIPT_FILE


class Executor(abc.ABC):
    """Base class of trial executors.

    Handles are strings persisted in the task store and must be self-sufficient: after
    a scheduler restart ``poll`` / ``cancel`` / ``reattach`` receive only the handle in
    a new process (encode what you need, e.g. the trial directory for the sentinel).
    The scheduler enforces ``time_limits_per_job`` itself (graceful cancel, then a hard
    cancel after a grace period); ``launch.time_limit_s`` lets a backend also set its
    own limit (e.g. Slurm ``--time``). The scheduler calls these methods from a single
    thread.
    """

    #: name of the ``scheduler`` sub-table holding this executor's options (None: no options)
    options_key: ClassVar[str | None] = None
    #: frozen attrs class the options table is structured into
    options_class: ClassVar[type | None] = None

    def __init__(self, options: Any = None, *, task_name: str = "", task_dir: Path | None = None):
        self.options = options
        self.task_name = task_name
        self.task_dir = Path(task_dir) if task_dir is not None else Path.cwd()

    @abc.abstractmethod
    def submit(self, launch: TrialLaunch) -> str:
        """Start the trial; return its handle (a pid for local, a job id for Slurm)."""

    def submit_many(self, launches: list[TrialLaunch]) -> list[str]:
        """Start several trials that are ready at the same time; handles in order. The
        default submits one by one; a backend may use one array job instead."""
        return [self.submit(launch) for launch in launches]

    @abc.abstractmethod
    def poll(self, handles: list[str]) -> dict[str, JobStatus]:
        """The status of each handle (one batch query where the backend allows it)."""

    @abc.abstractmethod
    def cancel(self, handle: str, graceful: bool = True) -> None:
        """Ask the job to stop (graceful: SIGTERM-like), or kill it (graceful=False)."""

    @abc.abstractmethod
    def reattach(self, handle: str) -> bool:
        """After a scheduler restart: is this job still queued or running?"""

    def recover(self, launch: TrialLaunch) -> str | None:
        """Find a job started for ``launch`` whose handle was never recorded (the scheduler
        died between submitting and writing the handle). None when there is none."""
        return None

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds between scheduler ticks; a backend that can tell
        when a job ends (local processes) returns early."""
        import time

        time.sleep(timeout)

    def describe(self) -> str:
        """One line for progress views and logs."""
        return type(self).__name__

    def close(self) -> None:
        """Release resources at the end of a scheduler run (jobs keep running)."""


def read_exit_code(trial_dir: Path) -> int | None:
    """The command's exit status from the sentinel file, or None while it is absent."""
    try:
        text = (Path(trial_dir) / SENTINEL).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def render_trial_script(launch: TrialLaunch) -> str:
    """The bash wrapper run by every executor (see the module docstring).

    The command runs in its own process group (``set -m``; its id is written to ``pgid``).
    On SIGTERM/SIGINT the wrapper sends SIGTERM to that group and SIGKILL ``grace_s`` + 1-2 s
    later (the scheduler's own SIGKILL comes at ``grace_s``); when the command ends, whatever it left running in its group gets the same
    treatment before the sentinel is written, so no trial process outlives its trial.
    Every path is shell-quoted, so any character (spaces, quotes) is safe.
    """
    tdir = shlex.quote(str(launch.trial_dir))
    cwd = shlex.quote(str(launch.cwd or launch.trial_dir))
    exports = "\n".join(f"export {k}={shlex.quote(str(v))}" for k, v in sorted(launch.env.items()))
    log = shlex.quote(str(launch.log_path))
    cmd = shlex.quote(str(launch.trial_dir / COMMAND_FILE))
    grace = max(1, math.ceil(launch.grace_s))
    # the command runs in a forked subshell (no new bash to exec: cheaper for short trials)
    if launch.capture_log:
        run = f"( . {cmd} ) > {log} 2>&1 < /dev/null &"
    else:
        prefix = shlex.quote("^" + STDOUT_PREFIX)
        # the outer subshell ends after grep has written everything, with the command's status
        run = (f"( ( . {cmd} ) 2>&1 < /dev/null | grep --line-buffered -a {prefix} > {log}; "
               f"exit \"${{PIPESTATUS[0]}}\" ) &")
    sentinel = f"{tdir}/.{SENTINEL}.$$"
    # a backstop for a scheduler that is gone, so it acts 1-2 s after the scheduler's own SIGKILL
    # at grace_s (SECONDS counts whole seconds)
    return f"""#!/usr/bin/env bash
# gml-hpo trial wrapper for {launch.trial_id}: runs command.sh, then writes the exit_code sentinel
{exports}
echo "$$" > {tdir}/{PID_FILE}
cd {cwd} || {{ printf 'cannot cd to %s\\n' {cwd} > {log}; echo 126 > {sentinel}; mv -f {sentinel} {tdir}/{SENTINEL}; exit 126; }}
child=""
killer=""
stopping=""
stop_group() {{  # SIGTERM to the command's group now, SIGKILL after the grace period
  stopping=1
  [ -n "$child" ] || return 0
  kill -TERM -- "-$child" 2>/dev/null
  if [ -z "$killer" ]; then
    ( trap '' TERM INT; end=$((SECONDS + {grace} + 2))
      while (( SECONDS < end )) && group_alive; do sleep 0.2; done
      kill -KILL -- "-$child" 2>/dev/null ) &
    killer=$!
  fi
}}
group_alive() {{  # a live (not zombie) process in the command's group; zombies wait for init
  kill -0 -- "-$child" 2>/dev/null || return 1
  [ -r /proc/self/stat ] || return 0
  local f s
  for f in /proc/[0-9]*/stat; do
    {{ read -r s < "$f"; }} 2>/dev/null || continue
    s=${{s##*) }}
    set -- $s
    [ "$3" = "$child" ] && [ "$1" != Z ] && return 0
  done
  return 1
}}
trap stop_group TERM INT
set -m
{run}
child=$!
set +m
echo "$child" > {tdir}/.{PGID_FILE}.$$ && mv -f {tdir}/.{PGID_FILE}.$$ {tdir}/{PGID_FILE}
[ -n "$stopping" ] && stop_group
wait "$child"; rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
if group_alive; then  # the command left processes behind: stop them too
  stop_group
  while group_alive; do sleep 0.1; done
fi
[ -n "$killer" ] && wait "$killer"
printf '%s\\n' "$rc" > {sentinel} && mv -f {sentinel} {tdir}/{SENTINEL}
exit "$rc"
"""


def write_trial_script(launch: TrialLaunch) -> Path:
    """Write ``command.sh`` and ``trial.sh`` (mode 755) into the trial directory; return trial.sh.

    The scheduler records a trial as started only after this and the submission, so a
    crash in between leaves a PENDING trial whose scripts are simply written again.
    """
    if not launch.trial_dir.is_dir():
        launch.trial_dir.mkdir(parents=True, exist_ok=True)
    for name, text in ((COMMAND_FILE, launch.command + "\n"), (SCRIPT_FILE, render_trial_script(launch))):
        fd = os.open(launch.trial_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    return launch.script_path


def tail(path: Path, lines: int = 20, max_bytes: int = 16384) -> str:
    """The last ``lines`` lines of a text file ('' when missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
