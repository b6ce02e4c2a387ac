"""Slurm's command-line tools (sbatch, squeue, scontrol, scancel, sacct) and parsers of their output.

Only the commands every Slurm installation has are used; ``sacct`` only when the cluster
keeps accounting (a minimal cluster does not). Parsers are pure functions over the text
the commands print, unit-tested on outputs recorded from a real cluster
(tests/hpo_slurm/data/recorded, made by scripts/slurm/record_outputs.py).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable

import attrs

#: squeue fields, '|'-separated; the work dir comes last so a '|' in it does no harm
SQUEUE_FORMAT = "%i|%T|%r|%j|%Z"

#: Slurm job states during which the job may still start or is running
PENDING_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                            "RESV_DEL_HOLD", "SUSPENDED", "RESIZING", "POWER_UP_NODE"})
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "STOPPED"})
ACTIVE_STATES = PENDING_STATES | RUNNING_STATES

#: stderr fragments of errors worth retrying (the controller is busy or restarting)
TRANSIENT_ERRORS = ("Socket timed out", "Unable to contact slurm controller", "Transient",
                    "Connection refused", "Resource temporarily unavailable", "slurm_receive_msg")
INVALID_JOB = "Invalid job id specified"

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_:/]*=")
_ARRAY_HANDLE = re.compile(r"^(\d+)_(\d+)$")
_JOB_HANDLE = re.compile(r"^\d+(_\d+)?$")


class SlurmError(RuntimeError):
    """A Slurm command failed; the message has the command line and its stderr."""


@attrs.frozen
class SlurmJob:
    """One job (or one element of an array job) as Slurm reports it.

    ``job_id`` is the handle form: ``"123"`` or ``"123_4"`` for element 4 of array 123.
    ``exit_code`` and ``signal`` come from ``ExitCode=N:S`` (scontrol/sacct only).
    """

    job_id: str
    state: str
    reason: str = ""
    name: str = ""
    work_dir: str = ""
    exit_code: int | None = None
    signal: int | None = None
    time_limit: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def describe(self) -> str:
        """e.g. ``FAILED (NonZeroExitCode, ExitCode=3:0)``."""
        bits = [b for b in (self.reason if self.reason not in ("", "None") else "",
                            f"ExitCode={self.exit_code}:{self.signal}" if self.exit_code is not None else "") if b]
        return self.state + (f" ({', '.join(bits)})" if bits else "")


def is_job_handle(text: str) -> bool:
    return bool(_JOB_HANDLE.match(text))


def base_job_id(handle: str) -> str:
    """``"123_4"`` -> ``"123"``; ``"123"`` -> ``"123"``."""
    return handle.split("_", 1)[0]


# -- parsers -------------------------------------------------------------------------------


def parse_sbatch_parsable(text: str) -> str:
    """The job id from ``sbatch --parsable`` output (``"123"`` or ``"123;cluster"``)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise SlurmError("sbatch --parsable printed no job id")
    job = lines[-1].split(";", 1)[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch --parsable printed {lines[-1]!r}, not a job id")
    return job


def parse_squeue(text: str) -> list[SlurmJob]:
    """Rows of ``squeue -h -r -o '%i|%T|%r|%j|%Z'``."""
    jobs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", 4)
        if len(parts) < 5:
            raise SlurmError(f"unexpected squeue line: {line!r}")
        job_id, state, reason, name, work_dir = (p.strip() for p in parts)
        jobs.append(SlurmJob(job_id, _base_state(state), reason, name, work_dir))
    return jobs


def parse_scontrol_records(text: str) -> list[dict[str, str]]:
    """``scontrol show job -o`` output: one ``Key=Value ...`` record per line.

    A value may contain spaces (a command path, a comment): a word that does not start
    with ``Key=`` belongs to the previous value.
    """
    records = []
    for line in text.splitlines():
        if "=" not in line:
            continue
        rec: dict[str, str] = {}
        key = None
        for word in line.split(" "):
            if _KEY.match(word):
                key, value = word.split("=", 1)
                rec[key] = value
            elif key is not None and word:
                rec[key] += " " + word
        if rec:
            records.append(rec)
    return records


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``"3:0"`` -> ``(3, 0)``; anything else -> ``(None, None)``."""
    m = re.match(r"^(\d+):(\d+)$", text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def expand_task_ids(spec: str) -> list[int]:
    """An array task spec (``"2"``, ``"0-3%2"``, ``"1,4-6:2"``) as the list of task ids."""
    spec = spec.split("%", 1)[0]
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        step = 1
        if ":" in part:
            part, step_text = part.split(":", 1)
            step = int(step_text)
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1, step))
        else:
            out.append(int(part))
    return out


def jobs_from_scontrol(text: str) -> dict[str, SlurmJob]:
    """Jobs of ``scontrol show job -o`` keyed by handle; a pending array's meta record
    (``ArrayTaskId=2-3%2``) gives one entry per element it still holds."""
    out: dict[str, SlurmJob] = {}
    for rec in parse_scontrol_records(text):
        exit_code, sig = parse_exit_code(rec.get("ExitCode", ""))
        common = dict(state=_base_state(rec.get("JobState", "")), reason=rec.get("Reason", ""),
                      name=rec.get("JobName", ""), work_dir=rec.get("WorkDir", ""),
                      exit_code=exit_code, signal=sig, time_limit=rec.get("TimeLimit", ""))
        array_job, tasks = rec.get("ArrayJobId"), rec.get("ArrayTaskId")
        if array_job and tasks:
            for task in expand_task_ids(tasks):
                out[f"{array_job}_{task}"] = SlurmJob(f"{array_job}_{task}", **common)
        elif "JobId" in rec:
            out[rec["JobId"]] = SlurmJob(rec["JobId"], **common)
    return out


SACCT_FIELDS = "JobID,State,ExitCode,JobName,WorkDir"


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """``sacct -n -P -X -o JobID,State,ExitCode,JobName,WorkDir`` rows keyed by handle
    (the latest row wins for a requeued job)."""
    out: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.split("|", 4)
        if len(parts) < 5:
            continue
        job_id, state, exit_text, name, work_dir = parts
        if "." in job_id:  # a step (batch, extern, 0...) rather than the job itself
            continue
        exit_code, sig = parse_exit_code(exit_text)
        out[job_id] = SlurmJob(job_id, _base_state(state), "", name, work_dir, exit_code, sig)
    return out


def accounting_enabled(config_text: str) -> bool:
    """Whether ``scontrol show config`` names an accounting storage other than none."""
    m = re.search(r"^AccountingStorageType\s*=\s*(\S+)", config_text, re.M)
    return bool(m) and m.group(1) not in ("accounting_storage/none", "(null)")


def _base_state(state: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``COMPLETING+`` style suffixes dropped."""
    return state.strip().split(" ", 1)[0].rstrip("+")


# -- the command layer ---------------------------------------------------------------------

Runner = Callable[..., subprocess.CompletedProcess]


class SlurmCLI:
    """Runs the Slurm commands with a timeout and retries on transient controller errors."""

    def __init__(self, bin_dir: str | None = None, timeout_s: float = 60.0, retries: int = 3,
                 retry_wait_s: float = 2.0, runner: Runner = subprocess.run):
        self.bin_dir = bin_dir
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_wait_s = retry_wait_s
        self.runner = runner
        self._accounting: bool | None = None

    def _argv(self, tool: str, args: Iterable[str]) -> list[str]:
        exe = str(Path(self.bin_dir) / tool) if self.bin_dir else tool
        return [exe, *args]

    def run(self, tool: str, args: Iterable[str], ok_errors: tuple[str, ...] = (),
            timeout_s: float | None = None, retries: int | None = None) -> subprocess.CompletedProcess:
        """Run ``tool args``; raise SlurmError unless it succeeds or stderr has one of ``ok_errors``."""
        argv = self._argv(tool, args)
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                proc = self.runner(argv, capture_output=True, text=True, timeout=timeout_s,
                                   stdin=subprocess.DEVNULL)
            except FileNotFoundError:
                raise SlurmError(f"'{argv[0]}' not found: is Slurm installed and on PATH?") from None
            except subprocess.TimeoutExpired:
                proc = subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout_s:g}s")
            if proc.returncode == 0 or any(e in proc.stderr for e in ok_errors):
                return proc
            transient = proc.returncode == 124 or any(e in proc.stderr for e in TRANSIENT_ERRORS)
            if not transient or attempt == retries:
                break
            time.sleep(self.retry_wait_s * (attempt + 1))
        raise SlurmError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")

    def sbatch(self, args: list[str], script: Path) -> str:
        """Submit ``script``; return the job id."""
        return parse_sbatch_parsable(self.run("sbatch", ["--parsable", *args, str(script)]).stdout)

    def squeue(self, handles: Iterable[str], all_states: bool = False) -> dict[str, SlurmJob]:
        """The queued/running jobs among ``handles`` (array elements expanded), in one call."""
        ids = sorted({base_job_id(h) for h in handles}, key=int)
        if not ids:
            return {}
        args = ["-h", "-r", "-o", SQUEUE_FORMAT, "-j", ",".join(ids)]
        if all_states:
            args[2:2] = ["-t", "all"]
        proc = self.run("squeue", args, ok_errors=(INVALID_JOB,))
        return {job.job_id: job for job in parse_squeue(proc.stdout)}

    def squeue_by_name(self, name: str) -> list[SlurmJob]:
        """Jobs the controller still knows (any state) with this job name."""
        proc = self.run("squeue", ["-h", "-r", "-t", "all", "-o", SQUEUE_FORMAT, "-n", name])
        return parse_squeue(proc.stdout)

    def scontrol_job(self, handle: str) -> SlurmJob | None:
        """One job from ``scontrol show job``; None when the controller no longer knows it."""
        proc = self.run("scontrol", ["show", "job", "-o", handle], ok_errors=(INVALID_JOB,))
        if proc.returncode != 0:
            return None
        return jobs_from_scontrol(proc.stdout).get(handle)

    def scancel(self, handle: str, signal: str | None = None, full: bool = False) -> None:
        """Cancel a job, or only send it ``signal`` (to every process of the batch step with
        ``full``). Signalling a pending job makes scancel wait until the job starts, so the
        caller cancels pending jobs outright; the short timeout only bounds a race."""
        args = [f"--signal={signal}"] if signal else []
        if full:
            args.append("--full")
        self.run("scancel", [*args, handle], ok_errors=(INVALID_JOB, "already completing or completed"),
                 timeout_s=min(self.timeout_s, 15.0) if signal else None, retries=0 if signal else None)

    def accounting(self) -> bool:
        """Whether the cluster keeps accounting (checked once)."""
        if self._accounting is None:
            try:
                self._accounting = accounting_enabled(self.run("scontrol", ["show", "config"]).stdout)
            except SlurmError:
                self._accounting = False
        return self._accounting

    def sacct(self, handles: Iterable[str]) -> dict[str, SlurmJob]:
        """Finished jobs from accounting; {} when the cluster has none."""
        handles = list(handles)
        if not handles or not self.accounting():
            return {}
        proc = self.run("sacct", ["-n", "-P", "-X", "-o", SACCT_FIELDS, "-j", ",".join(handles)],
                        ok_errors=("accounting storage is disabled",))
        return parse_sacct(proc.stdout) if proc.returncode == 0 else {}
