"""Parsers of sbatch/squeue/scontrol/sacct output, over outputs recorded on a real single-node Slurm."""

from __future__ import annotations

import pytest
from slurm_fakes import FakeRunner, completed, from_recording, recorded

from gml_hpo.executors.slurm_cli import (
    SlurmCLI,
    SlurmError,
    accounting_enabled,
    base_job_id,
    expand_task_ids,
    jobs_from_scontrol,
    parse_exit_code,
    parse_sacct,
    parse_sbatch_parsable,
    parse_scontrol_records,
    parse_squeue,
)


def one_job(name: str):
    jobs = jobs_from_scontrol(recorded(name)["stdout"])
    assert len(jobs) == 1, jobs
    return next(iter(jobs.values()))


def test_sbatch_parsable():
    assert parse_sbatch_parsable(recorded("sbatch_parsable")["stdout"]).isdigit()
    assert parse_sbatch_parsable(recorded("sbatch_parsable_array")["stdout"]).isdigit()
    assert parse_sbatch_parsable("4242;cluster2\n") == "4242"
    with pytest.raises(SlurmError):
        parse_sbatch_parsable("")
    with pytest.raises(SlurmError):
        parse_sbatch_parsable("sbatch: error: Batch job submission failed\n")


def test_squeue_mixed_states_and_arrays():
    rec = recorded("squeue_mixed")
    jobs = {j.job_id: j for j in parse_squeue(rec["stdout"])}
    argv_ids = rec["argv"][-1].split(",")
    run1, run2, pend, arr = argv_ids
    assert jobs[run1].state == jobs[run2].state == "RUNNING"
    assert jobs[pend].state == "PENDING" and jobs[pend].reason == "Resources"
    assert {f"{arr}_{i}" for i in range(3)} <= set(jobs)  # -r: one row per array element
    assert all(jobs[f"{arr}_{i}"].state == "PENDING" for i in range(3))
    assert jobs[run1].name == "rec-run1" and jobs[run1].work_dir.startswith("/")
    assert jobs[run1].active and jobs[pend].active


def test_squeue_just_submitted_reason_none_and_finished_lists():
    jobs = parse_squeue(recorded("squeue_mixed_just_submitted")["stdout"])
    assert {j.state for j in jobs} <= {"PENDING", "RUNNING"}
    assert parse_squeue(recorded("squeue_finished_only")["stdout"]) == []
    states = [j.state for j in parse_squeue(recorded("squeue_all_states")["stdout"])]
    assert states == ["COMPLETED", "FAILED", "FAILED"]
    with pytest.raises(SlurmError):
        parse_squeue("garbage without fields\n")


@pytest.mark.parametrize("name, state, exit_code, signal", [
    ("scontrol_completed", "COMPLETED", 0, 0),
    ("scontrol_failed_exit3", "FAILED", 3, 0),
    ("scontrol_failed_signal9", "FAILED", 0, 9),
    ("scontrol_after_term", "FAILED", 143, 0),
    ("scontrol_cancelled", "CANCELLED", 0, 15),
    ("scontrol_cancelled_pending", "CANCELLED", 0, 0),
    ("scontrol_timeout", "TIMEOUT", 0, 15),
    ("scontrol_running", "RUNNING", 0, 0),
    ("scontrol_pending", "PENDING", 0, 0),
])
def test_scontrol_single_jobs(name, state, exit_code, signal):
    job = one_job(name)
    assert (job.state, job.exit_code, job.signal) == (state, exit_code, signal)
    assert job.job_id == recorded(name)["argv"][-1]


def test_scontrol_reasons_and_limits():
    assert one_job("scontrol_timeout").reason == "TimeLimit"
    assert one_job("scontrol_timeout").time_limit == "00:01:00"
    assert one_job("scontrol_failed_exit3").reason == "NonZeroExitCode"
    assert one_job("scontrol_failed_exit3").describe() == "FAILED (NonZeroExitCode, ExitCode=3:0)"
    assert one_job("scontrol_pending").reason == "Resources"


def test_scontrol_array_records():
    meta = jobs_from_scontrol(recorded("scontrol_array_pending_meta")["stdout"])
    arr = recorded("scontrol_array_pending_meta")["argv"][-1]
    assert set(meta) == {f"{arr}_0", f"{arr}_1", f"{arr}_2"}  # ArrayTaskId=0-2%1 expanded
    task = jobs_from_scontrol(recorded("scontrol_array_pending_task")["stdout"])
    assert list(task) == [f"{arr}_2"]  # JobId is the array's id while the element is pending
    every = jobs_from_scontrol(recorded("scontrol_all")["stdout"])
    # a finished element has its own JobId but is keyed by ArrayJobId_ArrayTaskId
    finished_elements = {h: j for h, j in every.items() if "_" in h and j.state in ("COMPLETED", "FAILED")}
    assert finished_elements, every.keys()
    for handle, job in finished_elements.items():
        assert job.exit_code == int(handle.split("_")[1])  # the recorded array script exits with its task id


def test_scontrol_value_with_spaces_and_invalid():
    recs = parse_scontrol_records("JobId=5 JobName=a b c Command=/x/my script.sh WorkDir=/w d ExitCode=0:0\n")
    assert recs == [{"JobId": "5", "JobName": "a b c", "Command": "/x/my script.sh", "WorkDir": "/w d",
                     "ExitCode": "0:0"}]
    assert jobs_from_scontrol(recorded("scontrol_invalid")["stdout"]) == {}


def test_small_helpers():
    assert expand_task_ids("0-2%1") == [0, 1, 2]
    assert expand_task_ids("1,4-8:2") == [1, 4, 6, 8]
    assert expand_task_ids("7") == [7]
    assert parse_exit_code("143:0") == (143, 0)
    assert parse_exit_code("") == (None, None)
    assert base_job_id("12_3") == "12" and base_job_id("12") == "12"


def test_accounting_detection():
    assert not accounting_enabled(recorded("scontrol_show_config")["stdout"])
    assert accounting_enabled("AccountingStorageType   = accounting_storage/slurmdbd\n")


def test_sacct_parse():
    # Written from sacct's documented -P layout (no accounting on the recorded cluster).
    text = ("41|COMPLETED|0:0|gml-t-0001|/w/0001\n41.batch|COMPLETED|0:0|batch|\n"
            "42_1|TIMEOUT|0:15|gml-t-0002|/w/0002\n43|CANCELLED by 0|0:15|gml-t-0003|/w/0003\n")
    jobs = parse_sacct(text)
    assert set(jobs) == {"41", "42_1", "43"}
    assert jobs["42_1"].state == "TIMEOUT" and jobs["43"].state == "CANCELLED"
    assert jobs["41"].work_dir == "/w/0001"


# -- the command layer with a fake runner ----------------------------------------------------


def test_cli_unknown_jobs_are_not_errors():
    runner = FakeRunner(squeue=lambda a: from_recording(a, "squeue_invalid"),
                        scontrol=lambda a: from_recording(a, "scontrol_invalid"),
                        scancel=lambda a: completed(a, 1, "", "scancel: error: Kill job error on job id 9: "
                                                              "Invalid job id specified\n"))
    cli = SlurmCLI(runner=runner)
    assert cli.squeue(["999999"]) == {}
    assert cli.scontrol_job("999999") is None
    cli.scancel("999999")


def test_cli_without_accounting_skips_sacct():
    runner = FakeRunner(scontrol=lambda a: from_recording(a, "scontrol_show_config"),
                        sacct=lambda a: from_recording(a, "sacct_no_accounting"))
    cli = SlurmCLI(runner=runner)
    assert cli.sacct(["5"]) == {}
    assert runner.of("sacct") == []  # never called: scontrol show config says accounting_storage/none


def test_cli_retries_transient_errors_then_fails_clearly():
    answers = [completed([], 1, "", "squeue: error: Socket timed out on send/recv operation\n"),
               from_recording([], "squeue_mixed")]
    runner = FakeRunner(squeue=lambda a: answers.pop(0))
    cli = SlurmCLI(runner=runner, retry_wait_s=0)
    assert len(cli.squeue(["1"])) == 6 and len(runner.calls) == 2
    bad = FakeRunner(sbatch=lambda a: completed(a, 1, "", "sbatch: error: invalid partition specified: nope\n"))
    with pytest.raises(SlurmError, match="invalid partition specified: nope"):
        SlurmCLI(runner=bad, retry_wait_s=0).sbatch(["--partition=nope"], "x.sh")
    assert len(bad.calls) == 1  # not transient: no retry


def test_cli_missing_binary():
    def absent(argv, **kw):
        raise FileNotFoundError(argv[0])

    with pytest.raises(SlurmError, match="is Slurm installed"):
        SlurmCLI(runner=absent).squeue(["1"])


def test_cli_squeue_batches_ids():
    runner = FakeRunner(squeue=lambda a: from_recording(a, "squeue_mixed"))
    SlurmCLI(runner=runner).squeue(["12_1", "12_0", "9", "100"])
    (argv,) = runner.calls
    assert argv[argv.index("-j") + 1] == "9,12,100"
