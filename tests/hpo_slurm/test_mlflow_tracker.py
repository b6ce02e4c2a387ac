"""The MLflow tracker: parent run per task, child run per trial, read back through MLflow's own client."""

from __future__ import annotations

import shutil
import time

import pytest

from gml_hpo.records import TaskInfo, TrialRecord, TrialState
from gml_hpo.tracking.mlflow_tracker import MlflowOptions, MlflowTracker, flatten_params, metric_key

mlflow = pytest.importorskip("mlflow", reason="mlflow is an optional extra (gml-hpo[mlflow])")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory):
    """An MLflow SQLite store with its schema created once (creating one takes ~10 s here)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def task_info(tmp_path, resumed=False) -> TaskInfo:
    config = {"task": {"name": "toy", "template": "echo {lr}"},
              "searcher": {"type": "RandomSearcher", "reward_attribute": "acc", "optimize_mode": "maximize"},
              "scheduler": {"type": "LocalScheduler", "parallel_size": 2}}
    return TaskInfo(name="toy", task_dir=tmp_path, config=config, reward_attribute="acc",
                    optimize_mode="maximize", resumed=resumed)


def trial(tmp_path, i, **kw) -> TrialRecord:
    params = {"lr": 0.1 * (i + 1), "bs": 32, "arch": {"width": i, "depth": 2}}
    return TrialRecord(trial_id=f"{i:04d}", seq=i, params=params, command=f"echo {i}",
                       trial_dir=tmp_path / f"{i:04d}", started_at=time.time(), **kw)


def finish(tracker, rec, state, reward, exit_code=0):
    rec.state, rec.reward, rec.exit_code, rec.finished_at = state, reward, exit_code, time.time()
    rec.last_step = 2
    tracker.trial_finished(rec)


def test_helpers():
    assert flatten_params({"lr": 0.5, "arch": {"w": 2, "d": [1, 2]}, "name": "x y"}) == \
        {"lr": "0.5", "arch.w": "2", "arch.d": "[1, 2]", "name": "x y"}
    assert metric_key("accuracy/top1") == "accuracy/top1" and metric_key("a:b") == "a_b"


def test_parent_and_child_runs_with_params_metrics_and_resume(tmp_path, empty_db):
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    tracker = MlflowTracker(MlflowOptions(), task_dir=tmp_path)
    tracker.start_task(task_info(tmp_path))
    recs = [trial(tmp_path, i) for i in range(3)]
    for rec in recs:
        rec.state = TrialState.RUNNING
        tracker.trial_started(rec)
    for step in range(3):
        for i, rec in enumerate(recs):
            tracker.trial_metrics(rec.trial_id, step, {"acc": 0.5 + 0.1 * i + 0.01 * step, "accuracy/top1": 50.0})
    finish(tracker, recs[0], TrialState.SUCCEEDED, 0.52)
    finish(tracker, recs[1], TrialState.EARLY_STOPPED, 0.62)
    tracker.close()
    assert str(tmp_path / "mlflow.db") in tracker.location()

    # the scheduler died with trial 0002 running: a resumed run re-runs it (attempt 2)
    again = MlflowTracker(MlflowOptions(), task_dir=tmp_path)
    again.start_task(task_info(tmp_path, resumed=True))
    recs[2].attempt, recs[2].state = 2, TrialState.RUNNING
    again.trial_started(recs[2])
    again.trial_metrics(recs[2].trial_id, 0, {"acc": 0.7})
    finish(again, recs[2], TrialState.FAILED, None, exit_code=3)
    again.close()

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("gml-hpo")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("gml.hpo.role") == "task"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == 3 and len(runs) == 4
    parent = parents[0]
    assert parent.info.run_name == "toy" and parent.info.status == "FINISHED"
    assert parent.data.params["reward_attribute"] == "acc"
    assert parent.data.params["searcher.type"] == "RandomSearcher"
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    by_id = {c.data.tags["gml.hpo.trial_id"]: c for c in children}
    assert set(by_id) == {"0000", "0001", "0002"}
    for i, rec in enumerate(recs):
        run = by_id[rec.trial_id]
        assert run.info.run_name == rec.trial_id
        assert run.data.params == {"lr": repr(0.1 * (i + 1)), "bs": "32", "arch.width": str(i), "arch.depth": "2"}
    hist = client.get_metric_history(by_id["0001"].info.run_id, "acc")
    assert sorted((m.step, round(m.value, 4)) for m in hist) == [(0, 0.6), (1, 0.61), (2, 0.62)]
    assert by_id["0001"].data.metrics["reward"] == pytest.approx(0.62)
    assert by_id["0001"].data.metrics["accuracy/top1"] == 50.0
    assert (by_id["0000"].info.status, by_id["0001"].info.status, by_id["0002"].info.status) == \
        ("FINISHED", "KILLED", "FAILED")
    assert by_id["0001"].data.tags["gml.hpo.state"] == "EARLY_STOPPED"
    assert by_id["0002"].data.tags["gml.hpo.attempt"] == "2"
    assert by_id["0002"].data.tags["gml.hpo.exit_code"] == "3"
    assert "reward" not in by_id["0002"].data.metrics
    best = client.get_metric_history(parent.info.run_id, "best_acc")
    assert [(m.step, m.value) for m in sorted(best, key=lambda m: m.step)] == [(1, 0.52), (2, 0.62), (3, 0.62)]
    logged = client.download_artifacts(parent.info.run_id, "task.json", str(tmp_path / "dl"))
    assert "RandomSearcher" in open(logged).read()


def test_server_uri_and_missing_mlflow_message(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    tracker = MlflowTracker(MlflowOptions(tracking_uri=uri, experiment="exp2"), task_dir=tmp_path)
    assert tracker.uri == uri and "exp2" in tracker.location()
    assert not (tmp_path / "elsewhere.db").exists()  # nothing is created before the task starts

    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    from gml_core._internal.errors import GmlUserError

    with pytest.raises(GmlUserError, match=r"gml-hpo\[mlflow\]"):
        MlflowTracker(MlflowOptions(), task_dir=tmp_path)


def test_search_run_logs_the_task_to_mlflow_and_show_prints_where(tmp_path, empty_db):
    """End to end: ``search-run`` with ``tracking: {type: mlflow}``, read back through MLflow's client."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    bin_dir = Path(sys.executable).parent
    toy = Path(__file__).parent / "data" / "toy_trial.py"
    task = {"task": {"name": "mlf", "work_dir": "work",
                     "template": f"{sys.executable} {toy} {{x}} --steps 3 --sleep 0.05 --exit {{code}}",
                     "search_args": {"x": {"type": "Categorical", "data": [0.2, 0.3]},
                                     "code": {"type": "Categorical", "data": [0, 3]}}},
            "searcher": {"type": "GridSearcher", "reward_attribute": "acc"},
            "scheduler": {"type": "LocalScheduler", "parallel_size": 2, "poll_interval": 0.2},
            "tracking": {"type": "mlflow", "experiment": "toy-exp"}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(task))
    (tmp_path / "work" / "mlf").mkdir(parents=True)
    shutil.copy(empty_db, tmp_path / "work" / "mlf" / "mlflow.db")
    run = subprocess.run([str(bin_dir / "search-run"), "t.yaml", "-q"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    show = subprocess.run([str(bin_dir / "search-ctl"), "show", "-t", "mlf", "--work-dir", "work"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    db = tmp_path / "work" / "mlf" / "mlflow.db"
    assert "MLflow" in show.stdout and "mlflow.db" in show.stdout.replace("\n", ""), show.stdout

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("toy-exp")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 4 and len(runs) == 5
    expected = {(x, c) for x in ("0.2", "0.3") for c in ("0", "3")}
    assert {(r.data.params["x"], r.data.params["code"]) for r in children} == expected
    for r in children:
        x, code = float(r.data.params["x"]), int(r.data.params["code"])
        hist = sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, "acc"))
        assert hist == [(s, pytest.approx(x * (s + 1))) for s in range(3)]
        assert r.info.status == ("FINISHED" if code == 0 else "FAILED")
        assert r.data.tags["gml.hpo.state"] == ("SUCCEEDED" if code == 0 else "FAILED")
        if code == 0:
            assert r.data.metrics["reward"] == pytest.approx(3 * x)
    best = client.get_metric_history(parents[0].info.run_id, "best_acc")
    assert max(m.value for m in best) == pytest.approx(0.9)
    assert json.loads(open(client.download_artifacts(parents[0].info.run_id, "task.json",
                                                     str(tmp_path / "dl"))).read())["task"]["name"] == "mlf"


def test_gml_run_logs_to_mlflow_through_the_visualizer(tmp_path, empty_db):
    """``[runtime] visualizer = ["local", "mlflow"]``: a plain ``gml run`` logs its curves and config to MLflow."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    db = tmp_path / "runs.db"
    shutil.copy(empty_db, db)
    uri = f"sqlite:///{db}"
    run = subprocess.run(
        [str(Path(sys.executable).parent / "gml"), "run", str(repo / "configs/baseline/digits_cnn.toml"),
         "--work-dir", str(tmp_path / "wd"), "--cfg-options", "train.epochs=1", "algorithm.model.width=4",
         "runtime.checkpoint_interval=0", 'runtime.visualizer=["local", "mlflow"]',
         f'runtime.mlflow_tracking_uri="{uri}"', 'runtime.mlflow_experiment="digits-vis"'],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("digits-vis").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["gml.train.epochs"] == "1" and found.data.params["gml.data.type"] == "digits"
    top1 = sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, "accuracy/top1"))
    assert [s for s, _ in top1] == [1] and 0.0 < top1[0][1] <= 100.0
    assert client.get_metric_history(found.info.run_id, "loss")  # training losses too
