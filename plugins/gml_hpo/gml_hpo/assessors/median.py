"""MedianStopAssessor: the median stopping rule (Golovin et al. 2017, Google Vizier).

A running trial is stopped at step S (S = number of values it reported, S >=
``start_step``) when its best value so far is strictly worse than the median of the
running averages, at step S, of the completed trials that reached S. With an even
number of such trials the more lenient middle value is used (the lower one when
maximising, the upper one when minimising), as NNI's Medianstop does.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import attrs

from .base import Assessor


@attrs.frozen(kw_only=True)
class MedianStopOptions:
    optimize_mode: Optional[Literal["maximize", "minimize"]] = None  # default: the searcher's
    start_step: int = 0

    def __attrs_post_init__(self):
        if self.start_step < 0:
            from gml_core.api import ConfigError
            raise ConfigError([("scheduler.assessor.start_step", f"must be >= 0, got {self.start_step}")])


class MedianStopAssessor(Assessor):
    options_class = MedianStopOptions

    def __init__(self, options: MedianStopOptions | None = None, **kwargs):
        super().__init__(options or MedianStopOptions(), **kwargs)
        self.running_averages: dict[str, list[float]] = {}

    def trial_end(self, trial_id: str, history: Sequence[float], completed: bool) -> None:
        if not completed or not history:
            return
        total, avgs = 0.0, []
        for i, v in enumerate(history, start=1):
            total += v
            avgs.append(total / i)
        self.running_averages[trial_id] = avgs

    def median_at(self, step: int) -> float | None:
        """The lenient median of completed running averages at ``step`` (1-based)."""
        values = sorted(a[step - 1] for a in self.running_averages.values() if len(a) >= step)
        if not values:
            return None
        mid = (len(values) - 1) // 2 if self.maximize else len(values) // 2
        return values[mid]

    def assess(self, trial_id: str, history: Sequence[float]) -> bool:
        step = len(history)
        if step == 0 or step < self.options.start_step:
            return False
        median = self.median_at(step)
        if median is None:
            return False
        best = max(history) if self.maximize else min(history)
        return best < median if self.maximize else best > median
