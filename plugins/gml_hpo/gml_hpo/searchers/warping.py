"""Output warping for BOSearcher: a strictly increasing map of the observed scores, fitted to
them before each GP fit, so that skewed objectives (values spanning decades) look closer to
the Gaussian the stationary GP assumes.

``yeo-johnson``: the scores are standardised, then Yeo-Johnson's power transform with the
exponent that maximises the Gaussian likelihood (scipy's ``yeojohnson_normmax``); strictly
increasing, so the best trial stays the best (EI's incumbent is unchanged). (A Gaussian-copula warping, normal quantiles of the ranks, was
measured and dropped: near random search on Branin and Hartmann3, docs/benchmarks/hpo.md.)
"""

from __future__ import annotations

import warnings

import numpy as np

WARPINGS = ("none", "yeo-johnson")


class OutputWarp:
    """``fit(y)`` on the observed scores, then ``forward`` (``none``: the identity)."""

    def __init__(self, kind: str = "yeo-johnson"):
        if kind not in WARPINGS:
            raise ValueError(f"output_warping: expected one of {', '.join(WARPINGS)}, got {kind!r}")
        self.kind = kind

    def fit(self, y: np.ndarray) -> "OutputWarp":
        y = np.asarray(y, dtype=float)
        self.mean, self.std = float(y.mean()), float(y.std()) or 1.0
        self.lam = 1.0  # yeo-johnson with lam = 1 is the identity
        if self.kind == "yeo-johnson" and len(y) > 2 and np.ptp(y) > 0:
            from scipy.stats import yeojohnson, yeojohnson_normmax

            z = (y - self.mean) / self.std
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # overflow while searching the exponent on extreme data
                try:
                    lam = float(np.clip(yeojohnson_normmax(z), -3.0, 5.0))
                except (ValueError, FloatingPointError, OverflowError):
                    lam = 1.0
                if np.isfinite(lam) and np.all(np.isfinite(yeojohnson(z, lmbda=lam))):
                    self.lam = lam  # else stay at the identity
        return self

    def forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.kind == "yeo-johnson":
            from scipy.stats import yeojohnson

            return yeojohnson((y - self.mean) / self.std, lmbda=self.lam)
        return y
