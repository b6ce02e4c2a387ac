"""BOSearcher on Hartmann6: do exploration steps or more GP-fit starts keep runs out of its local minimum?

Hartmann6 has a local minimum at -3.20 beside the global one at -3.32; whether a 50-trial run ends
in it decides most of the mean regret. Each variant is a BOSearcher subclass, run sequentially on
the same seeds; printed: mean log10 regret at 25 and 50 trials, the number of runs whose best value
stays above -3.25 ("stuck"), and the seeds 0-9 mean at 50 (the issue's 10 seeds).

* ``default``: the shipped BOSearcher;
* ``thompson-K``: every K-th model-based suggestion is a Thompson sample (one joint posterior draw
  over 1,024 uniform points, its argmax) instead of the log-EI maximiser;
* ``fit-starts``: the GP's MAP fit also starts from length scales 0.1, 0.2 and 2 in every dimension;
* ``ucb`` / ``pi``: mean + 2 sd / log probability of improvement instead of log EI; ``hedge``: GP-Hedge over
  EI, PI and UCB (Hoffman et al. 2011);
* ``laplace-K``: log EI averaged over K GPs, the MAP fit and K - 1 hyper-parameter draws from a Laplace
  approximation of their posterior, importance-weighted (Snoek et al. 2012 integrate EI over the
  hyper-parameters by slice sampling; this is a cheaper stand-in for it).

    python benchmarks/hpo_h6_exploration.py --seeds 30 --variants default thompson-3 thompson-4 fit-starts laplace-8

``--basins`` instead traces the shipped BOSearcher run by run: which of the two basins (the global minimum
and the local one at -3.20) its trials ever come within 0.3 of, from which trial on, and how far the best of
its random initial points lies from each; the last line counts the runs whose outcome that nearer basin
predicts.

    python benchmarks/hpo_h6_exploration.py --seeds 30 --basins
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from hpo_searchers import FUNCTIONS, log_regret, run_gml  # noqa: E402
from scipy.linalg import solve_triangular  # noqa: E402
from scipy.special import log_ndtr  # noqa: E402
from scipy.stats import norm  # noqa: E402

from gml_hpo.searchers.bo import BOSearcher  # noqa: E402
from gml_hpo.searchers.gp import GP, matern52  # noqa: E402

STUCK_ABOVE = -3.25
GLOBAL_MIN = np.array([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])  # -3.32237
LOCAL_MIN = np.array([0.4047, 0.8824, 0.8461, 0.5740, 0.1389, 0.0385])  # -3.20316
NEAR = 0.3


def thompson_every(k: int) -> type:
    class ThompsonSteps(BOSearcher):
        """Every ``k``-th model-based step: the argmax of one posterior sample over uniform points."""

        def _maximise(self, gp, best, X, y):
            if (len(self.issued) - self.n_initial) % k != k - 1:
                return super()._maximise(gp, best, X, y)
            rng = self._np_rng(7)
            cands = self.enc.random(rng, 1024)
            Kc = matern52(cands, gp.X, gp.ls, gp.scale)
            v = solve_triangular(gp.L, Kc.T, lower=True)
            cov = matern52(cands, cands, gp.ls, gp.scale) - v.T @ v
            w, U = np.linalg.eigh(0.5 * (cov + cov.T))
            sample = Kc @ gp.alpha + U @ (np.sqrt(np.maximum(w, 0.0)) * rng.standard_normal(len(cands)))
            return self.enc.round(cands[np.argsort(-sample)])

    return ThompsonSteps


class MoreFitStarts(BOSearcher):
    """The MAP fit also starts from short (0.1, 0.2) and long (2) length scales."""

    def _model(self, X, y, running):
        d, fit = X.shape[1], GP.fit
        extra = [np.concatenate([np.full(d, math.log(s)), [0.0, math.log(1e-3)]]) for s in (0.1, 0.2, 2.0)]
        GP.fit = lambda gp, starts=None: fit(gp, list(starts or []) + extra)
        try:
            return super()._model(X, y, running)
        finally:
            GP.fit = fit


class _Mixture:
    """log of the weighted mean EI of several GPs fitted to the same data (same standardisation)."""

    def __init__(self, gps: list, log_w: np.ndarray):
        self.gps, self.log_w = gps, log_w - np.logaddexp.reduce(log_w)
        self.y_mean, self.y_std = gps[0].y_mean, gps[0].y_std

    def log_ei(self, Xs, best, grad=False):
        outs = [g.log_ei(Xs, best, grad) for g in self.gps]
        vals = np.stack([o[0] if grad else o for o in outs]) + self.log_w[:, None]  # (k, m)
        value = np.logaddexp.reduce(vals, axis=0)
        if not grad:
            return value
        resp = np.exp(vals - value)  # each GP's share of the mixture, (k, m)
        return value, np.einsum("km,kmd->md", resp, np.stack([o[1] for o in outs]))


def laplace_mixture(k: int) -> type:
    class LaplaceMixture(BOSearcher):
        """EI integrated over k hyper-parameter settings: the MAP and k - 1 Laplace draws."""

        def _model(self, X, y, running):
            gp = super()._model(X, y, running)
            if running:
                return gp
            t, n, d = gp.theta, len(gp.theta), X.shape[1]
            f0 = gp.neg_log_posterior(t)[0]
            hess = np.empty((n, n))
            for i in range(n):  # central differences of the analytic gradient
                e = np.zeros(n)
                e[i] = 1e-4
                hess[i] = (gp.neg_log_posterior(t + e)[1] - gp.neg_log_posterior(t - e)[1]) / 2e-4
            w, U = np.linalg.eigh(0.5 * (hess + hess.T))
            w = np.maximum(w, 1.0)  # at most one unit of log scale in any direction
            lo = [GP.LS_BOUNDS[0]] * d + [GP.SCALE_BOUNDS[0], GP.NOISE_BOUNDS[0]]
            hi = [GP.LS_BOUNDS[1]] * d + [GP.SCALE_BOUNDS[1], GP.NOISE_BOUNDS[1]]
            draws = np.clip(t + (self._np_rng(5).standard_normal((k - 1, n)) / np.sqrt(w)) @ U.T, lo, hi)
            gps, log_w = [gp], [0.0]
            for s in draws:
                proposal = -0.5 * float((((s - t) @ U) ** 2 * w).sum())
                log_w.append(f0 - gp.neg_log_posterior(s)[0] - proposal)  # posterior / proposal
                gps.append(GP(gp.X, gp.y * gp.y_std + gp.y_mean, gp.ls_prior).set_theta(s))
            return _Mixture(gps, np.array(log_w))

    return LaplaceMixture


class _Acquisition:
    """A GP seen through another acquisition than log EI, under the ``log_ei`` name ``_maximise`` calls:
    ``pi`` is log P(improvement), ``ucb`` is mean + 2 sd (both on the standardised scale)."""

    def __init__(self, gp, kind: str):
        self.gp, self.kind = gp, kind

    def log_ei(self, Xs, best, grad=False):
        if self.kind == "ei":
            return self.gp.log_ei(Xs, best, grad)
        out = self.gp.posterior(Xs, grad=grad)
        mu, sd = out[0], out[1]
        if self.kind == "ucb":
            value = mu + 2.0 * sd
            return (value, out[2] + 2.0 * out[3]) if grad else value
        z = (mu - best) / sd
        value = log_ndtr(z)
        if not grad:
            return value
        dz = (out[2] - z[:, None] * out[3]) / sd[:, None]
        return value, np.exp(norm.logpdf(z) - value)[:, None] * dz


def only(kind: str) -> type:
    class OneAcquisition(BOSearcher):
        def _maximise(self, gp, best, X, y):
            return super()._maximise(_Acquisition(gp, kind), best, X, y)

    return OneAcquisition


class Hedge(BOSearcher):
    """GP-Hedge (Hoffman, Brochu and de Freitas, UAI 2011): each step every acquisition of the portfolio
    (EI, PI, UCB) nominates its maximiser; one is picked with probability proportional to exp(eta * gain),
    and after the next fit each acquisition's gain grows by the posterior mean at its last nominee."""

    KINDS, ETA = ("ei", "pi", "ucb"), 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._nominees, self._gains = None, np.zeros(len(self.KINDS))

    def _maximise(self, gp, best, X, y):
        if self._nominees is not None:
            self._gains += gp.posterior(self._nominees)[0]
        ranked = [super(Hedge, self)._maximise(_Acquisition(gp, k), best, X, y) for k in self.KINDS]
        self._nominees = np.array([r[0] for r in ranked])
        logits = self.ETA * (self._gains - self._gains.max())
        p = np.exp(logits) / np.exp(logits).sum()
        return ranked[int(self._np_rng(9).choice(len(self.KINDS), p=p))]


def variant_class(name: str) -> type:
    if name == "default":
        return BOSearcher
    if name.startswith("thompson-"):
        return thompson_every(int(name.rpartition("-")[2]))
    if name == "fit-starts":
        return MoreFitStarts
    if name in ("pi", "ucb"):
        return only(name)
    if name == "hedge":
        return Hedge
    if name.startswith("laplace-"):
        return laplace_mixture(int(name.rpartition("-")[2]))
    raise SystemExit(f"unknown variant {name!r}; accepted: default, thompson-K, fit-starts, laplace-K, pi, ucb, hedge")


def basins(seeds: int, budget: int) -> None:
    """Per run of the shipped BOSearcher: the basins its trials reach, and the one its random start is nearer."""
    fn, bounds, minimum = FUNCTIONS["hartmann6"]
    n_init, predicted = BOSearcher(_space(), None).n_initial, 0
    for seed in range(seeds):
        points = []
        values = run_gml("gml-bo", lambda x: points.append(np.array(x)) or fn(x), bounds, budget, seed)[0]
        X, v = np.array(points), np.array(values)
        to_g, to_l = np.linalg.norm(X - GLOBAL_MIN, axis=1), np.linalg.norm(X - LOCAL_MIN, axis=1)
        first = [int(np.argmax(d < NEAR)) + 1 if (d < NEAR).any() else None for d in (to_g, to_l)]
        start = int(np.argmin(v[:n_init]))
        found = v.min() <= STUCK_ABOVE
        predicted += found == (to_g[start] < to_l[start])
        print(f"seed {seed:2d}: best {v.min():.4f} ({'global' if found else 'stuck'}); first trial within {NEAR} of the "
              f"global / local minimum: {first[0] or '-'} / {first[1] or '-'}; best of the {n_init} random points "
              f"({v[start]:.2f}) is {to_g[start]:.2f} / {to_l[start]:.2f} from them", flush=True)
    print(f"the basin the best random point is nearer predicts the outcome in {predicted} of {seeds} runs")


def _space():
    from gml_hpo.space import Dim, SearchSpace

    return SearchSpace([Dim(f"x{i}", "Real", 0.0, 1.0) for i in range(6)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["default", "thompson-3", "thompson-4", "fit-starts"])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--basins", action="store_true", help="trace the shipped BOSearcher's runs (see above)")
    args = ap.parse_args()
    if args.basins:
        return basins(args.seeds, args.budget)
    fn, bounds, minimum = FUNCTIONS["hartmann6"]
    for name in args.variants:
        cls = variant_class(name)
        runs = [run_gml("gml-bo", fn, bounds, args.budget, s, searcher_class=cls)[0] for s in range(args.seeds)]
        r25 = [log_regret(v, 25, minimum) for v in runs]
        r50 = [log_regret(v, args.budget, minimum) for v in runs]
        stuck = sum(min(v) > STUCK_ABOVE for v in runs)
        print(f"hartmann6 {name:12s} @25 {statistics.mean(r25):+.2f}  @{args.budget} {statistics.mean(r50):+.2f}  "
              f"stuck {stuck}/{len(runs)}  seeds 0-9 @{args.budget} {statistics.mean(r50[:10]):+.2f}", flush=True)


if __name__ == "__main__":
    main()
