"""MLflow tracking (``tracking: {type: mlflow}``; optional extra ``gml-hpo[mlflow]``).

The task is a parent run and each trial a nested child run (tag ``mlflow.parentRunId``)
holding the trial's parameters, its intermediate metrics (with their steps) and its final
reward; the parent run gets the task's settings and a ``best_<reward>`` curve. Runs are
found again by tags (``gml.hpo.task``, ``gml.hpo.trial_id``), so a resumed task keeps its
parent run and a re-run trial keeps its child run (tag ``gml.hpo.attempt`` counts).

Default store: ``sqlite:///<task_dir>/mlflow.db`` with artifacts in
``<task_dir>/mlartifacts``; any MLflow tracking URI (``http://server:5000``) is accepted.
Look at it with ``mlflow ui --backend-store-uri <uri>``. mlflow is imported only when the
tracker is built, so it is not needed unless chosen.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import attrs

from ..records import TaskInfo, TrialRecord, TrialState
from .base import Tracker

TAG_TASK = "gml.hpo.task"
TAG_ROLE = "gml.hpo.role"
TAG_TRIAL = "gml.hpo.trial_id"
TAG_ATTEMPT = "gml.hpo.attempt"
TAG_STATE = "gml.hpo.state"
PARENT_TAG = "mlflow.parentRunId"
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
_MAX_PARAM = 6000

#: MLflow run status for each final trial state
RUN_STATUS = {
    TrialState.SUCCEEDED: "FINISHED",
    TrialState.FAILED: "FAILED",
    TrialState.NO_REWARD: "FAILED",
    TrialState.TIMEOUT: "FAILED",
    TrialState.EARLY_STOPPED: "KILLED",
    TrialState.CANCELLED: "KILLED",
}


@attrs.frozen(kw_only=True)
class MlflowOptions:
    """``tracking`` table for ``type = "mlflow"``.

    ``tracking_uri`` empty: a SQLite file ``mlflow.db`` in the task directory.
    ``experiment``: MLflow experiment holding the task's parent run.
    ``log_trial_log``: attach each trial's ``trial.log`` as an artifact when it ends.
    """

    tracking_uri: str = ""
    experiment: str = "gml-hpo"
    log_trial_log: bool = False


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested choices ``{"arch": {"width": 2}}`` -> ``{"arch.width": "2"}``, as MLflow param strings."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = _BAD_KEY.sub("_", f"{prefix}{key}")
        if isinstance(value, dict):
            out.update(flatten_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name] = text[:_MAX_PARAM]
    return out


def metric_key(name: str) -> str:
    """A metric name MLflow accepts (``accuracy/top1`` stays; other symbols become ``_``)."""
    return _BAD_KEY.sub("_", name)


class MlflowTracker(Tracker):
    """Parent run per task, child run per trial, through ``mlflow.tracking.MlflowClient``."""

    options_class = MlflowOptions

    def __init__(self, options: MlflowOptions | None = None, *, task_dir: Path | None = None):
        super().__init__(options if options is not None else MlflowOptions(), task_dir=task_dir)
        try:
            from mlflow.entities import Metric, Param, RunTag
            from mlflow.tracking import MlflowClient
        except ImportError:
            from gml_core.api import GmlUserError
            raise GmlUserError("tracking.type = 'mlflow' needs MLflow: pip install 'gml-hpo[mlflow]'") from None
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._Metric, self._Param, self._RunTag = Metric, Param, RunTag
        self._client_class = MlflowClient
        self._client = None
        self.uri = self.options.tracking_uri or f"sqlite:///{(self.task_dir / 'mlflow.db').resolve()}"
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self.task: TaskInfo | None = None
        self._children: dict[str, str] = {}
        self._best: float | None = None
        self._finished = 0

    @property
    def client(self):
        """The MlflowClient, made on first use (a new SQLite store is created then, ~10 s)."""
        if self._client is None:
            self._client = self._client_class(tracking_uri=self.uri)
        return self._client

    # -- runs --------------------------------------------------------------------------------

    def _experiment(self) -> str:
        exp = self.client.get_experiment_by_name(self.options.experiment)
        if exp is not None:
            return exp.experiment_id
        artifacts = None
        if not self.options.tracking_uri:
            artifacts = (self.task_dir / "mlartifacts").resolve().as_uri()
        return self.client.create_experiment(self.options.experiment, artifact_location=artifacts)

    def _find(self, filter_string: str) -> str | None:
        runs = self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=1,
                                       order_by=["attributes.start_time DESC"])
        return runs[0].info.run_id if runs else None

    def start_task(self, task: TaskInfo) -> None:
        self.task = task
        self.experiment_id = self._experiment()
        parent = self._find(f"tags.`{TAG_TASK}` = '{_quote(task.name)}' and tags.`{TAG_ROLE}` = 'task'")
        if parent is None:
            run = self.client.create_run(self.experiment_id, run_name=task.name, tags={
                TAG_TASK: task.name, TAG_ROLE: "task", "gml.hpo.task_dir": str(task.task_dir)})
            parent = run.info.run_id
            params = {"reward_attribute": task.reward_attribute, "optimize_mode": task.optimize_mode}
            for section in ("searcher", "scheduler"):
                value = task.config.get(section)
                if isinstance(value, dict):
                    params.update(flatten_params(value, f"{section}."))
            self.client.log_batch(parent, params=[self._Param(k, str(v)[:_MAX_PARAM]) for k, v in params.items()])
            self.client.log_dict(parent, _plain(task.config), "task.json")
        else:
            self.client.update_run(parent, status="RUNNING")
            self._restore_best(parent)
        self.parent_id = parent

    def _restore_best(self, parent: str) -> None:
        history = self.client.get_metric_history(parent, self._best_key())
        if history:
            last = max(history, key=lambda m: m.step)
            self._best, self._finished = last.value, last.step

    def _best_key(self) -> str:
        return metric_key(f"best_{self.task.reward_attribute}" if self.task else "best_reward")

    def _child(self, trial: TrialRecord | str) -> str | None:
        trial_id = trial if isinstance(trial, str) else trial.trial_id
        run_id = self._children.get(trial_id)
        if run_id is None and self.parent_id is not None:
            run_id = self._find(f"tags.`{PARENT_TAG}` = '{self.parent_id}' and "
                                f"tags.`{TAG_TRIAL}` = '{_quote(trial_id)}'")
            if run_id is not None:
                self._children[trial_id] = run_id
        return run_id

    def trial_started(self, trial: TrialRecord) -> None:
        if self.parent_id is None:
            return
        run_id = self._child(trial)
        tags = [self._RunTag(TAG_ATTEMPT, str(trial.attempt)), self._RunTag(TAG_STATE, trial.state.value)]
        if run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=trial.trial_id, tags={
                PARENT_TAG: self.parent_id, TAG_TASK: self.task.name if self.task else "",
                TAG_ROLE: "trial", TAG_TRIAL: trial.trial_id, "gml.hpo.trial_dir": str(trial.trial_dir),
                "gml.hpo.command": trial.command[:5000]})
            run_id = run.info.run_id
            self._children[trial.trial_id] = run_id
            params = [self._Param(k, v) for k, v in flatten_params(trial.params).items()]
            self.client.log_batch(run_id, params=params, tags=tags)
        else:
            self.client.update_run(run_id, status="RUNNING")
            self.client.log_batch(run_id, tags=tags)

    def trial_metrics(self, trial_id: str, step: int, metrics: dict[str, float]) -> None:
        run_id = self._child(trial_id)
        if run_id is None:
            return
        now = int(time.time() * 1000)
        batch = [self._Metric(metric_key(k), float(v), now, int(step)) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def trial_finished(self, trial: TrialRecord) -> None:
        run_id = self._child(trial)
        if run_id is None:
            return
        now = int(time.time() * 1000)
        tags = [self._RunTag(TAG_STATE, trial.state.value), self._RunTag(TAG_ATTEMPT, str(trial.attempt))]
        if trial.exit_code is not None:
            tags.append(self._RunTag("gml.hpo.exit_code", str(trial.exit_code)))
        if trial.reason:
            tags.append(self._RunTag("gml.hpo.reason", trial.reason[:5000]))
        metrics = []
        if trial.reward is not None:
            metrics.append(self._Metric("reward", float(trial.reward), now, trial.last_step or 0))
        if trial.duration_s is not None:
            metrics.append(self._Metric("duration_s", float(trial.duration_s), now, 0))
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        if self.options.log_trial_log and trial.log_path.is_file():
            self.client.log_artifact(run_id, str(trial.log_path))
        self.client.set_terminated(run_id, RUN_STATUS.get(trial.state, "FINISHED"))
        self._update_best(trial, now)

    def _update_best(self, trial: TrialRecord, now: int) -> None:
        if self.parent_id is None or self.task is None:
            return
        self._finished += 1
        if trial.reward is not None:
            better = (self._best is None or (trial.reward > self._best if self.task.optimize_mode == "maximize"
                                             else trial.reward < self._best))
            if better:
                self._best = float(trial.reward)
        if self._best is not None:
            self.client.log_batch(self.parent_id, metrics=[self._Metric(self._best_key(), self._best, now,
                                                                        self._finished)])

    def location(self) -> str | None:
        name = self.task.name if self.task else self.task_dir.name
        return (f"MLflow {self.uri}, experiment '{self.options.experiment}', parent run '{name}' "
                f"(mlflow ui --backend-store-uri {self.uri})")

    def close(self) -> None:
        if self.parent_id is not None:
            self.client.set_terminated(self.parent_id, "FINISHED")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _plain(value: Any) -> Any:
    """A JSON-serialisable copy (paths and other objects as strings)."""
    return json.loads(json.dumps(value, default=str))
