"""CurveFittingAssessor: learning-curve extrapolation with an ensemble of parametric curves.

In the spirit of Domhan, Springenberg & Hutter (IJCAI 2015) and NNI's Curvefitting:
the trial's curve (values in step order, x = 1, 2, ...) is rescaled to [0, 1] so that
higher is better, each parametric curve family below is fitted by least squares (outer
parameters in closed form over a grid of the inner ones), and the families are combined
with BIC weights (exp(-BIC/2), a cheap stand-in for the paper's MCMC posterior) into a
prediction at step ``epoch_num``. The trial is stopped when the
prediction is not better than ``threshold`` times the best final value of completed
trials (maximize), or not below that best value divided by ``threshold`` (minimize).
Assessment starts at ``start_step`` and repeats every ``gap`` new values. A call costs
about a millisecond (benchmarks/hpo_early_stopping.py reports it).
"""

from __future__ import annotations

import math
from typing import Literal, Optional, Sequence

import attrs
import numpy as np

from .base import Assessor


def _log_grid(lo: float, hi: float, per_decade: int = 20) -> np.ndarray:
    """Log-spaced values with round numbers (1, 10, ...) on the grid."""
    n = int(round((hi - lo) * per_decade)) + 1
    return np.logspace(lo, hi, n)


_K, _D = np.meshgrid(_log_grid(-3, 1, 8), _log_grid(-1, 1, 15), indexing="ij")
_K, _D = _K.ravel(), _D.ravel()
_B, _C = np.meshgrid(np.linspace(-2.0, 5.0, 29), np.concatenate([-_log_grid(-1, 1, 8), _log_grid(-1, 1, 8)]),
                     indexing="ij")
_B, _C = _B.ravel(), _C.ravel()

#: name -> (basis(x) -> (grid points, len(x)) array, has_intercept, number of parameters).
#: Each family is linear in its outer parameters: y = c + a * g(x; theta) (or y = a * g),
#: with the nonlinear theta on a fixed grid ("variable projection" by enumeration).
CURVES: dict[str, tuple] = {
    # pow3: c - a x^-alpha
    "pow3": (lambda x: x[None, :] ** -_log_grid(-2, 1)[:, None], True, 3),
    # exp3: c - a exp(-b x)
    "exp3": (lambda x: np.exp(-_log_grid(-3, 1)[:, None] * x[None, :]), True, 3),
    # log-linear: a log x + b
    "logx_linear": (lambda x: np.log(x)[None, :], True, 2),
    # ilog2: c - a / log(x + 1)
    "ilog2": (lambda x: (1.0 / np.log(x + 1.0))[None, :], True, 2),
    # linear: a x + b
    "linear": (lambda x: x[None, :], True, 2),
    # Morgan-Mercer-Flodin: alpha - (alpha - beta) / (1 + (kappa x)^delta)
    "mmf": (lambda x: 1.0 / (1.0 + (_K[:, None] * x[None, :]) ** _D[:, None]), True, 4),
    # Weibull (= Janoschek reparametrised): alpha - (alpha - beta) exp(-(kappa x)^delta)
    "weibull": (lambda x: np.exp(-(_K[:, None] * x[None, :]) ** _D[:, None]), True, 4),
    # log power (= Hill reparametrised): a / (1 + (x / e^b)^c)
    "log_power": (lambda x: 1.0 / (1.0 + (x[None, :] / np.exp(_B)[:, None]) ** _C[:, None]), False, 3),
}


def fit_curves(y: Sequence[float], target: float, families: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    """Least-squares fit of each family to ``y`` (at x = 1..n); ``name -> (prediction at
    target, BIC)``. Outer parameters are solved in closed form for every grid point of the
    inner ones, so a fit is a few vectorised array operations (no iterative optimiser)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    x = np.arange(1, n + 1, dtype=float)
    xt = np.array([float(target)])
    out: dict[str, tuple[float, float]] = {}
    with np.errstate(all="ignore"):
        for name in families or CURVES:
            basis, intercept, k = CURVES[name]
            if n <= k:
                continue
            g, gt = basis(x), basis(xt)[:, 0]
            if intercept:
                gm = g.mean(axis=1)
                gc = g - gm[:, None]
                var = (gc * gc).sum(axis=1)
                slope = np.where(var > 1e-12, (gc * (y - y.mean())).sum(axis=1) / var, 0.0)
                inter = y.mean() - slope * gm
                fit = inter[:, None] + slope[:, None] * g
                pred = inter + slope * gt
            else:
                gg = (g * g).sum(axis=1)
                scale = np.where(gg > 1e-12, (g * y).sum(axis=1) / gg, 0.0)
                fit = scale[:, None] * g
                pred = scale * gt
            rss = ((fit - y) ** 2).sum(axis=1)
            rss[~(np.isfinite(rss) & np.isfinite(pred))] = np.inf
            i = int(np.argmin(rss))
            if not math.isfinite(rss[i]):
                continue
            out[name] = (float(pred[i]), n * math.log(rss[i] / n + 1e-12) + k * math.log(n))
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
        from gml_core.api import ConfigError
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
