"""Crash safety (SIGKILL of the scheduler, then resume) and the search-ctl commands."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import time

from hpo_helpers import BIN, report_cmd

from gml_hpo.records import TrialState


def spawn(*args, cwd):
    return subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def ctl(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "search-ctl"), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def wait_for(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_resume_after_sigkill_loses_and_duplicates_nothing(kit):
    # 8 trials of 0.6-1.2 s, two at a time; the scheduler is SIGKILLed twice mid-task.
    commands = [report_cmd([0.1 * i, 0.1 * i + 0.05], sleep=0.3 + 0.05 * i) for i in range(8)]
    data = kit.task("crash", "bash -c {cmd}", {"cmd": {"type": "Categorical", "data": commands}})
    task_file = kit.write(data)
    db = kit.root / "work_dirs" / "hpo" / "crash" / "task.db"
    for kill_after in (1.0, 1.3):
        args = ["search-run", str(task_file), "-q"] + (["--resume"] if db.exists() else [])
        proc = spawn(*args, cwd=kit.root)
        assert wait_for(db.exists)
        time.sleep(kill_after)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    trials = kit.trials("crash")
    assert any(t.state == TrialState.RUNNING for t in trials.values())   # interrupted mid-task
    out = subprocess.run([str(BIN / "search-run"), str(task_file), "--resume", "-q"], cwd=kit.root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    trials = kit.trials("crash")
    assert list(trials) == [f"t{i:04d}" for i in range(1, 9)]
    assert sorted(t.params["cmd"] for t in trials.values()) == sorted(commands)
    assert all(t.state == TrialState.SUCCEEDED for t in trials.values())
    store = kit.store("crash")
    for i, t in enumerate(trials.values()):
        i = commands.index(t.params["cmd"])
        assert [round(v, 6) for _, v in store.history(t.trial_id, "acc")] == [round(0.1 * i, 6), round(0.1 * i + 0.05, 6)]
        n = store.conn.execute("SELECT COUNT(*) AS n FROM metrics WHERE trial_id = ? AND name = 'acc'",
                               (t.trial_id,)).fetchone()["n"]
        assert n == 2  # nothing ingested twice
    kinds = [e["kind"] for e in store.events()]
    store.close()
    assert "reattached" in kinds


def test_ctl_list_show_export_report(kit):
    commands = [report_cmd([0.2, 0.5]), report_cmd([0.3, 0.9]), "exit 4"]
    kit.run(kit.task("shown", "bash -c {cmd}", {"cmd": {"type": "Categorical", "data": commands}}))
    root = kit.root
    listed = ctl("list", cwd=root)
    assert listed.returncode == 0 and "shown" in listed.stdout and "DONE" in listed.stdout
    shown = ctl("show", "-t", "shown", "--events", "3", cwd=root)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    rows = [ln for ln in lines if "t000" in ln and ("SUCCEEDED" in ln or "FAILED" in ln)]
    assert [r.split()[0] for r in rows][:3] == ["t0002", "t0001", "t0003"]  # sorted by reward
    assert "exit code 4" in shown.stdout and "tracking:" in shown.stdout
    exported = ctl("export", "-t", "shown", "--format", "csv", cwd=root)
    table = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["state"] for r in table] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert table[1]["reward"] == "0.9" and table[2]["exit_code"] == "4"
    as_json = ctl("export", "-t", "shown", "--format", "json", "-o", "out.json", cwd=root)
    assert as_json.returncode == 0
    doc = json.loads((root / "out.json").read_text())
    assert doc["trials"][0]["metrics"]["acc"] == [[1, 0.2], [2, 0.5]]
    report = ctl("report", "-t", "shown", "-o", "plots", cwd=root)
    assert report.returncode == 0, report.stderr
    for name in ("best_so_far.png", "curves.png", "parallel_coordinates.png"):
        assert (root / "plots" / name).stat().st_size > 5000
    missing = ctl("show", "-t", "shwn", cwd=root)
    assert missing.returncode == 2 and "did you mean 'shown'" in missing.stderr


def test_ctl_stop_cancels_running_trials_and_resume_continues(kit):
    data = kit.task("stoppable", "sleep {s}", {"s": {"type": "Categorical", "data": [30, 31, 0.1, 0.2]}})
    task_file = kit.write(data)
    proc = spawn("search-run", str(task_file), "-q", cwd=kit.root)
    db = kit.root / "work_dirs" / "hpo" / "stoppable" / "task.db"
    assert wait_for(lambda: db.exists() and len(kit.trials("stoppable")) == 2)
    stopped = ctl("stop", "-t", "stoppable", "--wait", cwd=kit.root)
    assert stopped.returncode == 0, stopped.stderr
    assert proc.wait(timeout=30) == 0
    t = kit.trials("stoppable")
    assert [x.state for x in t.values()] == [TrialState.CANCELLED, TrialState.CANCELLED]
    store = kit.store("stoppable")
    assert store.meta("state") == "STOPPED"
    store.close()
    resumed = ctl("resume", "-t", "stoppable", "-q", cwd=kit.root)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    t = kit.trials("stoppable")
    assert len(t) == 4 and t["t0003"].state == t["t0004"].state == TrialState.NO_REWARD


def test_gml_search_subcommands(kit):
    from gml_core._internal.cli import main

    kit.run(kit.task("viagml", "true {x}", {"x": {"type": "Categorical", "data": [1]}}))
    res = subprocess.run([str(BIN / "gml"), "search", "ctl", "list"], cwd=kit.root, capture_output=True, text=True)
    assert res.returncode == 0 and "viagml" in res.stdout
    res = subprocess.run([str(BIN / "gml"), "search", "--help"], cwd=kit.root, capture_output=True, text=True)
    assert all(name in res.stdout for name in ("init", "run", "ctl"))
    assert callable(main)


def test_show_says_how_to_report_when_no_trial_did(kit):
    kit.run(kit.task("silent", "true {x}", {"x": {"type": "Categorical", "data": [1, 2]}}))
    out = ctl("show", "-t", "silent", cwd=kit.root)
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())  # rich wraps long lines
    assert "2 trial(s) exited 0 without a numeric 'acc'" in text
    assert "GML_HPO_REPORT {\"acc\": VALUE}" in text and "gml_hpo.report(acc=VALUE)" in text
