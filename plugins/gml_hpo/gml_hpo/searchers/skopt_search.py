"""SkoptSearcher: Gaussian-process Bayesian optimisation through scikit-optimize's ask/tell.

Each suggestion builds a fresh ``skopt.Optimizer`` from the history (so a restart only
replays the store), tells it the finished trials and, for trials still running, a
constant liar (the best value seen: "cl_min"), then asks. The first
``n_initial_points`` come from a space-filling design (Sobol by default); after that
every suggestion fits skopt's GP (Matern 5/2 with ARD, learned noise; length scales kept
in ``length_scale_bounds``) and maximises expected improvement with L-BFGS, started from
skopt's best random candidates and (``local_search``) from points next to the best
observations. Cost: about 0.2-1 s per suggestion on a laptop CPU for up to ~100 trials
(docs/benchmarks/hpo.md), negligible next to a training trial but too slow for a hot loop.
"""

from __future__ import annotations

from typing import Literal, Optional

import attrs

from ..space import Dim, params_key
from .base import Params, Searcher


@attrs.frozen(kw_only=True)
class SkoptOptions:
    n_initial_points: Optional[int] = None  # default: max(5, dims + 3)
    initial_point_generator: Literal["random", "sobol", "halton", "hammersly", "lhs", "grid"] = "sobol"
    acq_func: Literal["EI", "PI", "LCB", "gp_hedge"] = "EI"
    acq_optimizer: Literal["lbfgs", "sampling"] = "lbfgs"
    xi: float = 0.01
    kappa: float = 1.96
    n_points: int = 2000
    n_restarts_optimizer: int = 5
    gp_restarts: int = 2
    noise: Optional[float] = None  # None: learned (a WhiteKernel); a float: fixed noise variance
    # Matern length scales on the unit cube; skopt's own default is [0.01, 100], whose long
    # end lets a GP fitted on few points call dimensions irrelevant and stop exploring them
    length_scale_bounds: list[float] = attrs.field(factory=lambda: [0.05, 2.0])
    local_search: bool = True  # also start the acquisition optimiser next to the best points

    def __attrs_post_init__(self):
        from gml_core.api import ConfigError
        problems = []
        b = self.length_scale_bounds
        if len(b) != 2 or not 0 < b[0] < b[1]:
            problems.append(("searcher.length_scale_bounds", f"expected [low, high] with 0 < low < high, got {b}"))
        if self.n_initial_points is not None and self.n_initial_points < 1:
            problems.append(("searcher.n_initial_points", f"must be >= 1, got {self.n_initial_points}"))
        for name in ("n_points", "n_restarts_optimizer"):
            if getattr(self, name) < 1:
                problems.append((f"searcher.{name}", f"must be >= 1, got {getattr(self, name)}"))
        if problems:
            raise ConfigError(problems)


class SkoptSearcher(Searcher):
    options_class = SkoptOptions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.options is None:
            self.options = SkoptOptions()
        self._dims = [self._skopt_dim(d) for d in self.space.dims]

    @staticmethod
    def _skopt_dim(d: Dim):
        from skopt.space import Categorical, Integer, Real

        if d.kind == "Real" and not d.finite:
            return Real(d.lower, d.upper, prior="log-uniform" if d.log else "uniform", name=d.name)
        if d.kind == "Int" and d.log and d.values == tuple(range(int(d.lower), int(d.upper) + 1)):
            return Integer(int(d.lower), int(d.upper), prior="log-uniform", name=d.name)
        if d.ordered:
            return Integer(0, len(d.values) - 1, name=d.name)
        return Categorical(list(range(len(d.values))), name=d.name, transform="onehot")

    def _encode(self, params: Params) -> list:
        out = []
        for d, sd in zip(self.space.dims, self._dims):
            v = params[d.name]
            if d.kind == "Real" and not d.finite:
                out.append(float(v))
            elif getattr(sd, "prior", "") == "log-uniform" and d.kind == "Int":
                out.append(int(v))
            else:
                out.append(d.index(v))
        return out

    def _decode(self, x: list) -> Params:
        out = {}
        for d, sd, v in zip(self.space.dims, self._dims, x):
            if d.kind == "Real" and not d.finite:
                out[d.name] = float(v)
            elif getattr(sd, "prior", "") == "log-uniform" and d.kind == "Int":
                out[d.name] = int(v)
            else:
                out[d.name] = d.values[int(v)]
        return out

    def _optimizer(self):
        from skopt import Optimizer
        from skopt.space import Space
        from skopt.utils import cook_estimator

        o = self.options
        n_init = o.n_initial_points if o.n_initial_points is not None else max(5, len(self._dims) + 3)
        seed = self.seed if self.seed is not None else 0
        estimator = cook_estimator("GP", space=Space(self._dims), random_state=seed,
                                   noise="gaussian" if o.noise is None else o.noise,
                                   n_restarts_optimizer=o.gp_restarts)
        lo, hi = o.length_scale_bounds
        if hasattr(estimator.kernel, "k2") and hasattr(estimator.kernel.k2, "length_scale_bounds"):
            estimator.kernel.k2.length_scale_bounds = (lo, hi)  # ConstantKernel * Matern
        return Optimizer(
            self._dims, base_estimator=estimator, n_initial_points=n_init,
            initial_point_generator=o.initial_point_generator, acq_func=o.acq_func,
            acq_optimizer=o.acq_optimizer, random_state=seed,
            acq_func_kwargs={"xi": o.xi, "kappa": o.kappa},
            acq_optimizer_kwargs={"n_points": o.n_points, "n_restarts_optimizer": o.n_restarts_optimizer},
        )

    def _local_search(self, opt, proposed: list) -> list:
        """Maximise skopt's acquisition (on skopt's fitted GP) from more starting points.

        scikit-optimize starts L-BFGS only from the best of ``n_points`` uniform random
        candidates, which in several dimensions rarely fall next to the incumbent, so the
        search stalls near good points. Here Gaussian perturbations of the five best
        observations (three scales) and skopt's own proposal compete too; L-BFGS then runs
        from the best few candidates. Returns the point with the best acquisition value.
        """
        import numpy as np
        from scipy.optimize import fmin_l_bfgs_b
        from skopt.acquisition import _gaussian_acquisition, gaussian_acquisition_1D

        o = self.options
        est, space = opt.models[-1], opt.space
        bounds = np.array(space.transformed_bounds, dtype=float)
        lo, hi = bounds[:, 0], bounds[:, 1]
        rng = np.random.default_rng((self.seed or 0) * 7919 + len(opt.yi))
        yi = np.asarray(opt.yi, dtype=float)
        Xt = space.transform(opt.Xi)
        best = Xt[np.argsort(yi)[:5]]
        own = space.transform([proposed])
        cands = [own]
        for scale in (0.02, 0.08, 0.25):
            idx = rng.integers(len(best), size=200)
            cands.append(np.clip(best[idx] + rng.normal(0.0, scale, (200, len(lo))) * (hi - lo), lo, hi))
        cands = np.vstack(cands)
        kwargs = {"xi": o.xi, "kappa": o.kappa}
        values = _gaussian_acquisition(cands, est, y_opt=yi.min(), acq_func=o.acq_func, acq_func_kwargs=kwargs)
        best_x, best_v = own[0], float(values[0])
        for x0 in cands[np.argsort(values)[:4]]:
            x, v, _ = fmin_l_bfgs_b(gaussian_acquisition_1D, x0, args=(est, yi.min(), o.acq_func, kwargs),
                                    bounds=bounds, approx_grad=False, maxiter=50)
            if float(v) < best_v:
                best_x, best_v = np.clip(x, lo, hi), float(v)
        return space.inverse_transform(best_x.reshape(1, -1))[0]

    def _suggest(self, running: list[Params]) -> Params | None:
        import warnings

        X, y = [], []
        losses = [-self.score(r) for _, r in self.history if r is not None]
        worst = max(losses) if losses else None
        for params, reward in self.history:
            if reward is not None:
                X.append(self._encode(params))
                y.append(-self.score(reward))
            elif worst is not None:  # a failed trial counts as the worst result so far
                X.append(self._encode(params))
                y.append(worst)
        liar = min(y) if y else 0.0
        for params in running:
            X.append(self._encode(params))
            y.append(liar)
        from threadpoolctl import threadpool_limits

        # tiny matrices: BLAS threads only add contention (several times slower on a busy machine)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            opt = self._optimizer()
            if X:
                opt.tell(X, y)
            x = opt.ask()
            if self.options.local_search and opt.models and self.options.acq_func != "gp_hedge":
                x = self._local_search(opt, x)
            params = self._decode(x)
        taken = self.issued | {params_key(p) for p in running}
        if params_key(params) in taken:
            return self.random_new(running)
        return params
