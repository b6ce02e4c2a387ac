"""BOSearcher: Gaussian-process Bayesian optimisation with MAP hyper-parameters and log EI.

The first ``n_initial_points`` trials are random (default max(5, 2 * number of args)). After
that each suggestion warps the scores of the finished trials (failed ones count as the worst
value) with ``output_warping`` (:mod:`.warping`), fits the GP of :mod:`.gp` (Matern 5/2 ARD on
the encoded space, ``length_scale_prior`` on the length scales, Gamma priors on signal and
noise, MAP by L-BFGS-B warm-started from the previous fit) to them, then maximises log EI:
``n_candidates`` random points and Gaussian perturbations of the five best observations (three
scales) are scored, and L-BFGS-B (analytic gradients) runs from the best random one, the best
perturbed one and a roulette draw (probability proportional to EI) among the rest
(``n_restarts`` starts in all); candidates are compared after rounding to the values a
trial would really run (Int, finite Real, one-hot Categorical).

Trials still running (``parallel_size > 1``) are taken into account by ``pending``:
``believer`` (kriging believer: each running point is added with the posterior mean as
its value, so the posterior variance, hence EI, collapses around it), or a constant liar
(``liar_best`` / ``liar_mean`` / ``liar_worst``: the running points get that value and
the model is refitted).
"""

from __future__ import annotations

from typing import Literal, Optional, Union

import attrs
import numpy as np

from ..space import params_key
from .base import Params, Searcher
from .encoding import Encoding
from .gp import GP, LS_PRIORS
from .warping import WARPINGS, OutputWarp


def _legacy_warping(value: object) -> object:
    """``output_warping`` was a boolean before it named the warping: map the old values."""
    return ("yeo-johnson" if value else "none") if isinstance(value, bool) else value


@attrs.frozen(kw_only=True)
class BOOptions:
    # None: max(5, 2 * number of args) random points, then the GP (random, not Sobol: on Hartmann6
    # a scrambled Sobol design ended in the local minimum far more often, 10 seeds)
    n_initial_points: Optional[int] = None
    n_candidates: int = 2048
    n_restarts: int = 10
    pending: Literal["believer", "fantasies", "liar_best", "liar_mean", "liar_worst"] = "believer"
    n_fantasies: int = 16  # posterior samples at the running points (pending: fantasies)
    length_scale_prior: Literal["optuna", "hvarfner"] = "optuna"  # see gp.LS_PRIORS
    # see warping.py; true / false (this key's former type) still load, as "yeo-johnson" / "none"
    output_warping: Union[Literal["none", "yeo-johnson"], bool] = attrs.field(default="yeo-johnson",
                                                                              converter=_legacy_warping)

    def __attrs_post_init__(self):
        from gml_core.api import ConfigError
        problems = []
        if self.n_initial_points is not None and (not isinstance(self.n_initial_points, int)
                                                  or self.n_initial_points < 1):
            problems.append(("searcher.n_initial_points",
                             f"must be an integer >= 1 or null (max(5, 2 * args)), got {self.n_initial_points!r}"))
        for name in ("n_candidates", "n_restarts", "n_fantasies"):
            if getattr(self, name) < 1:
                problems.append((f"searcher.{name}", f"must be >= 1, got {getattr(self, name)}"))
        if self.length_scale_prior not in LS_PRIORS:
            problems.append(("searcher.length_scale_prior",
                             f"expected one of {', '.join(LS_PRIORS)}, got {self.length_scale_prior!r}"))
        if self.output_warping not in WARPINGS:
            problems.append(("searcher.output_warping",
                             f"expected one of {', '.join(WARPINGS)}, got {self.output_warping!r}"))
        if problems:
            raise ConfigError(problems)


class BOSearcher(Searcher):
    options_class = BOOptions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.options is None:
            self.options = BOOptions()
        self.enc = Encoding(self.space)
        self._theta: np.ndarray | None = None  # last MAP fit (warm start)

    @property
    def n_initial(self) -> int:
        n = self.options.n_initial_points
        return n if n is not None else max(5, 2 * len(self.space.dims))

    def _np_rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed if self.seed is not None else 0, len(self.issued), salt])

    def _training_data(self) -> tuple[np.ndarray, np.ndarray]:
        ok = [self.score(r) for _, r in self.history if r is not None]
        worst = min(ok) if ok else 0.0
        rows = [(p, self.score(r) if r is not None else worst) for p, r in self.history]
        y = np.array([v for _, v in rows])
        y = OutputWarp(self.options.output_warping).fit(y).forward(y)
        return self.enc.encode_all([p for p, _ in rows]), y

    def _model(self, X: np.ndarray, y: np.ndarray, running: list[Params]) -> GP:
        gp = GP(X, y, self.options.length_scale_prior)
        starts = [self._theta] if self._theta is not None and len(self._theta) == len(gp.theta) else []
        gp.fit(starts)
        self._theta = gp.theta
        if not running:
            return gp
        Xp = self.enc.encode_all(running)
        mode = self.options.pending
        if mode == "believer":
            return gp.condition(Xp, gp.posterior(Xp)[0])
        if mode == "fantasies":
            return gp.fantasize(Xp, self.options.n_fantasies, self._np_rng(2))
        lie = {"liar_best": y.max(), "liar_mean": y.mean(), "liar_worst": y.min()}[mode]
        gp2 = GP(np.vstack([X, Xp]), np.concatenate([y, np.full(len(Xp), lie)]), gp.ls_prior)
        return gp2.fit([gp.theta])

    def _maximise(self, gp: GP, best: float, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Encoded points ranked by log EI (best first), already rounded to runnable values."""
        from scipy.optimize import minimize

        o, rng, w = self.options, self._np_rng(1), self.enc.width
        # candidates: uniform points, and Gaussian perturbations of the best observations at three
        # scales (the incumbent itself has ~zero variance, so L-BFGS cannot start from it)
        top = X[np.argsort(-y)[:5]]
        local = [np.clip(top[rng.integers(len(top), size=100)] + rng.normal(0.0, sc, (100, w)), 0.0, 1.0)
                 for sc in (0.01, 0.05, 0.2)]
        cands = np.vstack([self.enc.random(rng, o.n_candidates)] + local)
        values = gp.log_ei(cands, best)
        # starts: the best random and the best local candidate, and a roulette draw (probability
        # proportional to EI) among the others, so local searches cover several basins
        n_rand = o.n_candidates
        picks = [int(np.argmax(values[:n_rand])), n_rand + int(np.argmax(values[n_rand:]))]
        probs = np.exp(values - values.max())
        probs[picks] = 0.0
        n_roul = min(o.n_restarts - 2, int(np.count_nonzero(probs > 0)))
        if n_roul > 0:
            picks += list(rng.choice(len(cands), size=n_roul, replace=False, p=probs / probs.sum()))
        starts = cands[picks]

        def objective(x):
            v, g = gp.log_ei(x[None], best, grad=True)
            return -float(v[0]), -g[0]

        # one L-BFGS-B run per start: a batched run on the sum would stop on the sum's relative
        # tolerance, dominated by starts with very low log EI
        ends = [minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * w,
                         options={"maxiter": 100}).x for x0 in starts]
        pool = np.vstack([np.array(ends), starts, cands[np.argsort(-values)[:4 * o.n_restarts]]])
        pool = self.enc.round(np.clip(pool, 0.0, 1.0))
        return pool[np.argsort(-gp.log_ei(pool, best), kind="stable")]

    def _suggest(self, running: list[Params]) -> Params | None:
        if self.space.finite and len(self.issued | {params_key(p) for p in running}) >= self.space.size:
            self.exhausted = True
            return None
        if len(self.issued) < self.n_initial:
            return self.random_new(running)
        if sum(r is not None for _, r in self.history) < 2:  # nothing to model yet
            return self.random_new(running)
        from threadpoolctl import threadpool_limits

        X, y = self._training_data()
        with threadpool_limits(limits=1), np.errstate(all="ignore"):  # tiny matrices
            gp = self._model(X, y, running)
            ranked = self._maximise(gp, (y.max() - gp.y_mean) / gp.y_std, X, y)
        taken = self.issued | {params_key(p) for p in running}
        for x in ranked:
            params = self.enc.decode(x)
            if params_key(params) not in taken:
                return params
        return self.random_new(running)
