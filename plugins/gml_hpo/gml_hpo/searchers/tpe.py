"""TPESearcher: multivariate tree-structured Parzen estimator (Bergstra et al. 2011; the
multivariate kernel of Falkner et al. 2018 and Watanabe 2023).

Finished trials are split by score: the best ``n_good = clip(ceil(gamma * n), 1, max_good)``
form the "good" group, the rest (plus trials still running: a constant liar, so parallel
slots are pushed away from each other) the "bad" group. Each group gets a Parzen density
on the encoded space, a uniform-weight mixture of one product kernel per observation and
a broad prior component: truncated Gaussians on [0, 1] for Real/Int and an
Aitchison-Aitken kernel for choices (its own category with probability ``1 - eps``, the
others share ``eps``). Kernel bandwidths (``bandwidth_rule``):

- ``neighbours`` (default): per observation and argument, the larger gap to its sorted
  neighbours in the group, one-sided at the ends (the original TPE's rule, also Optuna's);
- ``scott``: ``1.06 * std * n^(-1/(D+4))`` per argument (Scott's rule for D dimensions);
- ``fixed``: ``bandwidth * n^(-1/(D+4))``;

always at least ``1 / (n + 1)`` ("magic clip") and ``min_bandwidth``, at most 1.
``n_candidates`` points are drawn from the good density and the one with the largest
``log l(x) - log g(x)`` is proposed (``multivariate = false``: each argument takes its value
from the candidate with the best ratio of its own marginals, the univariate TPE). The first
``n_initial_points`` trials come from a scrambled Sobol design (or uniform random points).
The defaults were chosen by the ablation in docs/benchmarks/hpo.md (60 seeds, four functions).

numpy only: a suggestion costs about a millisecond at 100 observations
(benchmarks/hpo_searchers.py reports it).
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import numpy as np
from scipy.special import logsumexp, ndtr, ndtri

from ..space import params_key
from .base import Params, Searcher
from .encoding import Encoding, sobol_params


@attrs.frozen(kw_only=True)
class TPEOptions:
    n_initial_points: int = 10
    gamma: float = 0.15
    max_good: int = 25
    n_candidates: int = 32
    bandwidth_rule: Literal["neighbours", "scott", "fixed"] = "neighbours"
    bandwidth: float = 0.2  # the "fixed" rule's factor
    min_bandwidth: float = 0.02
    prior_weight: float = 1.0
    categorical_eps: float = 0.2
    multivariate: bool = True
    initial_design: Literal["sobol", "random"] = "sobol"

    def __attrs_post_init__(self):
        from gml_core.api import ConfigError
        problems = []
        for name in ("n_initial_points", "max_good", "n_candidates"):
            if getattr(self, name) < 1:
                problems.append((f"searcher.{name}", f"must be >= 1, got {getattr(self, name)}"))
        if not 0.0 < self.gamma < 1.0:
            problems.append(("searcher.gamma", f"must be in (0, 1), got {self.gamma}"))
        for name in ("bandwidth", "min_bandwidth", "prior_weight"):
            if getattr(self, name) <= 0:
                problems.append((f"searcher.{name}", f"must be > 0, got {getattr(self, name)}"))
        if not 0.0 <= self.categorical_eps < 1.0:
            problems.append(("searcher.categorical_eps", f"must be in [0, 1), got {self.categorical_eps}"))
        if problems:
            raise ConfigError(problems)


class Parzen:
    """Mixture of product kernels centred on encoded observations, plus a prior component."""

    def __init__(self, enc: Encoding, centres: np.ndarray, o: TPEOptions, n_dims_total: int):
        self.enc = enc
        n = len(centres)
        ordered = [s.start for d, s in zip(enc.space.dims, enc.slices) if d.ordered]
        self.ord = np.array(ordered, dtype=int)
        self.cat = [(s, len(d.values)) for d, s in zip(enc.space.dims, enc.slices) if not d.ordered]
        rate = max(n, 1) ** (-1.0 / (n_dims_total + 4))
        # at least 1 / (n + 1) ("magic clip", Watanabe 2023): a tight group cannot collapse
        floor = max(o.min_bandwidth, 1.0 / min(100.0, n + 1.0))
        # component 0 is the prior: centre 0.5, bandwidth 1 (nearly flat on [0, 1]); choices uniform
        mu = np.full((n + 1, len(self.ord)), 0.5)
        mu[1:] = centres[:, self.ord]
        self.mu = mu
        if o.bandwidth_rule == "neighbours":
            self.sigma = np.ones_like(mu)
            self.sigma[1:] = np.clip(_neighbour_gaps(mu[1:]), floor, 1.0)
        else:
            if o.bandwidth_rule == "scott":  # per-dimension spread of the group
                spread = centres[:, ordered].std(0) if n > 1 else np.full(len(ordered), 0.5)
                bw = np.maximum(1.06 * spread * rate, floor)
            else:
                bw = np.full(len(ordered), max(o.bandwidth * rate, floor))
            self.sigma = np.tile(bw, (n + 1, 1))
        self.sigma[0] = 1.0
        self.log_w = np.log(np.concatenate([[o.prior_weight], np.ones(n)]) / (o.prior_weight + n))
        self.lo = (0.0 - mu) / self.sigma
        self.hi = (1.0 - mu) / self.sigma
        self.log_z = np.log(np.maximum(ndtr(self.hi) - ndtr(self.lo), 1e-300))
        self.cat_probs = []  # per choice dim: (n + 1, n_values) probabilities
        for s, k in self.cat:
            p = np.full((n + 1, k), 1.0 / k)
            if k > 1 and n:
                onehot = centres[:, s]
                p[1:] = onehot * (1.0 - o.categorical_eps) + (1.0 - onehot) * (o.categorical_eps / (k - 1))
            self.cat_probs.append(p)

    def log_pdf(self, X: np.ndarray) -> np.ndarray:
        """log density of each row of ``X`` (encoded points)."""
        comp = np.tile(self.log_w, (len(X), 1))  # m, n + 1
        if len(self.ord):
            comp += self._log_kernel(X).sum(-1)
        for (s, _), p in zip(self.cat, self.cat_probs):
            comp += np.log(X[:, s] @ p.T)
        return logsumexp(comp, axis=1)

    def log_marginals(self, X: np.ndarray) -> np.ndarray:
        """(m, number of args) log densities of each arg's marginal (the univariate TPE)."""
        cols = []
        k = self._log_kernel(X) if len(self.ord) else None
        i_ord, i_cat = 0, 0
        for d in self.enc.space.dims:
            if d.ordered:
                cols.append(logsumexp(self.log_w[None] + k[:, :, i_ord], axis=1))
                i_ord += 1
            else:
                (s, _), p = self.cat[i_cat], self.cat_probs[i_cat]
                cols.append(logsumexp(self.log_w[None] + np.log(X[:, s] @ p.T), axis=1))
                i_cat += 1
        return np.stack(cols, 1)

    def _log_kernel(self, X: np.ndarray) -> np.ndarray:
        """(m, n + 1, ordered args) log truncated-Gaussian kernel values."""
        z = (X[:, None, self.ord] - self.mu[None]) / self.sigma[None]
        return -0.5 * z ** 2 - 0.5 * math.log(2 * math.pi) - np.log(self.sigma)[None] - self.log_z[None]

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        which = rng.choice(len(self.log_w), size=m, p=np.exp(self.log_w))
        X = np.zeros((m, self.enc.width))
        if len(self.ord):
            lo, hi = ndtr(self.lo[which]), ndtr(self.hi[which])
            u = lo + rng.random(lo.shape) * (hi - lo)
            X[:, self.ord] = np.clip(self.mu[which] + self.sigma[which] * ndtri(np.clip(u, 1e-300, 1 - 1e-16)),
                                     0.0, 1.0)
        for (s, k), p in zip(self.cat, self.cat_probs):
            cum = p[which].cumsum(1)
            idx = np.minimum((rng.random((m, 1)) > cum).sum(1), k - 1)
            X[:, s] = np.eye(k)[idx]
        return X


def _neighbour_gaps(mu: np.ndarray) -> np.ndarray:
    """Per centre and column, the larger distance to its sorted neighbours (one-sided at the
    ends): the per-observation bandwidth of the original univariate TPE."""
    if len(mu) < 2:
        return np.ones_like(mu)
    order = np.argsort(mu, axis=0, kind="stable")
    srt = np.take_along_axis(mu, order, 0)
    gaps = np.diff(srt, axis=0)
    wide = np.maximum(np.vstack([gaps[:1], gaps]), np.vstack([gaps, gaps[-1:]]))
    out = np.empty_like(mu)
    np.put_along_axis(out, order, wide, 0)
    return out


class TPESearcher(Searcher):
    options_class = TPEOptions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.options is None:
            self.options = TPEOptions()
        self.enc = Encoding(self.space)
        self._encoded: list[np.ndarray] = []  # history, encoded once

    def _observe(self, params: Params, reward: float | None) -> None:
        self._encoded.append(self.enc.encode(params))

    def split(self, running: list[Params]) -> tuple[np.ndarray, np.ndarray]:
        """Encoded good and bad groups (failed trials and running ones are bad)."""
        o = self.options
        ok = sorted(((self.score(r), i) for i, (_, r) in enumerate(self.history) if r is not None), reverse=True)
        n_good = min(max(1, math.ceil(o.gamma * len(ok))), o.max_good, len(ok))
        good_idx = {i for _, i in ok[:n_good]}
        good = [x for i, x in enumerate(self._encoded) if i in good_idx]
        bad = [x for i, x in enumerate(self._encoded) if i not in good_idx] + [self.enc.encode(p) for p in running]
        w = self.enc.width
        return np.array(good).reshape(-1, w), np.array(bad).reshape(-1, w)

    def _suggest(self, running: list[Params]) -> Params | None:
        o = self.options
        taken = self.issued | {params_key(p) for p in running}
        if self.space.finite and len(taken) >= self.space.size:
            self.exhausted = True
            return None
        if len(self.issued) < o.n_initial_points:
            if o.initial_design == "random":
                return self.random_new(running)
            params = sobol_params(self.enc, self.seed, o.n_initial_points, len(self.issued))
            return params if params_key(params) not in taken else self.random_new(running)
        if not any(r is not None for _, r in self.history):
            return self.random_new(running)
        good, bad = self.split(running)
        n_dims = len(self.space.dims)
        lg, lb = Parzen(self.enc, good, o, n_dims), Parzen(self.enc, bad, o, n_dims)
        rng = np.random.default_rng([self.seed if self.seed is not None else 0, len(self.issued)])
        cands = lg.sample(rng, o.n_candidates)
        if not o.multivariate:  # each arg on its own: the best of its candidates by its marginal ratio
            best = np.argmax(lg.log_marginals(cands) - lb.log_marginals(cands), 0)
            x = np.concatenate([cands[best[j], sl] for j, sl in enumerate(self.enc.slices)])
            params = self.enc.decode(x)
            return params if params_key(params) not in taken else self.random_new(running)
        ratio = lg.log_pdf(cands) - lb.log_pdf(cands)
        for i in np.argsort(-ratio, kind="stable"):
            params = self.enc.decode(cands[i])
            if params_key(params) not in taken:
                return params
        return self.random_new(running)

