"""SkoptSearcher: Gaussian-process Bayesian optimisation through scikit-optimize's ask/tell.

Each suggestion builds a fresh ``skopt.Optimizer`` from the history (so a restart only
replays the store), tells it the finished trials and, for trials still running, a
constant liar (the best value seen: "cl_min"), then asks. The first
``n_initial_points`` come from a space-filling design (Sobol by default); after that
every suggestion fits a GP (Matern 5/2 with ARD, learned noise) and maximises the
acquisition with L-BFGS from many starts. Cost: roughly 0.1-1 s per suggestion on a
laptop CPU for up to ~100 trials (see docs/benchmarks/hpo.md), negligible next to a
training trial but too slow for a hot loop.
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
    n_points: int = 10000
    n_restarts_optimizer: int = 10
    gp_restarts: int = 4
    noise: Optional[float] = None  # None: learned (a WhiteKernel); a float: fixed noise variance


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
        from skopt.utils import cook_estimator
        from skopt.space import Space

        o = self.options
        n_init = o.n_initial_points if o.n_initial_points is not None else max(5, len(self._dims) + 3)
        seed = self.seed if self.seed is not None else 0
        estimator = cook_estimator("GP", space=Space(self._dims), random_state=seed, noise="gaussian" if o.noise is None else o.noise,
                                   n_restarts_optimizer=o.gp_restarts)
        return Optimizer(
            self._dims, base_estimator=estimator, n_initial_points=n_init,
            initial_point_generator=o.initial_point_generator, acq_func=o.acq_func,
            acq_optimizer=o.acq_optimizer, random_state=seed,
            acq_func_kwargs={"xi": o.xi, "kappa": o.kappa},
            acq_optimizer_kwargs={"n_points": o.n_points, "n_restarts_optimizer": o.n_restarts_optimizer},
        )

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
            params = self._decode(opt.ask())
        taken = self.issued | {params_key(p) for p in running}
        if params_key(params) in taken:
            return self.random_new(running)
        return params
