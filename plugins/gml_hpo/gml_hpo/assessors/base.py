"""The assessor interface.

The scheduler calls ``assess(trial_id, history)`` each time a running trial reports new
values of the reward attribute (``history``: its values in step order, oldest first)
and stops the trial when it returns True (state EARLY_STOPPED, last values kept).
``trial_end(trial_id, history, completed)`` tells the assessor that a trial ended;
``completed`` is True only for trials that ran to completion (SUCCEEDED). After a
scheduler restart the history of ended trials is replayed through ``trial_end``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence


class Assessor:
    options_class: ClassVar[type | None] = None

    def __init__(self, options: Any = None, *, optimize_mode: str = "maximize"):
        self.options = options
        mode = getattr(options, "optimize_mode", None) or optimize_mode
        self.maximize = mode == "maximize"

    def assess(self, trial_id: str, history: Sequence[float]) -> bool:
        """True when the trial should be stopped now."""
        return False

    def trial_end(self, trial_id: str, history: Sequence[float], completed: bool) -> None:
        """A trial ended (``completed``: it finished normally)."""
