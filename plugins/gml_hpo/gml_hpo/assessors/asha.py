"""AshaAssessor: asynchronous successive halving (Li et al., MLSys 2020) and, with
``brackets > 1``, asynchronous Hyperband (Li et al., JMLR 2018), as an early-stopping rule.

Steps are the values a trial reports (epochs for a ``gml run`` trial: one validation per
epoch). Bracket ``b`` has rungs at steps ``min_resource * eta^(b + k)`` (k = 0, 1, ...,
below ``max_resource``). When a trial reaches a rung, its value at that step is recorded
among the values of every trial of its bracket that reached the rung; it continues only
if it ranks within the top ``floor(n / eta)`` of those ``n`` values (itself included).
While ``n < eta`` nobody would qualify, and trials cannot be paused and resumed here,
so the trial continues only if it is the best so far at that rung (as Optuna's
SuccessiveHalvingPruner does). Otherwise it is stopped: ASHA's "promote the top 1/eta"
in the form that fits a scheduler which runs each trial once, with any ``parallel_size``
and any searcher.

Hyperband: trial ``t`` goes to bracket ``b`` with a probability proportional to the
number of configurations Hyperband gives that bracket, ``ceil((S + 1) / (S - b + 1) *
eta^(S - b))`` for S = brackets - 1 (bracket 0 is the most aggressive), by a stable hash
of the trial id, so a restart puts every trial back into its bracket.
"""

from __future__ import annotations

import math
import zlib
from typing import Literal, Optional, Sequence

import attrs

from .base import Assessor


@attrs.frozen(kw_only=True)
class AshaOptions:
    optimize_mode: Optional[Literal["maximize", "minimize"]] = None  # default: the searcher's
    min_resource: int = 1
    reduction_factor: int = 3
    max_resource: Optional[int] = None  # the trial's full number of steps (epochs)
    brackets: int = 1

    def __attrs_post_init__(self):
        from gml_core.api import ConfigError
        problems = []
        if self.min_resource < 1:
            problems.append(("scheduler.assessor.min_resource", f"must be >= 1, got {self.min_resource}"))
        if self.reduction_factor < 2:
            problems.append(("scheduler.assessor.reduction_factor", f"must be >= 2, got {self.reduction_factor}"))
        if self.brackets < 1:
            problems.append(("scheduler.assessor.brackets", f"must be >= 1, got {self.brackets}"))
        if self.max_resource is not None and self.max_resource <= self.min_resource:
            problems.append(("scheduler.assessor.max_resource",
                             f"must be > min_resource ({self.min_resource}), got {self.max_resource}"))
        if problems:
            raise ConfigError(problems)


class AshaAssessor(Assessor):
    options_class = AshaOptions

    def __init__(self, options: AshaOptions | None = None, **kwargs):
        super().__init__(options or AshaOptions(), **kwargs)
        o = self.options
        S = o.brackets - 1
        self.weights = [math.ceil((S + 1) / (S - b + 1) * o.reduction_factor ** (S - b)) for b in range(o.brackets)]
        # rung values: (bracket, rung step) -> {trial_id: value}
        self.rungs: dict[tuple[int, int], dict[str, float]] = {}

    def bracket(self, trial_id: str) -> int:
        if len(self.weights) == 1:
            return 0
        h = zlib.crc32(trial_id.encode()) % sum(self.weights)
        for b, w in enumerate(self.weights):
            if h < w:
                return b
            h -= w
        return len(self.weights) - 1

    def rung_steps(self, bracket: int) -> list[int]:
        """Steps at which trials of ``bracket`` are compared (bounded by ``max_resource``)."""
        o, steps = self.options, []
        step = o.min_resource * o.reduction_factor ** bracket
        limit = o.max_resource if o.max_resource is not None else 10 ** 9
        while step < limit:
            steps.append(step)
            step *= o.reduction_factor
        return steps

    def _promotable(self, value: float, competing: list[float]) -> bool:
        k = max(len(competing) // self.options.reduction_factor, 1)
        ranked = sorted(competing, reverse=self.maximize)
        return value >= ranked[k - 1] if self.maximize else value <= ranked[k - 1]

    def assess(self, trial_id: str, history: Sequence[float]) -> bool:
        b = self.bracket(trial_id)
        for step in self.rung_steps(b):
            if step > len(history):
                break
            rung = self.rungs.setdefault((b, step), {})
            if trial_id in rung:
                continue  # decided at an earlier call
            rung[trial_id] = history[step - 1]
            if not self._promotable(history[step - 1], list(rung.values())):
                return True
        return False

    def trial_end(self, trial_id: str, history: Sequence[float], completed: bool) -> None:
        """Record the rung values of an ended trial (replayed after a restart)."""
        b = self.bracket(trial_id)
        for step in self.rung_steps(b):
            if step > len(history):
                break
            self.rungs.setdefault((b, step), {}).setdefault(trial_id, history[step - 1])
