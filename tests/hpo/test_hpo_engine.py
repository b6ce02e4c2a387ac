"""The scheduler with trivial shell trials: reporting, async slots, failures, stop criteria,
per-job timeouts, assessors and the task store."""

from __future__ import annotations

import json
import subprocess

from hpo_helpers import BIN, PY, report_cmd

from gml_hpo.records import TrialState


def cmd_task(kit, name, commands, searcher=None, scheduler=None, **top):
    return kit.task(name, "bash -c {cmd}", {"cmd": {"type": "Categorical", "data": commands}}, searcher, scheduler, **top)


def test_reports_from_stdout_and_report_file_rewards_last_or_best(kit):
    via_api = (f"{PY} -c \"import gml_hpo; [gml_hpo.report(step=s, acc=v, loss=1 - v) "
               f"for s, v in enumerate([0.2, 0.9, 0.5], 1)]\"")
    data = cmd_task(kit, "rep", [report_cmd([0.1, 0.6, 0.4]), via_api])
    assert kit.run(data) == "DONE"
    trials = kit.trials("rep")
    assert [t.reward for t in trials.values()] == [0.4, 0.5]       # last step
    assert trials["t0002"].last_metrics["loss"] == 0.5 and trials["t0002"].last_step == 3
    store = kit.store("rep")
    assert store.history("t0002", "acc") == [(1, 0.2), (2, 0.9), (3, 0.5)]
    assert store.meta("state") == "DONE"
    store.close()

    data = cmd_task(kit, "rep_best", [report_cmd([0.1, 0.6, 0.4]), via_api], searcher={"reward_at": "best"})
    kit.run(data)
    assert [t.reward for t in kit.trials("rep_best").values()] == [0.6, 0.9]


def test_slots_are_refilled_at_once_without_a_batch_barrier(kit):
    data = cmd_task(kit, "async", ["sleep 1.2", "sleep 0.05", "sleep 0.06", "sleep 0.07"])
    kit.run(data)
    t = kit.trials("async")
    assert all(x.state == TrialState.NO_REWARD for x in t.values())  # exit 0, nothing reported
    # trials 3 and 4 ran while trial 1 was still running
    assert t["t0004"].finished_at < t["t0001"].finished_at
    assert t["t0003"].started_at - t["t0002"].finished_at < 0.5


def test_failed_trial_records_exit_code_and_log_tail_and_the_task_goes_on(kit):
    data = cmd_task(kit, "fail", ["echo boom-line >&2; exit 3", report_cmd([0.7]), "no_such_command_xyz"])
    assert kit.run(data) == "DONE"
    t = kit.trials("fail")
    assert t["t0001"].state == TrialState.FAILED and t["t0001"].exit_code == 3
    assert "exit code 3" in t["t0001"].reason and "boom-line" in t["t0001"].reason
    assert t["t0002"].state == TrialState.SUCCEEDED and t["t0002"].reward == 0.7
    assert t["t0003"].state == TrialState.FAILED and t["t0003"].exit_code == 127
    assert "not found" in t["t0003"].reason


def test_a_task_whose_first_trials_all_fail_stops_instead_of_spending_its_budget(kit):
    # a misconfigured task (here: every trial exits 2) ends FAILED after max_failed_before_success (default 5)
    # failures, with the reason; before, it launched every one of its trials
    broken = [f"exit 2  # {i}" for i in range(12)]
    assert kit.run(cmd_task(kit, "broken", broken)) == "FAILED"
    trials = kit.trials("broken")
    assert sum(t.state == TrialState.FAILED for t in trials.values()) == 5 and len(trials) <= 6
    store = kit.store("broken")
    reason = store.meta("end_reason")
    store.close()
    assert reason.startswith("the first 5 finished trials all failed or reported no 'acc'")
    assert "max_failed_before_success: 5" in reason and "search-ctl show -t broken" in reason
    # resumed unchanged, it stops again at its next failure (the earlier ones are counted from the store)
    data = cmd_task(kit, "broken", broken)
    assert kit.run(data, resume=True) == "FAILED"
    assert sum(t.state == TrialState.FAILED for t in kit.trials("broken").values()) == 6
    # null: never stop for failures; and once a trial has succeeded, later failures never stop the task
    off = cmd_task(kit, "off", broken[:7], scheduler={"parallel_size": 1, "stop_criterion": {"max_failed_before_success": None}})
    assert kit.run(off) == "DONE" and len(kit.trials("off")) == 7
    late = cmd_task(kit, "late", [report_cmd([0.5])] + broken[:6], scheduler={"parallel_size": 1})
    assert kit.run(late) == "DONE" and len(kit.trials("late")) == 7


def test_search_run_exits_1_when_the_task_failed_fast(kit):
    task_file = kit.write(cmd_task(kit, "exit1", [f"exit 3  # {i}" for i in range(4)],
                                   scheduler={"stop_criterion": {"max_failed_before_success": 2}}))
    out = subprocess.run([str(BIN / "search-run"), str(task_file), "-q"], cwd=kit.root, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr


def test_a_task_stop_gives_its_reason_once_and_one_short_line_per_cancelled_trial(kit):
    # two trials fail at once while two others sleep: the fail-fast reason is printed when the task starts
    # stopping and in its end line, and each cancelled trial says so in one short line (it used to repeat
    # the whole reason per trial)
    commands = ["exit 3  # 0", "exit 3  # 1", "sleep 30  # 2", "sleep 30  # 3"]
    task_file = kit.write(cmd_task(kit, "loud", commands, scheduler={"parallel_size": 4,
                                                                      "stop_criterion": {"max_failed_before_success": 2}}))
    out = subprocess.run([str(BIN / "search-run"), str(task_file)], cwd=kit.root, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    with_reason = [x for x in lines if "max_failed_before_success: 2" in x]
    assert [x.split()[2] for x in with_reason] == ["stopping_task:", "end:"], out.stdout
    cancelled = [x for x in lines if " stopping: " in x]
    assert sorted(x.split()[1] for x in cancelled) == ["t0003", "t0004"], out.stdout
    assert all(x.endswith("stopping: cancelled, the task is stopping") for x in cancelled), out.stdout
    trials = kit.trials("loud")  # the stored reason of a cancelled trial still says why
    assert trials["t0003"].state == TrialState.CANCELLED and "max_failed_before_success: 2" in trials["t0003"].reason


def test_max_tries_counts_every_trial_once(kit):
    data = kit.task("tries", "echo 'GML_HPO_REPORT {{\"acc\": '{x}'}}'", {"x": {"type": "Real", "lower": 0, "upper": 1}},
                    searcher={"type": "RandomSearcher", "seed": 3}, scheduler={"stop_criterion": {"max_tries": 5}})
    kit.run(data)
    t = kit.trials("tries")
    assert list(t) == ["t0001", "t0002", "t0003", "t0004", "t0005"]
    assert all(abs(x.reward - x.params["x"]) < 1e-12 for x in t.values())


def test_max_reward_ends_the_task_and_cancels_running_trials(kit):
    data = cmd_task(kit, "target", [report_cmd([0.5]), "sleep 20", report_cmd([0.995]), report_cmd([0.1]),
                                    report_cmd([0.2])], scheduler={"stop_criterion": {"max_reward": 0.99}})
    assert kit.run(data) == "DONE"
    t = kit.trials("target")
    assert t["t0003"].reward == 0.995
    assert t["t0002"].state == TrialState.CANCELLED
    assert len(t) == 3  # nothing launched after the target was reached
    store = kit.store("target")
    assert "max_reward" in store.meta("end_reason")
    store.close()


def test_time_limits_stop_the_task(kit):
    data = cmd_task(kit, "budget", ["sleep 30", "sleep 31", "sleep 32"],
                    scheduler={"stop_criterion": {"time_limits": "1s"}})
    assert kit.run(data) == "DONE"
    t = kit.trials("budget")
    assert len(t) == 2 and all(x.state == TrialState.CANCELLED for x in t.values())
    assert all(x.duration_s < 5 for x in t.values())


def test_per_job_timeout_terminates_then_kills_after_the_grace_period(kit):
    stubborn = "trap '' TERM; sleep 30 & wait; sleep 30"
    data = cmd_task(kit, "timeout", [report_cmd([0.3, 0.4], exit_code=None) + "; sleep 30", stubborn, report_cmd([0.8])],
                    scheduler={"stop_criterion": {"time_limits_per_job": "1s"}, "grace_period": 1})
    kit.run(data)
    t = kit.trials("timeout")
    assert t["t0001"].state == TrialState.TIMEOUT and t["t0001"].reward == 0.4   # keeps its last values
    assert t["t0002"].state == TrialState.TIMEOUT and t["t0002"].duration_s < 6
    assert t["t0003"].state == TrialState.SUCCEEDED
    store = kit.store("timeout")
    kinds = [(e["trial_id"], e["kind"]) for e in store.events()]
    store.close()
    assert ("t0002", "kill") in kinds and ("t0001", "kill") not in kinds


def test_median_stop_early_stops_a_poor_trial_keeping_its_last_values(kit):
    good = [report_cmd([0.5, 0.7, 0.8, 0.9]), report_cmd([0.6, 0.7, 0.85, 0.9])]
    poor = report_cmd([0.1, 0.15, 0.2, 0.25, 0.3, 0.35], sleep=0.3)
    data = cmd_task(kit, "median", [*good, poor],
                    scheduler={"parallel_size": 1, "assessor": {"type": "MedianStopAssessor", "start_step": 2}})
    kit.run(data)
    t = kit.trials("median")
    assert [x.state for x in t.values()] == [TrialState.SUCCEEDED, TrialState.SUCCEEDED, TrialState.EARLY_STOPPED]
    assert t["t0003"].last_step == 2 and t["t0003"].reward == 0.15
    assert "MedianStopAssessor" in t["t0003"].reason


def test_existing_task_is_refused_and_invalid_files_write_nothing(kit, capsys):
    import pytest

    from gml_core._internal.errors import ConfigError, GmlUserError

    data = cmd_task(kit, "once", ["true"])
    kit.run(data)
    with pytest.raises(GmlUserError, match="already exists.*--resume"):
        kit.run(data)
    assert kit.run(data, resume=True) == "DONE"      # resumes: nothing left to do
    assert len(kit.trials("once")) == 1
    changed = cmd_task(kit, "once", ["false"])
    with pytest.raises(GmlUserError, match="task.search_args differ"):
        kit.run(changed, resume=True)
    bad = cmd_task(kit, "never", ["true"], scheduler={"stop_criterion": {"time_limits": "soon"}})
    with pytest.raises(ConfigError):
        kit.run(bad)
    assert not (kit.root / "work_dirs" / "hpo" / "never").exists()


def test_trial_environment_and_working_directory(kit):
    data = kit.task("env", "echo \"$GML_HPO_TASK $GML_HPO_TRIAL_ID $GML_HPO_TRIAL_DIR $PWD\" {trial_id} {v}",
                    {"v": {"type": "Categorical", "data": [1]}})
    kit.run(data)
    trial = kit.trials("env")["t0001"]
    line = trial.log_path.read_text().split()
    assert line == ["env", "t0001", str(trial.trial_dir), str(kit.root), "t0001", "1"]
    assert (trial.trial_dir / "exit_code").read_text().strip() == "0"


def test_generate_log_false_keeps_only_report_lines(kit):
    data = cmd_task(kit, "nolog", ["echo noise; " + report_cmd([0.3]), report_cmd([0.4], exit_code=5)],
                    generate_log=False)
    kit.run(data)
    trial, failed = kit.trials("nolog").values()
    assert trial.reward == 0.3
    assert "noise" not in trial.log_path.read_text()
    assert failed.exit_code == 5 and failed.last_metrics == {"acc": 0.4}


def test_store_export_rows_are_json_serialisable(kit):
    from gml_hpo.cli.ctl_cmd import export_rows

    kit.run(cmd_task(kit, "exp", [report_cmd([0.1, 0.2])]))
    store = kit.store("exp")
    rows = export_rows(store)
    store.close()
    assert json.loads(json.dumps(rows, default=str))[0]["reward"] == 0.2
