"""Trial executors (registered as ``executor`` components, picked by ``scheduler.type``)."""

from .base import Executor, JobState, JobStatus, TrialLaunch

__all__ = ["Executor", "JobState", "JobStatus", "TrialLaunch"]
