"""CurveFittingAssessor: learning-curve extrapolation with an ensemble of parametric curves.

In the spirit of Domhan, Springenberg & Hutter (IJCAI 2015): the trial's curve (values
in step order, x = 1, 2, ...) is rescaled to [0, 1] so that higher is better, each of
the eight parametric curve families below is fitted by least squares (outer parameters
in closed form over a grid of the inner ones), and the families are combined with BIC
weights (exp(-BIC/2)). Like the paper, the decision uses the predictive probability
that the value at step ``epoch_num`` beats the bar (``threshold`` x the best final
value of completed trials when maximising, best / ``threshold`` when minimising); the
paper's MCMC posterior is replaced by a residual bootstrap of the ensemble fit (the
spread of the extrapolation) plus the residual noise of the final observation. The
trial is stopped when that probability is below ``max_probability``; the assessor
abstains (never stops) when no family fits plausibly or the residuals are several times
the point-to-point noise (the families miss the curve's shape). Assessment starts at
``start_step`` and repeats every ``gap`` new values; benchmarks/hpo_early_stopping.py
measures false stops, epochs saved and the cost per call.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=256)
def _design(name: str, n: int, target: float) -> tuple[np.ndarray, ...]:
    """A family's basis at x = 1..n and at ``target`` with the sums the fit needs (cached:
    every trial of a task is fitted at the same few lengths)."""
    basis, intercept, _ = CURVES[name]
    with np.errstate(all="ignore"):
        g = basis(np.arange(1, n + 1, dtype=float))
        gt = basis(np.array([target]))[:, 0]
        if intercept:
            gm = g.mean(axis=1)
            gc = g - gm[:, None]
        else:
            gm, gc = np.zeros(len(g)), g
        sgg = (gc * gc).sum(axis=1)
    for a in (g, gt, gm, gc, sgg):
        a.setflags(write=False)
    return g, gt, gm, gc, sgg


def fit_curves_batch(Y: np.ndarray, target: float, families: Sequence[str] | None = None
                     ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Least-squares fit of each family to every row of ``Y`` (curves at x = 1..n);
    ``name -> (prediction at target (B,), BIC (B,), fitted curve (B, n))``. Outer parameters
    are solved in closed form for every grid point of the inner ones (they are linear in
    the curve), so all rows are fitted by a few vectorised array operations."""
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    n_rows, n = Y.shape
    rows = np.arange(n_rows)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    with np.errstate(all="ignore"):
        for name in families or CURVES:
            basis, intercept, k = CURVES[name]
            if n <= k:
                continue
            g, gt, gm, gc, sgg = _design(name, n, float(target))
            # least squares without forming the fits: rss = Syy - Sgy^2 / Sgg per (grid point, row)
            if intercept:
                ym = Y.mean(axis=1)
                yc = Y - ym[:, None]
                sgy = gc @ yc.T                                        # (G, B)
                syy = (yc * yc).sum(axis=1)
            else:
                ym = np.zeros(n_rows)
                sgy = g @ Y.T
                syy = (Y * Y).sum(axis=1)
            good = sgg > 1e-12
            slope = np.where(good[:, None], sgy / np.where(good, sgg, 1.0)[:, None], 0.0)
            rss = syy[None, :] - slope * sgy
            inter = ym[None, :] - slope * gm[:, None]
            pred = inter + slope * gt[:, None]
            rss[~(np.isfinite(rss) & np.isfinite(pred) & good[:, None])] = np.inf
            best = np.argmin(rss, axis=0)                             # (B,)
            r = np.maximum(rss[best, rows], 0.0)
            ok = np.isfinite(rss[best, rows])
            if not ok.any():
                continue
            bic = np.where(ok, n * np.log(r / n + 1e-12) + k * math.log(n), np.inf)
            fit = inter[best, rows][:, None] + slope[best, rows][:, None] * g[best]   # (B, n)
            out[name] = (np.where(ok, pred[best, rows], np.nan), bic, fit)
    return out


def fit_curves(y: Sequence[float], target: float, families: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    """``name -> (prediction at target, BIC)`` for one curve (see :func:`fit_curves_batch`)."""
    fits = fit_curves_batch(np.asarray(y, dtype=float)[None, :], target, families)
    return {k: (float(p[0]), float(b[0])) for k, (p, b, _) in fits.items() if math.isfinite(b[0])}


def ensemble_weights(bics: np.ndarray, preds: np.ndarray, low: float = -1.0, high: float = 4.0) -> np.ndarray:
    """BIC weights (exp(-BIC/2)) per row over the families (F, B); implausible predictions
    (outside [low, high] normalised units) get weight 0; a row without any is all zero."""
    ok = np.isfinite(bics) & np.isfinite(preds) & (preds >= low) & (preds <= high)
    b = np.where(ok, bics, np.inf)
    best = b.min(axis=0)
    with np.errstate(invalid="ignore"):
        w = np.where(ok, np.exp(-0.5 * (b - np.where(np.isfinite(best), best, 0.0))), 0.0)
    total = w.sum(axis=0)
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)


def ensemble_prediction(fits: dict[str, tuple[float, float]], low: float = -1.0, high: float = 4.0) -> float | None:
    """BIC-weighted mean of the plausible predictions (normalised units in [low, high])."""
    if not fits:
        return None
    preds = np.array([[v[0]] for v in fits.values()])
    w = ensemble_weights(np.array([[v[1]] for v in fits.values()]), preds, low, high)
    if w.sum() <= 0:
        return None
    return float((w * preds).sum())


def _noise_scale(y: np.ndarray) -> float:
    """Observation noise from successive differences (robust: median absolute deviation),
    so a smooth trend or one jump does not count as noise."""
    d = np.diff(y)
    if len(d) < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def predictive_probability(z: np.ndarray, target: float, bar: float, n_boot: int = 64,
                           rng: np.random.Generator | None = None, misfit_ratio: float = 3.0
                           ) -> tuple[float, float, bool]:
    """P(value at ``target`` > ``bar``) for a curve ``z`` (higher is better), with the
    ensemble's mean prediction and whether the fit is trustworthy.

    The ensemble (BIC weights) is fitted once; its residuals are resampled onto its
    fitted curve ``n_boot`` times (residual bootstrap) and every replicate is refitted,
    which gives the spread of the extrapolation; the final observation adds noise of the
    residuals' size. The fit is not trusted (third value False) when no family predicts
    a plausible value, or when its residuals are ``misfit_ratio`` times larger than the
    noise seen between successive points (the families miss the curve's shape).
    """
    rng = rng or np.random.default_rng(0)
    n = len(z)
    fits = fit_curves_batch(z[None, :], target)
    if not fits:
        return 1.0, math.nan, False
    names = list(fits)
    preds = np.stack([fits[k][0] for k in names])            # (F, 1)
    bics = np.stack([fits[k][1] for k in names])
    w = ensemble_weights(bics, preds)[:, 0]
    if w.sum() <= 0:
        return 1.0, math.nan, False
    fitted = (w[:, None] * np.stack([fits[k][2][0] for k in names])).sum(axis=0)
    mean = float((w * preds[:, 0]).sum())
    resid = z - fitted
    dof = max(1, n - 3)
    sigma = float(math.sqrt((resid ** 2).sum() / dof))
    noise = _noise_scale(z)
    if noise > 0 and sigma > misfit_ratio * noise and sigma > 0.05:
        return 1.0, mean, False
    # parametric bootstrap: noise of the residuals' size, but never below the point-to-point
    # noise (a family with as many parameters as points fits the noise itself)
    sigma = max(sigma, noise)
    Y = fitted[None, :] + rng.normal(0.0, sigma, size=(n_boot, n))
    boot = fit_curves_batch(Y, target)
    bp = np.stack([boot[k][0] for k in names if k in boot])
    bw = ensemble_weights(np.stack([boot[k][1] for k in names if k in boot]), bp)
    valid = bw.sum(axis=0) > 0
    if not valid.any():
        return 1.0, mean, False
    replicate = (bw * np.nan_to_num(bp)).sum(axis=0)[valid]
    spread = max(sigma, 1e-9)
    # each replicate's final observation ~ N(replicate, sigma^2)
    p = 0.5 * (1.0 + _erf((replicate - bar) / (spread * math.sqrt(2.0))))
    return float(p.mean()), mean, True


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(x)


@attrs.frozen(kw_only=True)
class CurveFittingOptions:
    epoch_num: int = 20
    start_step: int = 6
    threshold: float = 0.95
    gap: int = 1
    optimize_mode: Optional[Literal["maximize", "minimize"]] = None  # default: the searcher's
    max_probability: float = 0.25  # stop when P(final value beats the bar) is below this
    n_boot: int = 32               # bootstrap replicates of the fit

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
        if not 0 < self.max_probability < 1:
            problems.append((f"{p}.max_probability", f"must be in (0, 1), got {self.max_probability}"))
        if self.n_boot < 8:
            problems.append((f"{p}.n_boot", f"must be >= 8, got {self.n_boot}"))
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

    def bar(self) -> float:
        """The value a trial must be predicted to beat (threshold x best, or best / threshold)."""
        o = self.options
        return self.best_final * o.threshold if self.maximize else self.best_final / o.threshold

    def probability(self, history: Sequence[float]) -> tuple[float, bool]:
        """P(the value at ``epoch_num`` beats :meth:`bar`) and whether the fit is trusted."""
        y = np.asarray(history, dtype=float)
        bar = self.bar()
        lo, hi = float(y.min()), float(y.max())
        if hi - lo < 1e-12:  # a flat curve: nothing to extrapolate
            beats = y[-1] > bar if self.maximize else y[-1] < bar
            return float(beats), True
        z = (y - lo) / (hi - lo) if self.maximize else (hi - y) / (hi - lo)
        zbar = (bar - lo) / (hi - lo) if self.maximize else (hi - bar) / (hi - lo)
        p, _, trusted = predictive_probability(z, max(self.options.epoch_num, len(y)), zbar,
                                               n_boot=self.options.n_boot,
                                               rng=np.random.default_rng(len(y)))
        return p, trusted

    def assess(self, trial_id: str, history: Sequence[float]) -> bool:
        """Stop when the fit is trusted and P(final beats the bar) < ``max_probability``."""
        o = self.options
        step = len(history)
        if self.best_final is None or step < o.start_step:
            return False
        last = self.last_judged.get(trial_id)
        if last is not None and step - last < o.gap:
            return False
        self.last_judged[trial_id] = step
        p, trusted = self.probability(history)
        return trusted and p < o.max_probability
