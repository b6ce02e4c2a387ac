"""The Slurm executor's submission, state and cancel logic, with Slurm replaced by recorded outputs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from slurm_fakes import FakeRunner, completed, from_recording, recorded

from gml_core._internal.config import structure
from gml_core._internal.errors import ConfigError
from gml_hpo.executors.base import SENTINEL, JobState, TrialLaunch
from gml_hpo.executors.slurm import (
    JOB_ID_FILE,
    SlurmExecutor,
    SlurmOptions,
    make_handle,
    parse_handle,
    resolve_status,
)
from gml_hpo.executors.slurm_cli import SlurmCLI, SlurmJob, jobs_from_scontrol


def launch(tmp_path: Path, trial_id: str = "0001", command: str = "echo hi", **kw) -> TrialLaunch:
    env = {"GML_HPO_TASK": "t", "GML_HPO_TRIAL_ID": trial_id, "GML_HPO_TRIAL_DIR": str(tmp_path / trial_id)}
    return TrialLaunch(trial_id=trial_id, command=command, trial_dir=tmp_path / trial_id, env=env, **kw)


def executor(tmp_path: Path, runner: FakeRunner, **opts) -> SlurmExecutor:
    options = SlurmOptions(**{"poll_interval_s": 0.0, **opts})
    return SlurmExecutor(options, cli=SlurmCLI(runner=runner, retry_wait_s=0), task_name="digits lr",
                         task_dir=tmp_path)


def scontrol_from(name: str):
    """A scontrol handler answering every job id with the recorded job (renamed to the asked id)."""
    job_line = recorded(name)["stdout"].splitlines()[0]
    old = job_line.split(" ", 1)[0]

    def handler(argv):
        return completed(argv, 0, job_line.replace(old, f"JobId={argv[-1]}", 1) + "\n")

    return handler


def sentinel(trial_dir: Path, code: int) -> None:
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / SENTINEL).write_text(f"{code}\n")


# -- options ---------------------------------------------------------------------------------


def test_options_structure_strictly_with_key_paths():
    opts = structure({"partition": "debug", "gpus_per_task": 1, "cpus_per_task": 4, "time": "02:00:00",
                      "extra_args": ["--qos=normal"]}, SlurmOptions, "scheduler.slurm")
    assert opts.sbatch_args() == ["--partition=debug", "--cpus-per-task=4", "--gpus-per-task=1", "--qos=normal"]
    with pytest.raises(ConfigError) as err:
        structure({"partiton": "debug", "cpus_per_task": 2.5, "time": "2h", "gpus_per_task": 0},
                  SlurmOptions, "scheduler.slurm")
    problems = dict(err.value.problems)  # every problem at once, each with its key path
    assert "partition" in problems["scheduler.slurm.partiton"]
    assert "expected an integer" in problems["scheduler.slurm.cpus_per_task"]
    assert "not a Slurm time limit" in problems["scheduler.slurm.time"]
    assert "positive" in problems["scheduler.slurm.gpus_per_task"]
    for ok in ("30", "10:00", "1-12", "1-12:30:00", "UNLIMITED"):
        assert structure({"time": ok}, SlurmOptions).time == ok
    assert structure({"time": 45}, SlurmOptions).time == "45"  # plain minutes


def test_handles_round_trip(tmp_path):
    handle = make_handle("12_3", tmp_path / "a:b")
    assert parse_handle(handle) == ("12_3", tmp_path / "a:b")
    with pytest.raises(ValueError):
        parse_handle(f"local:1:2:{tmp_path}")


# -- submission ------------------------------------------------------------------------------


def test_submit_writes_wrapper_and_passes_resources(tmp_path):
    runner = FakeRunner(sbatch=lambda a: from_recording(a, "sbatch_parsable"))
    ex = executor(tmp_path, runner, partition="debug", cpus_per_task=2, extra_args=["--qos=normal"])
    lt = launch(tmp_path, time_limit_s=150)
    lt.trial_dir.mkdir()
    sentinel(lt.trial_dir, 9)  # stale sentinel of an earlier attempt is removed
    handle = ex.submit(lt)
    job_id = recorded("sbatch_parsable")["stdout"].strip()
    assert handle == make_handle(job_id, lt.trial_dir)
    (argv,) = runner.calls
    assert argv[:2] == ["sbatch", "--parsable"] and argv[-1] == str(lt.trial_dir / "trial.sh")
    assert "--job-name=gml-digits_lr-0001" in argv and f"--chdir={lt.trial_dir}" in argv
    assert "--time=5" in argv  # ceil(150 s) = 3 min + 2 min margin
    assert {"--partition=debug", "--cpus-per-task=2", "--qos=normal"} <= set(argv)
    assert (lt.trial_dir / JOB_ID_FILE).read_text().strip() == job_id
    assert not (lt.trial_dir / SENTINEL).exists()
    assert "echo hi" in (lt.trial_dir / "command.sh").read_text()


def test_explicit_time_wins(tmp_path):
    runner = FakeRunner(sbatch=lambda a: completed(a, 0, "77\n"))
    executor(tmp_path, runner, time="02:00:00").submit(launch(tmp_path, time_limit_s=60))
    assert "--time=02:00:00" in runner.calls[0]
    runner2 = FakeRunner(sbatch=lambda a: completed(a, 0, "78\n"))
    executor(tmp_path, runner2).submit(launch(tmp_path))
    assert not any(a.startswith("--time") for a in runner2.calls[0])


def test_submit_many_is_one_array_job_and_its_driver_runs_the_right_trial(tmp_path):
    runner = FakeRunner(sbatch=lambda a: completed(a, 0, "500\n"))
    ex = executor(tmp_path, runner, array_throttle=2)
    launches = [launch(tmp_path, f"000{i}", command=f"echo trial {i} > out.txt") for i in range(3)]
    handles = ex.submit_many(launches)
    assert handles == [make_handle(f"500_{i}", lt.trial_dir) for i, lt in enumerate(launches)]
    (argv,) = runner.calls
    assert "--array=0-2%2" in argv
    driver = Path(argv[-1])
    assert [(lt.trial_dir / JOB_ID_FILE).read_text().strip() for lt in launches] == ["500_0", "500_1", "500_2"]
    # run element 1 of the array as Slurm would: it runs trial 0001's wrapper in its directory
    subprocess.run(["bash", str(driver)], env={**os.environ, "SLURM_ARRAY_TASK_ID": "1"}, check=True, timeout=30)
    assert (launches[1].trial_dir / SENTINEL).read_text().strip() == "0"
    assert (launches[1].trial_dir / "out.txt").read_text() == "trial 1\n"
    assert not (launches[0].trial_dir / SENTINEL).exists()


def test_submit_many_single_or_disabled_uses_plain_jobs(tmp_path):
    ids = iter(["1\n", "2\n"])
    runner = FakeRunner(sbatch=lambda a: completed(a, 0, next(ids)))
    ex = executor(tmp_path, runner, array=False)
    handles = ex.submit_many([launch(tmp_path, "0001"), launch(tmp_path, "0002")])
    assert [parse_handle(h)[0] for h in handles] == ["1", "2"]
    assert not any(a.startswith("--array") for call in runner.calls for a in call)


# -- state -----------------------------------------------------------------------------------


def job(name: str) -> SlurmJob:
    return next(iter(jobs_from_scontrol(recorded(name)["stdout"]).values()))


@pytest.mark.parametrize("name, code, expected, exit_code", [
    ("scontrol_completed", 0, JobState.FINISHED, 0),
    ("scontrol_failed_exit3", 3, JobState.FINISHED, 3),        # the command's own failure: sentinel decides
    ("scontrol_after_term", 143, JobState.FINISHED, 143),      # trapped the graceful signal, exited
    ("scontrol_timeout", 143, JobState.TIMEOUT, 143),          # Slurm's time limit wins over the sentinel
    ("scontrol_cancelled", None, JobState.CANCELLED, None),
    ("scontrol_cancelled_pending", None, JobState.CANCELLED, None),
    ("scontrol_failed_signal9", None, JobState.FAILED, None),  # wrapper killed: no sentinel
    ("scontrol_running", None, JobState.RUNNING, None),
    ("scontrol_pending", None, JobState.PENDING, None),
])
def test_resolve_status_from_recorded_jobs(name, code, expected, exit_code):
    status = resolve_status(job(name), code)
    assert (status.state, status.exit_code) == (expected, exit_code)


def test_resolve_status_reasons():
    assert "time limit 00:01:00" in resolve_status(job("scontrol_timeout"), None).reason
    assert "outside gml" in resolve_status(job("scontrol_cancelled"), None).reason
    assert "scancel by gml" in resolve_status(job("scontrol_cancelled"), None, cancelled_by_us=True).reason
    assert "signal 9" in resolve_status(job("scontrol_failed_signal9"), None).reason
    assert resolve_status(job("scontrol_pending"), None).reason == "Resources"
    node_fail = SlurmJob("5", "NODE_FAIL", "NodeDown", exit_code=0, signal=0)
    status = resolve_status(node_fail, None)
    assert status.state == JobState.FAILED and "NODE_FAIL" in status.reason
    oom = SlurmJob("5", "OUT_OF_MEMORY", "OutOfMemory", exit_code=0, signal=9)
    assert resolve_status(oom, 137).state == JobState.FAILED
    assert resolve_status(None, 0).state == JobState.FINISHED       # purged from Slurm, sentinel there
    lost = resolve_status(None, None)
    assert lost.state == JobState.LOST and "MinJobAge" in lost.reason


def test_poll_batches_queue_and_resolves_ended_jobs(tmp_path):
    mixed = recorded("squeue_mixed")
    run1, run2, pend, arr = mixed["argv"][-1].split(",")
    done_dir, purged_dir, lost_dir = tmp_path / "done", tmp_path / "purged", tmp_path / "lost"
    sentinel(done_dir, 3)
    sentinel(purged_dir, 0)
    lost_dir.mkdir()

    def scontrol(argv):
        if argv[-1] == "900":
            return scontrol_from("scontrol_failed_exit3")(argv)
        if argv[-1] == "config":
            return from_recording(argv, "scontrol_show_config")
        return from_recording(argv, "scontrol_invalid")

    runner = FakeRunner(squeue=lambda a: completed(a, 0, mixed["stdout"]), scontrol=scontrol)
    ex = executor(tmp_path, runner)
    handles = {"run": make_handle(run1, tmp_path / "r"), "pend": make_handle(pend, tmp_path / "p"),
               "arr": make_handle(f"{arr}_1", tmp_path / "a"), "done": make_handle("900", done_dir),
               "purged": make_handle("901", purged_dir), "lost": make_handle("902", lost_dir)}
    out = ex.poll(list(handles.values()))
    got = {k: out[h].state for k, h in handles.items()}
    assert got == {"run": JobState.RUNNING, "pend": JobState.PENDING, "arr": JobState.PENDING,
                   "done": JobState.FINISHED, "purged": JobState.FINISHED, "lost": JobState.LOST}
    assert out[handles["done"]].exit_code == 3
    assert len(runner.of("squeue")) == 1  # one squeue call for all handles


def test_poll_waits_for_a_late_sentinel(tmp_path):
    trial_dir = tmp_path / "t"
    trial_dir.mkdir()
    runner = FakeRunner(squeue=lambda a: completed(a), scontrol=scontrol_from("scontrol_completed"))
    ex = executor(tmp_path, runner, sentinel_grace_s=3600)
    handle = make_handle("31", trial_dir)
    status = ex.poll([handle])[handle]
    assert status.state == JobState.RUNNING and "waiting for the exit_code" in status.reason
    sentinel(trial_dir, 0)
    assert ex.poll([handle])[handle].state == JobState.FINISHED
    ex2 = executor(tmp_path, FakeRunner(squeue=lambda a: completed(a), scontrol=scontrol_from("scontrol_completed")),
                   sentinel_grace_s=0)
    (trial_dir / SENTINEL).unlink()
    late = ex2.poll([handle])[handle]
    assert late.state == JobState.FINISHED and late.exit_code == 0 and "no exit_code sentinel" in late.reason


def test_poll_interval_reuses_the_queue(tmp_path):
    runner = FakeRunner(squeue=lambda a: from_recording(a, "squeue_mixed"))
    run1 = recorded("squeue_mixed")["argv"][-1].split(",")[0]
    ex = executor(tmp_path, runner, poll_interval_s=3600)
    handle = make_handle(run1, tmp_path)
    for _ in range(3):
        assert ex.poll([handle])[handle].state == JobState.RUNNING
    assert len(runner.of("squeue")) == 1


def test_cancel_running_is_graceful_pending_is_cancelled(tmp_path):
    mixed = recorded("squeue_mixed")
    run1, _, pend, _ = mixed["argv"][-1].split(",")
    runner = FakeRunner(squeue=lambda a: completed(a, 0, mixed["stdout"]), scancel=lambda a: completed(a))
    ex = executor(tmp_path, runner)
    ex.cancel(make_handle(run1, tmp_path))
    ex.cancel(make_handle(pend, tmp_path))
    ex.cancel(make_handle(run1, tmp_path), graceful=False)
    assert [c[1:] for c in runner.of("scancel")] == [["--signal=TERM", "--full", run1], [pend],
                                                     ["--signal=KILL", "--full", run1], [run1]]
    ex.cancel(make_handle("424242", tmp_path))  # already gone: graceful cancel does nothing
    assert len(runner.of("scancel")) == 4


def test_reattach_and_recover(tmp_path):
    mixed = recorded("squeue_mixed")
    run1 = mixed["argv"][-1].split(",")[0]

    def squeue(argv):
        if "-n" in argv:  # by job name: one of ours, left from a scheduler that died after sbatch
            return completed(argv, 0, f"88|RUNNING|None|gml-digits_lr-0002|{tmp_path / '0002'}\n"
                                      f"87|CANCELLED|None|gml-digits_lr-0002|/elsewhere\n")
        ids = argv[argv.index("-j") + 1].split(",")
        return completed(argv, 0, "".join(line + "\n" for line in mixed["stdout"].splitlines()
                                          if line.split("|")[0].split("_")[0] in ids))

    runner = FakeRunner(squeue=squeue, scontrol=lambda a: from_recording(a, "scontrol_invalid"))
    ex = executor(tmp_path, runner)
    assert ex.reattach(make_handle(run1, tmp_path))
    assert not ex.reattach(make_handle("31337", tmp_path))
    lt1 = launch(tmp_path, "0001")
    lt1.trial_dir.mkdir()
    (lt1.trial_dir / JOB_ID_FILE).write_text(f"{run1}\n")
    assert ex.recover(lt1) == make_handle(run1, lt1.trial_dir)
    (lt1.trial_dir / JOB_ID_FILE).write_text("31337\n")  # unknown to Slurm and no sentinel: resubmit
    assert ex.recover(lt1) is None
    sentinel(lt1.trial_dir, 0)
    assert ex.recover(lt1) == make_handle("31337", lt1.trial_dir)
    lt2 = launch(tmp_path, "0002")
    lt2.trial_dir.mkdir()
    assert ex.recover(lt2) == make_handle("88", lt2.trial_dir)
    assert ex.recover(launch(tmp_path, "0003")) is None
