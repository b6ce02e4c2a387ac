"""Picking the best of many noisy scores without the winner's curse.

A candidate's score is its top-1 on a finite search split, so it carries binomial noise of
variance ``p (1 - p) / n``; the highest of many scores is, on average, one that the noise
lifted, and the chosen subnet then falls back on new data. The posterior mean of each
candidate's accuracy removes that bias: a Gaussian process over the architecture codes
(its prior: similar architectures score alike) with the known noise of every score, its
signal variance and length scales fitted by marginal likelihood (empirical Bayes). The
posterior mean shrinks a score that stands out from its neighbours by the share of it that
the noise can explain; a Bayesian estimate is not biased by selecting on the observed data.
scikit-learn's GaussianProcessRegressor does the fitting; the per-score noise enters as its
``alpha``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from .space import SearchSpace


def binomial_noise_var(top1: float, n_images: int) -> float:
    """Variance (in %^2) of a top-1 (%) measured on ``n_images`` images; the score is kept off 0 and 100."""
    p = min(max(top1 / 100.0, 0.5 / n_images), 1.0 - 0.5 / n_images)
    return 1e4 * p * (1.0 - p) / n_images


def architecture_codes(space: SearchSpace, subnets: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """One row per subnet: each key's position among its choices, scaled to [0, 1] (ordinal)."""
    rows = []
    for subnet in subnets:
        row = []
        for key, item in space.items.items():
            choices = item.choices()
            if choices is None:
                span = float(item.upper - item.lower) or 1.0  # a continuous Real
                row.append((float(subnet[key]) - item.lower) / span)
            else:
                row.append(choices.index(subnet[key]) / max(1, len(choices) - 1))
        rows.append(row)
    return np.asarray(rows, dtype=float).reshape(len(rows), len(space.items))


def posterior_scores(codes: np.ndarray, scores: Sequence[float], noise_var: Sequence[float],
                     seed: int = 0) -> np.ndarray:
    """Posterior mean accuracy of each scored candidate (same units as ``scores``).

    With fewer than 3 candidates, or scores that do not vary, the scores are returned as they are.
    """
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    y = np.asarray(scores, dtype=float)
    noise = np.asarray(noise_var, dtype=float)
    scale = float(y.std())
    if len(y) < 3 or scale == 0.0:
        return y.copy()
    mean = float(y.mean())
    z = (y - mean) / scale
    keep = codes.std(axis=0) > 0  # keys every candidate shares carry no information
    x = codes[:, keep] if keep.any() else np.zeros((len(y), 1))
    kernel = ConstantKernel(1.0, (1e-4, 1e2)) * RBF(np.ones(x.shape[1]), (1e-2, 1e2))
    gp = GaussianProcessRegressor(kernel, alpha=noise / scale ** 2, optimizer="fmin_l_bfgs_b",
                                  n_restarts_optimizer=2, random_state=seed)
    with warnings.catch_warnings():  # a key that does not matter drives its length scale to the bound: expected
        warnings.simplefilter("ignore")
        gp.fit(x, z)
    return mean + scale * gp.predict(x)


def shrunk_ranking(space: SearchSpace, subnets: Sequence[Mapping[str, Any]], scores: Sequence[float],
                   n_images: int, seed: int = 0) -> list[float]:
    """``posterior_scores`` of subnets scored as top-1 (%) on ``n_images`` images."""
    if n_images < 1 or not math.isfinite(sum(scores)):
        return list(scores)
    noise = [binomial_noise_var(s, n_images) for s in scores]
    return posterior_scores(architecture_codes(space, subnets), scores, noise, seed).tolist()


__all__ = ["architecture_codes", "binomial_noise_var", "posterior_scores", "shrunk_ranking"]
