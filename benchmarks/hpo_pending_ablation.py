"""BOSearcher with parallel slots: how the running trials enter the model, and what that costs per trial.

Each variant is a BOSearcher whose GP, when trials are running, treats them differently; every
variant runs the simulated asynchronous loop of hpo_searchers.py (exponential trial durations)
with 1, 2 and 4 slots on the same seeds, and prints mean log10 regret at 25 and 50 finished
trials and the paired difference N slots minus 1 slot (mean ± SE; positive: the slots cost
regret per trial).

* ``believer``: the shipped kriging believer (each running point added at the posterior mean,
  noise-free, so the variance and EI collapse around it);
* ``believer-incumbent``: the same, and EI measured against the best of the observed and the
  believed values (a running point predicted to improve raises the bar for the next one);
* ``soft-believer-K``: each running point added at the posterior mean with K times its posterior
  variance as extra noise (K = 1: the variance around it is halved, not removed; K = 1000: the
  running trials are as good as ignored, apart from never suggesting the same point twice);
* ``penalise`` / ``penalise-hard``: no believed values; EI of the GP of the finished trials is
  multiplied by a local penaliser around each running point x_j, whose radius is the distance
  the objective needs to climb from its predicted value there to the best one at the largest
  slope of the posterior mean, r_j = (M - mu(x_j) + sd(x_j)) / L (Gonzalez et al., AISTATS 2016,
  "Batch Bayesian optimization via local penalization": the soft penaliser
  Phi((L |x - x_j| - M + mu(x_j)) / sd(x_j)); Alvi et al., ICML 2019, asynchronous: the hard one,
  min(|x - x_j| / r_j, 1)). Near the optimum the radius shrinks, so the slots can all refine there.

    python benchmarks/hpo_pending_ablation.py --seeds 30 --functions hartmann3 hartmann6 \\
        --variants believer believer-incumbent soft-believer-1 soft-believer-1000
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
from scipy.linalg import cho_solve  # noqa: E402
from scipy.special import log_ndtr  # noqa: E402

from gml_hpo.searchers.bo import BOSearcher  # noqa: E402
from gml_hpo.searchers.gp import JITTER, matern52  # noqa: E402


class IncumbentBeliever(BOSearcher):
    """Kriging believer whose EI threshold is max(observed best, believed values of the running points)."""

    def _maximise(self, gp, best, X, y):
        believed = gp.y[len(y):]
        return super()._maximise(gp, max(best, float(believed.max())) if len(believed) else best, X, y)


def soft_believer(factor: float) -> type:
    class SoftBeliever(BOSearcher):
        """Running points at the posterior mean, with ``factor`` x their posterior variance as noise."""

        def _model(self, X, y, running):
            gp = super()._model(X, y, [])
            if not running:
                return gp
            Xp = self.enc.encode_all(running)
            mu, sd = gp.posterior(Xp)
            g = gp.condition(Xp, mu)
            K = matern52(g.X, g.X, g.ls, g.scale) + (g.noise + JITTER) * np.eye(len(g.X))
            K[len(X):, len(X):] += np.diag(factor * sd ** 2)
            g.L = np.linalg.cholesky(K)
            g.alpha = cho_solve((g.L, True), g.y)
            return g

    return SoftBeliever


class _Penalised:
    """log EI of a GP plus the log local penalisers of the running points ``Xp``."""

    def __init__(self, gp, Xp: np.ndarray, lipschitz: float, hard: bool):
        self.gp, self.Xp, self.L, self.hard = gp, Xp, lipschitz, hard
        self.mu, self.sd = gp.posterior(Xp)
        self.y_mean, self.y_std = gp.y_mean, gp.y_std

    def log_ei(self, Xs, best, grad=False):
        Xs = np.atleast_2d(Xs)
        out = self.gp.log_ei(Xs, best, grad)
        diff = Xs[:, None, :] - self.Xp[None]  # (m, p, d)
        dist = np.sqrt((diff ** 2).sum(-1)) + 1e-12
        if self.hard:
            radius = (np.abs(best - self.mu) + self.sd) / self.L
            inside = dist < radius
            log_phi = np.where(inside, np.log(dist / radius), 0.0)
            dlog = np.where(inside, 1.0 / dist ** 2, 0.0)  # d log phi / dx = dlog * diff
        else:
            z = (self.L * dist - best + self.mu) / self.sd
            log_phi = log_ndtr(z)
            dlog = np.exp(-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi) - log_phi) * self.L / (self.sd * dist)
        if not grad:
            return out + log_phi.sum(1)
        return out[0] + log_phi.sum(1), out[1] + np.einsum("mp,mpd->md", dlog, diff)


def penaliser(hard: bool) -> type:
    class Penalise(BOSearcher):
        """Local penalisation of the running points instead of believed values."""

        def _model(self, X, y, running):
            gp = super()._model(X, y, [])
            if not running:
                return gp
            probe = np.vstack([X, self.enc.random(self._np_rng(3), 1000)])
            lipschitz = float(np.linalg.norm(gp.posterior(probe, grad=True)[2], axis=1).max())
            return _Penalised(gp, self.enc.encode_all(running), max(lipschitz, 1e-7), hard)

    return Penalise


def variant_class(name: str) -> type:
    if name == "believer":
        return BOSearcher
    if name == "believer-incumbent":
        return IncumbentBeliever
    if name.startswith("soft-believer-"):
        return soft_believer(float(name.rpartition("-")[2]))
    if name in ("penalise", "penalise-hard"):
        return penaliser(name == "penalise-hard")
    raise SystemExit(f"unknown variant {name!r}; accepted: believer, believer-incumbent, soft-believer-K, "
                     "penalise, penalise-hard")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["believer", "believer-incumbent", "soft-believer-1"])
    ap.add_argument("--functions", nargs="+", default=["hartmann3", "hartmann6"], choices=list(FUNCTIONS))
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--budget", type=int, default=50)
    args = ap.parse_args()
    for fname in args.functions:
        fn, bounds, minimum = FUNCTIONS[fname]
        seeds = range(args.seeds)
        # 1 slot has no running trials, so it is the same run for every variant
        base = [run_gml("gml-bo", fn, bounds, args.budget, s)[0] for s in seeds]
        for name in args.variants:
            cls = variant_class(name)
            for slots in (2, 4):
                runs = [run_gml("gml-bo", fn, bounds, args.budget, s, slots, searcher_class=cls)[0] for s in seeds]
                cells = []
                for n in (25, 50):
                    r = [log_regret(v, n, minimum) for v in runs]
                    d = [a - log_regret(b, n, minimum) for a, b in zip(r, base)]
                    cells.append(f"@{n}: {statistics.mean(r):+.2f}  p{slots}-1 {statistics.mean(d):+.2f}"
                                 f"±{statistics.stdev(d) / math.sqrt(len(d)):.2f}")
                print(f"{fname:11s} {name:20s} {slots} slots  " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
