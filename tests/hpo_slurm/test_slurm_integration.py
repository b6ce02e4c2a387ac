"""gml-hpo on a real Slurm: tasks run by ``search-run`` with ``scheduler.type: SlurmScheduler``.

Needs a running cluster (CI: ``bash scripts/slurm/up.sh``). Skipped only when the Slurm
commands are absent; when they are present but the controller does not answer, the tests
fail. Every job these tests submit carries a per-session name prefix and is cancelled at
the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gml_hpo.executors.slurm import parse_handle
from gml_hpo.executors.slurm_cli import jobs_from_scontrol

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOY = Path(__file__).parent / "data" / "toy_trial.py"
PREFIX = f"gmlt{os.getpid()}"

pytestmark = pytest.mark.skipif(shutil.which("sbatch") is None,
                                reason="Slurm commands absent (start a cluster with scripts/slurm/up.sh)")


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check).stdout


def our_jobs() -> list[tuple[str, str, str]]:
    """(job id, name, state) of every job of this test session the controller knows."""
    rows = [line.split("|") for line in sh("squeue", "-h", "-r", "-t", "all", "-o", "%i|%j|%T").splitlines()]
    return [(r[0], r[1], r[2]) for r in rows if len(r) == 3 and r[1].startswith(PREFIX + "-")]


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    proc = subprocess.run(["sinfo", "-h", "-o", "%a %t"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"Slurm commands are installed but the cluster does not answer ({proc.stderr.strip()}); "
                    "start it with: bash scripts/slurm/up.sh")
    yield
    active = [job for job, _, state in our_jobs() if state in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")]
    if active:
        sh("scancel", *active, check=False)


def write_task(tmp_path: Path, name: str, template: str, args: dict, scheduler: dict, searcher: dict,
               tracking: dict | None = None) -> Path:
    sched = {"type": "SlurmScheduler", "poll_interval": 0.3, **scheduler}
    sched["slurm"] = {"job_name_prefix": PREFIX, "poll_interval_s": 0.5, "time": "10",
                      **scheduler.get("slurm", {})}
    task = {"task": {"name": name, "work_dir": "work", "template": template, "search_args": args},
            "searcher": searcher, "scheduler": sched}
    if tracking:
        task["tracking"] = tracking
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(task, sort_keys=False))
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}


def search_run(tmp_path: Path, task_file: Path, *extra: str, timeout: float = 150) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "search-run"), str(task_file), "-q", *extra], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def trials(task_dir: Path) -> dict[str, dict]:
    con = sqlite3.connect(task_dir / "task.db")
    con.row_factory = sqlite3.Row
    try:
        return {r["trial_id"]: dict(r) for r in con.execute("SELECT * FROM trials ORDER BY seq")}
    finally:
        con.close()


def events(task_dir: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(task_dir / "task.db")
    try:
        return list(con.execute("SELECT kind, COALESCE(trial_id, ''), message FROM events ORDER BY id"))
    finally:
        con.close()


def find_key(params, key):
    """The value of ``key`` in a (possibly nested) params dict."""
    if isinstance(params, dict):
        if key in params:
            return params[key]
        for value in params.values():
            found = find_key(value, key)
            if found is not None:
                return found
    return None


def slurm_job(handle: str):
    job_id, _ = parse_handle(handle)
    return jobs_from_scontrol(sh("scontrol", "show", "job", "-o", job_id, check=False)).get(job_id)


def test_digits_task_with_two_parallel_trials(tmp_path):
    """Real ``gml run`` trials on digits, two at a time as one array job; gml reports acc itself."""
    template = (f"{BIN / 'gml'} run {REPO / 'configs/baseline/digits_cnn.toml'} --cfg-options train.lr={{lr}} "
                "train.epochs=2 algorithm.model.width=4 runtime.checkpoint_interval=0 --work-dir {trial_dir}")
    task_file = write_task(tmp_path, "digits", template, {"lr": {"type": "Categorical", "data": [0.05, 0.2]}},
                           {"parallel_size": 2}, {"type": "GridSearcher", "reward_attribute": "acc"})
    search_run(tmp_path, task_file, timeout=240)
    rows = trials(tmp_path / "work" / "digits")
    assert [r["state"] for r in rows.values()] == ["SUCCEEDED", "SUCCEEDED"], rows
    job_ids = [parse_handle(r["handle"])[0] for r in rows.values()]
    assert job_ids[0].endswith("_0") and job_ids[1] == job_ids[0][:-1] + "1"  # one array job, two elements
    for r in rows.values():
        assert 0.0 < r["reward"] <= 1.0 and r["last_step"] == 2  # two validations reported by gml run
        assert r["exit_code"] == 0
        assert slurm_job(r["handle"]).state == "COMPLETED"
        assert "accuracy/top1" in (Path(r["trial_dir"]) / "metrics.jsonl").read_text()


def test_early_stop_cancels_the_job_and_exit_3_is_failed(tmp_path):
    def cfg(x, steps, sleep=0.2, code=0):
        return {"x": x, "steps": steps, "sleep": sleep, "code": code}

    template = f"python3 {TOY} {{x}} --steps {{steps}} --sleep {{sleep}} --exit {{code}}"
    args = {"cfg": {"type": "Nested", "data": [cfg(1.0, 4), cfg(0.9, 4), cfg(0.01, 120, sleep=0.5), cfg(0.5, 1, code=3)]}}
    task_file = write_task(tmp_path, "stops", template, args,
                           {"parallel_size": 2, "grace_period": "10s",
                            "assessor": {"type": "MedianStopAssessor", "start_step": 2}},
                           {"type": "BatchSearcher", "reward_attribute": "acc"})
    t0 = time.time()
    search_run(tmp_path, task_file)
    assert time.time() - t0 < 50  # the 60 s trial did not run to its end
    rows = list(trials(tmp_path / "work" / "stops").values())
    by_x = {find_key(json.loads(r["params"]), "x"): r for r in rows}
    assert by_x[1.0]["state"] == by_x[0.9]["state"] == "SUCCEEDED"
    stopped = by_x[0.01]
    assert stopped["state"] == "EARLY_STOPPED", stopped
    assert "MedianStopAssessor" in stopped["reason"]
    job = slurm_job(stopped["handle"])
    assert job is not None and not job.active  # the Slurm job is gone, not left running
    assert stopped["finished_at"] - stopped["started_at"] < 40
    failed = by_x[0.5]
    assert failed["state"] == "FAILED" and failed["exit_code"] == 3, failed
    assert slurm_job(failed["handle"]).exit_code == 3  # Slurm saw the same exit status
    assert not [j for j in our_jobs() if j[2] in ("PENDING", "RUNNING")]


def test_scheduler_killed_and_resumed_reattaches_running_jobs(tmp_path):
    template = f"python3 {TOY} {{x}} --steps 8 --sleep 1"
    task_file = write_task(tmp_path, "resume", template, {"x": {"type": "Categorical", "data": [0.1, 0.2, 0.3, 0.4]}},
                           {"parallel_size": 2}, {"type": "GridSearcher", "reward_attribute": "acc"})
    task_dir = tmp_path / "work" / "resume"
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen([str(BIN / "search-run"), str(task_file), "-q"], cwd=tmp_path, env=env(),
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        running: dict[str, str] = {}
        while time.time() < deadline:
            if (task_dir / "task.db").exists():
                rows = trials(task_dir)
                running = {t: r["handle"] for t, r in rows.items()
                           if r["state"] == "RUNNING" and r["handle"] and (r["last_step"] or -1) >= 1}
                if len(running) == 2:
                    break
            time.sleep(0.3)
        assert len(running) == 2, (running, (tmp_path / "first.log").read_text())
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    ids_at_kill = {t: parse_handle(h)[0] for t, h in running.items()}
    queue = {job: state for job, _, state in our_jobs()}
    assert all(queue.get(j) == "RUNNING" for j in ids_at_kill.values()), queue  # trials outlive the scheduler

    search_run(tmp_path, task_file, "--resume")
    rows = trials(task_dir)
    assert len(rows) == 4 and all(r["state"] == "SUCCEEDED" for r in rows.values()), rows
    for t, job_id in ids_at_kill.items():
        assert parse_handle(rows[t]["handle"])[0] == job_id  # re-attached, not resubmitted
        assert rows[t]["attempt"] == 1
    reattached = {trial for kind, trial, _ in events(task_dir) if kind == "reattached"}
    assert set(ids_at_kill) <= reattached
    # Slurm saw exactly one job element per trial: no duplicate submission
    task_jobs = sorted(job for job, name, _ in our_jobs() if name.startswith(f"{PREFIX}-resume-"))
    assert len(task_jobs) == 4, task_jobs
    assert sorted(parse_handle(r["handle"])[0] for r in rows.values()) == task_jobs


def test_per_job_timeout_and_search_ctl_stop_cancel_slurm_jobs(tmp_path):
    """``time_limits_per_job`` and ``search-ctl stop`` both end the Slurm jobs (scancel)."""
    template = f"python3 {TOY} {{x}} --steps 120 --sleep 0.5"
    task_file = write_task(tmp_path, "stopme", template, {"x": {"type": "Categorical", "data": [0.1, 0.2, 0.3]}},
                           {"parallel_size": 2, "grace_period": "3s",
                            "stop_criterion": {"time_limits_per_job": "4s"}},
                           {"type": "GridSearcher", "reward_attribute": "acc"})
    task_dir = tmp_path / "work" / "stopme"
    log = open(tmp_path / "run.log", "w")
    run = subprocess.Popen([str(BIN / "search-run"), str(task_file), "-q"], cwd=tmp_path, env=env(),
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # the first two time out; wait for the third to run
            rows = trials(task_dir) if (task_dir / "task.db").exists() else {}
            if rows.get("t0003", {}).get("last_step") is not None:
                break
            time.sleep(0.3)
        stop = subprocess.run([str(BIN / "search-ctl"), "stop", "-t", "stopme", "--work-dir", "work", "--wait"],
                              cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        run.wait(60)
    finally:
        if run.poll() is None:
            run.kill()
    rows = trials(task_dir)
    assert [rows[t]["state"] for t in ("t0001", "t0002", "t0003")] == ["TIMEOUT", "TIMEOUT", "CANCELLED"], \
        ({t: (r["state"], r["reason"]) for t, r in rows.items()}, (tmp_path / "run.log").read_text())
    assert "time_limits_per_job" in rows["t0001"]["reason"]
    for r in rows.values():
        job = slurm_job(r["handle"])
        assert job is not None and not job.active, job
        assert r["finished_at"] - r["started_at"] < 30  # far from the 60 s the trials would take


def test_job_cancelled_outside_gml_is_recorded_with_slurms_reason(tmp_path):
    template = f"python3 {TOY} {{x}} --steps 120 --sleep 0.5"
    task_file = write_task(tmp_path, "admin", template, {"x": {"type": "Categorical", "data": [0.5]}},
                           {"parallel_size": 1}, {"type": "GridSearcher", "reward_attribute": "acc"})
    task_dir = tmp_path / "work" / "admin"
    run = subprocess.Popen([str(BIN / "search-run"), str(task_file), "-q"], cwd=tmp_path, env=env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        handle = None
        while time.time() < deadline and handle is None:
            rows = trials(task_dir) if (task_dir / "task.db").exists() else {}
            row = rows.get("t0001") or {}
            handle = row.get("handle") if row.get("last_step") is not None else None
            time.sleep(0.3)
        assert handle, "the trial never reported"
        sh("scancel", parse_handle(handle)[0])  # an administrator cancels the job
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
    row = trials(task_dir)["t0001"]
    assert row["state"] == "CANCELLED" and "Slurm CANCELLED" in row["reason"] and "outside gml" in row["reason"], row


def test_distributed_trial_with_srun_counts_as_one_trial(tmp_path):
    """A template that starts two tasks with ``srun`` is one trial (one job, one sentinel)."""
    # values go to the inner shell as arguments ("$1", "$2"): gml shell-quotes each value
    template = ("srun -n 2 bash -c 'if [ $SLURM_PROCID = 0 ]; then python3 " + str(TOY) + " \"$1\" --steps 2; "
                "else echo $SLURM_NTASKS > \"$2\"/rank_$SLURM_PROCID; fi' _ {x} {trial_dir}")
    task_file = write_task(tmp_path, "dist", template, {"x": {"type": "Categorical", "data": [0.5]}},
                           {"parallel_size": 1, "slurm": {"ntasks": 2}},
                           {"type": "GridSearcher", "reward_attribute": "acc"})
    search_run(tmp_path, task_file)
    rows = trials(tmp_path / "work" / "dist")
    assert len(rows) == 1
    row = rows["t0001"]
    assert row["state"] == "SUCCEEDED" and row["reward"] == pytest.approx(1.0), row
    assert (Path(row["trial_dir"]) / "rank_1").read_text().strip() == "2"  # the second task ran, in the same job
