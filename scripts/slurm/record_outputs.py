"""Record real outputs of sbatch/squeue/scontrol/scancel/sacct for the Slurm parser unit tests.

Run on a machine where ``scripts/slurm/up.sh`` brought up the single-node cluster:

    .venv/bin/python scripts/slurm/record_outputs.py [--out tests/hpo_slurm/data/recorded]

Each recording is a JSON file ``{"argv", "rc", "stdout", "stderr", "note"}``. The jobs it
submits are small shell scripts; one waits for a 1-minute Slurm time limit, so a full
recording takes about two minutes. Every job it starts is cancelled at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

OUT_DEFAULT = Path(__file__).resolve().parents[2] / "tests" / "hpo_slurm" / "data" / "recorded"
SQUEUE_FMT = "%i|%T|%r|%j|%Z"


def run(argv: list[str]) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return {"argv": argv, "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


class Recorder:
    def __init__(self, out: Path, work: Path):
        self.out = out
        self.work = work
        self.jobs: list[str] = []
        out.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, argv: list[str], note: str) -> dict:
        rec = run(argv)
        rec["note"] = note
        (self.out / f"{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
        print(f"{name}: rc={rec['rc']} {rec['stdout'][:70]!r} {rec['stderr'][:70]!r}")
        return rec

    def script(self, name: str, body: str) -> Path:
        path = self.work / f"{name}.sh"
        path.write_text("#!/bin/bash\n" + body + "\n")
        return path

    def submit(self, name: str, body: str, *opts: str, record: str | None = None) -> str:
        argv = ["sbatch", "--parsable", f"--job-name=rec-{name}", f"--chdir={self.work}",
                f"--output={self.work}/{name}-%j.out", *opts, str(self.script(name, body))]
        rec = self.save(record, argv, "sbatch --parsable") if record else run(argv)
        job = rec["stdout"].strip().split(";")[0]
        self.jobs.append(job)
        return job

    def wait_state(self, job: str, states: set[str], timeout: float) -> str:
        deadline = time.time() + timeout
        state = ""
        while time.time() < deadline:
            text = run(["scontrol", "show", "job", "-o", job])["stdout"]
            state = next((t.split("=", 1)[1] for t in text.split() if t.startswith("JobState=")), "")
            if state in states:
                return state
            time.sleep(0.5)
        raise SystemExit(f"job {job} did not reach {states} in {timeout}s (last {state!r})")

    def show(self, name: str, job: str, note: str) -> None:
        self.save(name, ["scontrol", "show", "job", "-o", job], note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    ap.add_argument("--skip-timeout", action="store_true", help="skip the 1-minute time-limit job")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gml-slurm-rec-") as tmp:
        rec = Recorder(args.out, Path(tmp))
        try:
            record_all(rec, args.skip_timeout)
        finally:
            for job in rec.jobs:
                run(["scancel", job])


def record_all(rec: Recorder, skip_timeout: bool) -> None:
    rec.save("scontrol_show_config", ["scontrol", "show", "config"], "accounting type, KillWait, MinJobAge")
    rec.save("sacct_no_accounting", ["sacct", "-n", "-P", "-j", "1", "-o", "JobID,State,ExitCode,Reason"],
             "sacct on a cluster without accounting")
    # -- finished jobs --------------------------------------------------------------------
    ok = rec.submit("ok", "echo ok", record="sbatch_parsable")
    fail3 = rec.submit("fail3", "echo failing; exit 3")
    sig9 = rec.submit("sig9", "kill -9 $$")
    for job in (ok, fail3, sig9):
        rec.wait_state(job, {"COMPLETED", "FAILED"}, 30)
    rec.show("scontrol_completed", ok, "batch script exited 0")
    rec.show("scontrol_failed_exit3", fail3, "batch script exited 3")
    rec.show("scontrol_failed_signal9", sig9, "batch shell killed by SIGKILL")
    rec.save("squeue_finished_only", ["squeue", "-h", "-r", "-o", SQUEUE_FMT, "-j", f"{ok},{fail3}"],
             "default states: finished jobs are not listed")
    rec.save("squeue_all_states", ["squeue", "-h", "-r", "-t", "all", "-o", SQUEUE_FMT, "-j", f"{ok},{fail3},{sig9}"],
             "-t all lists finished jobs still in the controller")
    rec.save("scancel_completed", ["scancel", ok], "scancel of a completed job")
    # -- running, pending and array jobs --------------------------------------------------
    run1 = rec.submit("run1", "sleep 120")
    run2 = rec.submit("run2", "sleep 120")
    rec.wait_state(run1, {"RUNNING"}, 30)
    rec.wait_state(run2, {"RUNNING"}, 30)
    pend = rec.submit("pend", "sleep 120")
    arr = rec.submit("arr", "sleep 120", "--array=0-2%1", record="sbatch_parsable_array")
    ids = f"{run1},{run2},{pend},{arr}"
    rec.save("squeue_mixed_just_submitted", ["squeue", "-h", "-r", "-o", SQUEUE_FMT, "-j", ids],
             "right after submission: pending reason not evaluated yet")
    time.sleep(3)
    rec.save("squeue_mixed", ["squeue", "-h", "-r", "-o", SQUEUE_FMT, "-j", ids],
             "two running jobs fill the node; one pending job; a throttled array, pending")
    rec.show("scontrol_running", run1, "running job")
    rec.show("scontrol_pending", pend, "pending for resources")
    rec.show("scontrol_array_pending_meta", arr, "array job id of a pending array: meta record with a task range")
    rec.show("scontrol_array_pending_task", f"{arr}_2", "one pending array element")
    rec.save("scancel_cancel_pending", ["scancel", pend], "hard cancel of a pending job")
    rec.wait_state(pend, {"CANCELLED"}, 30)
    rec.show("scontrol_cancelled_pending", pend, "cancelled while pending")
    rec.save("scancel_cancel_running", ["scancel", run1], "hard cancel of a running job")
    rec.wait_state(run1, {"CANCELLED"}, 30)
    rec.show("scontrol_cancelled", run1, "after scancel")
    rec.save("scancel_array", ["scancel", arr], "cancel a whole array")
    # graceful signal to every process of the batch step, then the job ends by itself
    grace = rec.submit("grace", "trap 'echo got TERM; exit 143' TERM; sleep 100 & wait")
    rec.wait_state(grace, {"RUNNING"}, 30)
    time.sleep(1)
    rec.save("scancel_signal_term", ["scancel", "--signal=TERM", "--full", grace], "graceful SIGTERM to the batch step")
    rec.wait_state(grace, {"FAILED", "COMPLETED"}, 30)
    rec.show("scontrol_after_term", grace, "the script trapped TERM and exited 143")
    rec.save("scancel_invalid", ["scancel", "999999"], "scancel of an unknown job id")
    rec.save("scontrol_invalid", ["scontrol", "show", "job", "-o", "999999"], "unknown job id")
    rec.save("squeue_invalid", ["squeue", "-h", "-r", "-o", SQUEUE_FMT, "-j", "999999"], "unknown job id only")
    rec.save("squeue_running_plus_invalid", ["squeue", "-h", "-r", "-o", SQUEUE_FMT, "-j", f"{run2},999999"],
             "one known and one unknown job id")
    rec.save("scontrol_all", ["scontrol", "show", "job", "-o"], "every job the controller knows")
    run(["scancel", run2])
    # -- time limit --------------------------------------------------------------------------
    if not skip_timeout:
        tout = rec.submit("tout", "sleep 300", "--time=1")
        rec.wait_state(tout, {"TIMEOUT"}, 150)
        rec.show("scontrol_timeout", tout, "over --time=1 (one minute)")


if __name__ == "__main__":
    main()
