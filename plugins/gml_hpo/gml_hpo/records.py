"""Plain records shared by the scheduler, the task store, executors and trackers.

These are the stable data types of the gml-hpo plugin interfaces (executors and
trackers receive them); they import nothing heavy.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import attrs


class TrialState(str, enum.Enum):
    """Life cycle of one trial as recorded in the task store."""

    PENDING = "PENDING"            # row written, not yet handed to the executor
    RUNNING = "RUNNING"            # submitted; the executor holds a handle
    SUCCEEDED = "SUCCEEDED"        # exit code 0 with a numeric reward
    NO_REWARD = "NO_REWARD"        # exit code 0 but no numeric reward_attribute was reported
    FAILED = "FAILED"              # non-zero exit code, or the executor lost / failed the job
    EARLY_STOPPED = "EARLY_STOPPED"  # stopped by an assessor, keeps its last values
    TIMEOUT = "TIMEOUT"            # over time_limits_per_job (or the cluster's time limit)
    CANCELLED = "CANCELLED"        # the task stopped (search-ctl stop, max_reward, time_limits)

    @property
    def finished(self) -> bool:
        return self not in (TrialState.PENDING, TrialState.RUNNING)


@attrs.define(kw_only=True)
class TaskInfo:
    """A task as trackers see it.

    ``config`` is the validated task file as a plain dict; ``resumed`` tells a tracker
    that the task existed before (reuse the parent run instead of creating one).
    """

    name: str
    task_dir: Path
    config: dict[str, Any]
    reward_attribute: str
    optimize_mode: str
    resumed: bool = False


@attrs.define(kw_only=True)
class TrialRecord:
    """One trial as stored in the task store and passed to trackers."""

    trial_id: str
    seq: int
    params: dict[str, Any]
    state: TrialState = TrialState.PENDING
    command: str = ""
    trial_dir: Path = Path(".")
    handle: str | None = None
    reward: float | None = None
    exit_code: int | None = None
    reason: str = ""
    attempt: int = 1
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    last_step: int | None = None
    last_metrics: dict[str, float] = attrs.field(factory=dict)

    @property
    def log_path(self) -> Path:
        return self.trial_dir / "trial.log"

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            import time

            end = time.time()
        return max(0.0, end - self.started_at)
