"""CurveFittingAssessor: learning-curve extrapolation with an ensemble of parametric curves.

In the spirit of Domhan, Springenberg & Hutter (IJCAI 2015) and NNI's Curvefitting:
the trial's curve (values in step order, x = 1, 2, ...) is rescaled to [0, 1] so that
higher is better, each curve family below is fitted by bounded least squares, and the
families are combined with BIC weights (exp(-BIC/2), a cheap stand-in for the paper's
MCMC posterior) into a prediction at step ``epoch_num``. The trial is stopped when the
prediction is not better than ``threshold`` times the best final value of completed
trials (maximize), or not below that best value divided by ``threshold`` (minimize).
Assessment starts at ``start_step`` and repeats every ``gap`` new values. A call costs
a few milliseconds (a dozen tiny fits), measured in benchmarks/hpo_assessors.py.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Literal, Optional, Sequence

import attrs
import numpy as np

from .base import Assessor


def _pow(x, e):
    return np.power(x, e)


#: name -> (function of (x, *params), initial params, lower bounds, upper bounds)
CURVES: dict[str, tuple[Callable, list[float], list[float], list[float]]] = {
    "pow3": (lambda x, c, a, al: c - a * _pow(x, -al), [1.0, 1.0, 0.5], [-1, -5, 1e-3], [5, 5, 5]),
    "exp3": (lambda x, c, a, b: c - a * np.exp(-b * x), [1.0, 1.0, 0.3], [-1, -5, 1e-4], [5, 5, 5]),
    "logx_linear": (lambda x, a, b: a * np.log(x) + b, [0.5, 0.0], [-10, -10], [10, 10]),
    "ilog2": (lambda x, c, a: c - a / np.log(x + 1.0), [1.0, 0.5], [-5, -10], [5, 10]),
    "linear": (lambda x, a, b: a * x + b, [0.1, 0.0], [-10, -10], [10, 10]),
    "mmf": (lambda x, al, be, k, d: al - (al - be) / (1.0 + _pow(k * x, d)),
            [1.0, 0.0, 0.3, 1.0], [-1, -5, 1e-4, 0.05], [5, 5, 50, 10]),
    "weibull": (lambda x, al, be, k, d: al - (al - be) * np.exp(-_pow(k * x, d)),
                [1.0, 0.0, 0.3, 1.0], [-1, -5, 1e-4, 0.05], [5, 5, 50, 10]),
    "janoschek": (lambda x, a, be, k, d: a - (a - be) * np.exp(-k * _pow(x, d)),
                  [1.0, 0.0, 0.3, 1.0], [-1, -5, 1e-4, 0.05], [5, 5, 50, 10]),
    "log_power": (lambda x, a, b, c: a / (1.0 + _pow(x / np.exp(b), c)), [1.0, 0.5, -1.0], [-5, -10, -10], [5, 10, 10]),
    "hill": (lambda x, th, e, k: th * _pow(x, e) / (_pow(k, e) + _pow(x, e)), [1.0, 1.0, 2.0], [-1, 0.05, 1e-3], [5, 10, 100]),
}


def fit_curves(y: Sequence[float], target: float, families: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    """Fit each family to ``y`` (at x = 1..n); return ``name -> (prediction at target, BIC)``."""
    from scipy.optimize import least_squares

    y = np.asarray(y, dtype=float)
    n = len(y)
    x = np.arange(1, n + 1, dtype=float)
    out: dict[str, tuple[float, float]] = {}
    for name in families or CURVES:
        fn, p0, lo, hi = CURVES[name]
        k = len(p0)
        if n <= k:
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                res = least_squares(lambda p: fn(x, *p) - y, p0, bounds=(lo, hi), max_nfev=60 * k, method="trf")
            except (ValueError, FloatingPointError, OverflowError):
                continue
            pred = float(fn(np.array([float(target)]), *res.x)[0])
        rss = float(np.sum(res.fun ** 2))
        if not (math.isfinite(pred) and math.isfinite(rss)):
            continue
        out[name] = (pred, n * math.log(rss / n + 1e-12) + k * math.log(n))
    return out


def ensemble_prediction(fits: dict[str, tuple[float, float]], low: float = -1.0, high: float = 4.0) -> float | None:
    """BIC-weighted mean of the plausible predictions (normalised units in [low, high])."""
    ok = {k: v for k, v in fits.items() if low <= v[0] <= high}
    if not ok:
        return None
    best = min(b for _, b in ok.values())
    weights = {k: math.exp(-0.5 * (b - best)) for k, (_, b) in ok.items()}
    total = sum(weights.values())
    return sum(weights[k] * ok[k][0] for k in ok) / total


@attrs.frozen(kw_only=True)
class CurveFittingOptions:
    epoch_num: int = 20
    start_step: int = 6
    threshold: float = 0.95
    gap: int = 1
    optimize_mode: Optional[Literal["maximize", "minimize"]] = None  # default: the searcher's

    def __attrs_post_init__(self):
        from gml_core.errors import ConfigError

        p = "scheduler.assessor"
        problems = []
        if self.epoch_num < 1:
            problems.append((f"{p}.epoch_num", f"must be >= 1, got {self.epoch_num}"))
        if self.start_step < 1:
            problems.append((f"{p}.start_step", f"must be >= 1, got {self.start_step}"))
        if self.gap < 1:
            problems.append((f"{p}.gap", f"must be >= 1, got {self.gap}"))
        if self.threshold <= 0:
            problems.append((f"{p}.threshold", f"must be > 0, got {self.threshold}"))
        if problems:
            raise ConfigError(problems)


class CurveFittingAssessor(Assessor):
    options_class = CurveFittingOptions

    def __init__(self, options: CurveFittingOptions | None = None, **kwargs):
        super().__init__(options or CurveFittingOptions(), **kwargs)
        self.best_final: float | None = None
        self.last_judged: dict[str, int] = {}

    def trial_end(self, trial_id: str, history: Sequence[float], completed: bool) -> None:
        self.last_judged.pop(trial_id, None)
        if not completed or not history:
            return
        final = float(history[-1])
        if self.best_final is None:
            self.best_final = final
        else:
            self.best_final = max(self.best_final, final) if self.maximize else min(self.best_final, final)

    def predict(self, history: Sequence[float]) -> float | None:
        """Predicted value at ``epoch_num`` in the metric's own units (None: no usable fit)."""
        y = np.asarray(history, dtype=float)
        lo, hi = float(y.min()), float(y.max())
        if hi - lo < 1e-12:
            return float(y[-1])
        z = (y - lo) / (hi - lo) if self.maximize else (hi - y) / (hi - lo)
        pred = ensemble_prediction(fit_curves(z, max(self.options.epoch_num, len(y))))
        if pred is None:
            return None
        return lo + pred * (hi - lo) if self.maximize else hi - pred * (hi - lo)

    def assess(self, trial_id: str, history: Sequence[float]) -> bool:
        o = self.options
        step = len(history)
        if self.best_final is None or step < o.start_step:
            return False
        last = self.last_judged.get(trial_id)
        if last is not None and step - last < o.gap:
            return False
        self.last_judged[trial_id] = step
        pred = self.predict(history)
        if pred is None:
            return False
        if self.maximize:
            return not pred > self.best_final * o.threshold
        return not pred < self.best_final / o.threshold
