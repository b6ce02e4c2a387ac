"""The Slurm executor (``scheduler.type: SlurmScheduler``): each trial is one Slurm batch job.

The job runs the common trial wrapper (``trial.sh``, see ``executors.base``) in the trial
directory on the shared file system; the wrapper writes the ``exit_code`` sentinel when the
command ends. Handles are ``slurm:<job id>:<trial_dir>`` (``<job id>`` is ``123`` or
``123_4`` for element 4 of array 123), so a restarted scheduler polls and cancels jobs it
did not submit. Several trials starting together go out as one array job
(:meth:`SlurmExecutor.submit_many`).

State: one ``squeue`` call per poll for all handles; a job that left the queue is resolved
from ``scontrol show job``, then the sentinel file (and ``sacct`` when the cluster keeps
accounting). Cancelling: a graceful ``scancel --signal=TERM --full`` first (the trial
wrapper forwards it to the command's process group and sends SIGKILL after the grace
period); the scheduler follows with ``cancel(graceful=False)`` after its grace period:
``scancel --signal=KILL --full`` then a plain ``scancel``. A pending job is cancelled
outright.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import time
from pathlib import Path
from typing import Any, Optional

import attrs

from gml_core.api import converter

from .base import SENTINEL, Executor, JobState, JobStatus, TrialLaunch, read_exit_code, write_trial_script
from .slurm_cli import PENDING_STATES, SlurmCLI, SlurmError, SlurmJob, is_job_handle

#: written into the trial directory right after sbatch returns (for ``recover``)
JOB_ID_FILE = "slurm_job_id"
_TIME = re.compile(r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|"
                   r"UNLIMITED|INFINITE)$")
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.+-]")


class SlurmTime(str):
    """A Slurm time limit (``minutes``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``, ``UNLIMITED``)."""


class PositiveInt(int):
    """An integer > 0."""


def _structure_time(value: Any, _type: type) -> SlurmTime:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return SlurmTime(str(value))  # plain minutes
    if not isinstance(value, str):
        raise TypeError(f"expected a Slurm time limit string such as \"02:00:00\", got {value!r}")
    if not _TIME.match(value):
        raise ValueError(f"'{value}' is not a Slurm time limit; accepted: minutes, MM:SS, HH:MM:SS, "
                         "D-HH, D-HH:MM, D-HH:MM:SS (e.g. \"02:00:00\")")
    return SlurmTime(value)


def _structure_positive(value: Any, _type: type) -> PositiveInt:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {value}")
    return PositiveInt(value)


# checked while structuring, so they are reported with every other problem of the task file
converter.register_structure_hook(SlurmTime, _structure_time)
converter.register_structure_hook(PositiveInt, _structure_positive)


@attrs.frozen(kw_only=True)
class SlurmOptions:
    """``scheduler.slurm`` table: sbatch resources and executor behaviour.

    Resource keys map to the sbatch option of the same name (``cpus_per_task`` ->
    ``--cpus-per-task``); ``extra_args`` are passed to sbatch verbatim. Without ``time``
    the job's Slurm limit is ``time_limits_per_job`` plus ``time_margin_min`` minutes, so
    gml's own timeout acts first and Slurm still stops the job if the scheduler is gone.
    """

    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    time: Optional[SlurmTime] = None
    nodes: Optional[PositiveInt] = None
    ntasks: Optional[PositiveInt] = None
    ntasks_per_node: Optional[PositiveInt] = None
    cpus_per_task: Optional[PositiveInt] = None
    gpus_per_task: Optional[PositiveInt] = None
    gpus: Optional[PositiveInt] = None
    gres: Optional[str] = None
    mem: Optional[str] = None
    constraint: Optional[str] = None
    extra_args: list[str] = attrs.field(factory=list)
    array: bool = True
    array_throttle: Optional[PositiveInt] = None
    job_name_prefix: str = "gml"
    time_margin_min: int = 2
    poll_interval_s: float = 2.0
    sentinel_grace_s: float = 30.0
    command_timeout_s: float = 60.0
    bin_dir: Optional[str] = None

    def sbatch_args(self) -> list[str]:
        """The resource options as sbatch arguments (without job name, dirs and time)."""
        out = []
        for key in ("partition", "account", "qos", "nodes", "ntasks", "ntasks_per_node", "cpus_per_task",
                    "gpus_per_task", "gpus", "gres", "mem", "constraint"):
            value = getattr(self, key)
            if value is not None:
                out.append(f"--{key.replace('_', '-')}={value}")
        return out + list(self.extra_args)


def _pattern_safe(path: Path) -> str:
    """``path`` for sbatch's ``--output`` pattern: a literal ``%`` is written ``%%``."""
    return str(path).replace("%", "%%")


def make_handle(job_id: str, trial_dir: Path) -> str:
    return f"slurm:{job_id}:{trial_dir}"


def parse_handle(handle: str) -> tuple[str, Path]:
    kind, job_id, trial_dir = handle.split(":", 2)
    if kind != "slurm" or not is_job_handle(job_id):
        raise ValueError(f"not a Slurm executor handle: {handle!r}")
    return job_id, Path(trial_dir)


def resolve_status(job: SlurmJob | None, exit_code: int | None, *, cancelled_by_us: bool = False,
                   accounting_checked: bool = False) -> JobStatus:
    """The executor's verdict on one job from what Slurm says and the sentinel.

    ``job`` is None when Slurm no longer knows the job. The sentinel (``exit_code``) is the
    command's status; Slurm's own verdict wins where Slurm acted (time limit, cancel,
    node failure, out of memory). COMPLETED/FAILED without a sentinel are handled by the
    caller's grace period before they reach here.
    """
    if job is None:
        if exit_code is not None:
            return JobStatus(JobState.FINISHED, exit_code)
        where = "nor in accounting" if accounting_checked else "(purged after MinJobAge; no accounting)"
        return JobStatus(JobState.LOST, None, f"Slurm no longer knows the job {where} and it left no "
                                              f"{SENTINEL} sentinel")
    state = job.state
    if state in PENDING_STATES:
        return JobStatus(JobState.PENDING, None, job.reason if job.reason not in ("", "None") else "")
    if job.active:
        return JobStatus(JobState.RUNNING)
    if state in ("TIMEOUT", "DEADLINE"):
        limit = f" {job.time_limit}" if job.time_limit else ""
        return JobStatus(JobState.TIMEOUT, exit_code, f"Slurm {state}: time limit{limit} reached")
    if state == "CANCELLED":
        who = "scancel by gml" if cancelled_by_us else "cancelled outside gml (scancel or an administrator)"
        return JobStatus(JobState.CANCELLED, exit_code, f"Slurm CANCELLED: {who}")
    if state in ("COMPLETED", "FAILED"):
        if exit_code is not None:
            return JobStatus(JobState.FINISHED, exit_code)
        if job.signal:
            return JobStatus(JobState.FAILED, None, f"Slurm {job.describe()}: the job was killed by signal "
                                                    f"{job.signal} before the command ended")
        if state == "COMPLETED":
            return JobStatus(JobState.FINISHED, job.exit_code or 0,
                             f"Slurm {job.describe()}; no {SENTINEL} sentinel appeared, exit code taken from Slurm")
        return JobStatus(JobState.FAILED, job.exit_code, f"Slurm {job.describe()} without an {SENTINEL} sentinel")
    # NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, PREEMPTED, SPECIAL_EXIT, REVOKED...
    return JobStatus(JobState.FAILED, exit_code, f"Slurm {job.describe()}")


class SlurmExecutor(Executor):
    """Submits each trial as a Slurm batch job (``scheduler.type: SlurmScheduler``)."""

    options_key = "slurm"
    options_class = SlurmOptions

    def __init__(self, options: SlurmOptions | None = None, *, cli: SlurmCLI | None = None, **kwargs):
        super().__init__(options if options is not None else SlurmOptions(), **kwargs)
        opts: SlurmOptions = self.options
        self.cli = cli or SlurmCLI(opts.bin_dir, timeout_s=opts.command_timeout_s)
        self._cancelled: set[str] = set()
        self._queue: dict[str, SlurmJob] = {}
        self._queue_at = -math.inf
        self._queue_ids: set[str] = set()
        self._ended_without_sentinel: dict[str, float] = {}

    # -- submission ------------------------------------------------------------------------

    def _job_name(self, suffix: str) -> str:
        return _NAME_SAFE.sub("_", f"{self.options.job_name_prefix}-{self.task_name}-{suffix}")[:128]

    def _time_args(self, launches: list[TrialLaunch]) -> list[str]:
        if self.options.time is not None:
            return [f"--time={self.options.time}"]
        limits = [launch.time_limit_s for launch in launches]
        if not limits or any(limit is None for limit in limits):
            return []
        minutes = math.ceil(max(limits) / 60.0) + self.options.time_margin_min
        return [f"--time={minutes}"]

    @staticmethod
    def _prepare(launch: TrialLaunch) -> Path:
        script = write_trial_script(launch)
        for stale in (SENTINEL, JOB_ID_FILE, "pid"):
            (launch.trial_dir / stale).unlink(missing_ok=True)
        return script

    @staticmethod
    def _note_job(trial_dir: Path, job_id: str) -> None:
        tmp = trial_dir / f".{JOB_ID_FILE}.tmp"
        tmp.write_text(job_id + "\n")
        os.replace(tmp, trial_dir / JOB_ID_FILE)

    def submit(self, launch: TrialLaunch) -> str:
        script = self._prepare(launch)
        args = [f"--job-name={self._job_name(launch.trial_id)}", f"--chdir={launch.trial_dir}",
                f"--output={_pattern_safe(launch.trial_dir)}/slurm-%j.out", "--open-mode=append",
                *self._time_args([launch]), *self.options.sbatch_args()]
        job_id = self.cli.sbatch(args, script)
        self._note_job(launch.trial_dir, job_id)
        return make_handle(job_id, launch.trial_dir)

    def submit_many(self, launches: list[TrialLaunch]) -> list[str]:
        """Start several trials as one array job (one element per trial); handles in order.

        A single launch, or ``array = false``, falls back to one job per trial.
        """
        if len(launches) <= 1 or not self.options.array:
            return [self.submit(launch) for launch in launches]
        scripts = [self._prepare(launch) for launch in launches]
        array_dir = self.task_dir / "slurm"
        array_dir.mkdir(parents=True, exist_ok=True)
        first = launches[0].trial_id
        driver = array_dir / f"array-{_NAME_SAFE.sub('_', first)}-{len(launches)}.sh"
        entries = "\n".join(f"  {shlex.quote(str(s))}" for s in scripts)
        driver.write_text(
            "#!/usr/bin/env bash\n# gml-hpo array job: element i runs trial script i\n"
            f"scripts=(\n{entries}\n)\n"
            'script=${scripts[$SLURM_ARRAY_TASK_ID]}\n'
            'cd "$(dirname "$script")" && exec bash "$script"\n')
        throttle = f"%{self.options.array_throttle}" if self.options.array_throttle else ""
        args = [f"--array=0-{len(launches) - 1}{throttle}", f"--job-name={self._job_name(f'array-{first}')}",
                f"--chdir={self.task_dir}", f"--output={_pattern_safe(array_dir)}/array-%A_%a.out", "--open-mode=append",
                *self._time_args(launches), *self.options.sbatch_args()]
        job_id = self.cli.sbatch(args, driver)
        handles = []
        for i, launch in enumerate(launches):
            self._note_job(launch.trial_dir, f"{job_id}_{i}")
            handles.append(make_handle(f"{job_id}_{i}", launch.trial_dir))
        return handles

    # -- state -----------------------------------------------------------------------------

    def _queued(self, job_ids: list[str]) -> dict[str, SlurmJob]:
        """squeue for all ids in one call, reused for ``poll_interval_s``."""
        now = time.monotonic()
        if now - self._queue_at >= self.options.poll_interval_s or not set(job_ids) <= self._queue_ids:
            self._queue = self.cli.squeue(job_ids)
            self._queue_at = now
            self._queue_ids = set(job_ids)
        return self._queue

    def poll(self, handles: list[str]) -> dict[str, JobStatus]:
        parsed = {h: parse_handle(h) for h in handles}
        queued = self._queued([job_id for job_id, _ in parsed.values()])
        out: dict[str, JobStatus] = {}
        for handle, (job_id, trial_dir) in parsed.items():
            job = queued.get(job_id)
            if job is not None and job.active:
                out[handle] = resolve_status(job, None)
            else:
                out[handle] = self._resolve_ended(handle, job_id, trial_dir)
        return out

    def _resolve_ended(self, handle: str, job_id: str, trial_dir: Path) -> JobStatus:
        exit_code = read_exit_code(trial_dir)
        job = self.cli.scontrol_job(job_id)
        accounting = False
        if job is None:
            accounting = self.cli.accounting()
            job = self.cli.sacct([job_id]).get(job_id) if accounting else None
        if (job is not None and job.state in ("COMPLETED", "FAILED") and exit_code is None
                and not job.signal):
            # the wrapper exited normally, so its sentinel exists: give a shared file system time
            first = self._ended_without_sentinel.setdefault(handle, time.monotonic())
            if time.monotonic() - first < self.options.sentinel_grace_s:
                return JobStatus(JobState.RUNNING, None, f"Slurm says {job.state}; waiting for the {SENTINEL} file")
        self._ended_without_sentinel.pop(handle, None)
        return resolve_status(job, exit_code, cancelled_by_us=handle in self._cancelled,
                              accounting_checked=accounting)

    def cancel(self, handle: str, graceful: bool = True) -> None:
        job_id, _ = parse_handle(handle)
        self._cancelled.add(handle)
        self._queue_at = -math.inf
        if graceful:
            job = self.cli.squeue([job_id]).get(job_id)
            if job is None or not job.active:
                return
            if job.state == "RUNNING":
                try:
                    self.cli.scancel(job_id, signal="TERM", full=True)
                    return
                except SlurmError:
                    pass  # e.g. the job is being requeued: cancel it outright
        else:
            # hard stop: SIGKILL to every process of the job, then end the job itself
            try:
                self.cli.scancel(job_id, signal="KILL", full=True)
            except SlurmError:
                pass  # pending or already ending: the plain scancel below covers it
        self.cli.scancel(job_id)

    def reattach(self, handle: str) -> bool:
        job_id, _ = parse_handle(handle)
        job = self.cli.squeue([job_id]).get(job_id)
        return job is not None and job.active

    def recover(self, launch: TrialLaunch) -> str | None:
        """The job submitted for ``launch`` whose handle the scheduler did not record: from the
        job id file written after sbatch, else by job name and work dir in the queue."""
        try:
            job_id = (launch.trial_dir / JOB_ID_FILE).read_text().strip()
        except OSError:
            job_id = ""
        if is_job_handle(job_id):
            if (self.cli.squeue([job_id]).get(job_id) is not None or self.cli.scontrol_job(job_id) is not None
                    or read_exit_code(launch.trial_dir) is not None):
                return make_handle(job_id, launch.trial_dir)
            return None
        same = [job for job in self.cli.squeue_by_name(self._job_name(launch.trial_id))
                if Path(job.work_dir) == launch.trial_dir]
        if not same:
            return None
        newest = max(same, key=lambda job: int(job.job_id.split("_")[0]))
        return make_handle(newest.job_id, launch.trial_dir)

    def describe(self) -> str:
        opts = self.options
        where = f"partition {opts.partition}" if opts.partition else "default partition"
        return f"Slurm batch jobs ({where})"
