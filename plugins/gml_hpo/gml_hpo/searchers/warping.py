"""Output warpings for BOSearcher: strictly increasing maps of the observed scores, fitted to
the scores before each GP fit, so that skewed objectives (a few very bad trials, values
spanning decades) look closer to the Gaussian the stationary GP assumes.

- ``yeo-johnson``: the scores are standardised, then Yeo-Johnson's power transform with the
  exponent that maximises the Gaussian likelihood (scipy's ``yeojohnson_normmax``); strictly
  increasing and invertible in closed form on its image.
- ``copula``: the Gaussian copula of Salinas et al. (2020): a score of rank r among n becomes
  the normal quantile of (r + 1/2) / n (ties share their mean rank); increasing, and invertible
  between the observed scores (piecewise linear).

Being increasing, both keep the best trial the best, so EI's incumbent is unchanged.
"""

from __future__ import annotations

import numpy as np

WARPINGS = ("none", "yeo-johnson", "copula")


def yeo_johnson(x: np.ndarray, lam: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = np.log1p(x[pos]) if abs(lam) < 1e-12 else ((x[pos] + 1.0) ** lam - 1.0) / lam
    out[~pos] = (-np.log1p(-x[~pos]) if abs(lam - 2.0) < 1e-12
                 else -((1.0 - x[~pos]) ** (2.0 - lam) - 1.0) / (2.0 - lam))
    return out


def yeo_johnson_inverse(w: np.ndarray, lam: float) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    out = np.empty_like(w)
    pos = w >= 0
    out[pos] = np.expm1(w[pos]) if abs(lam) < 1e-12 else (lam * w[pos] + 1.0) ** (1.0 / lam) - 1.0
    out[~pos] = (-np.expm1(-w[~pos]) if abs(lam - 2.0) < 1e-12
                 else 1.0 - (1.0 - (2.0 - lam) * w[~pos]) ** (1.0 / (2.0 - lam)))
    return out


class OutputWarp:
    """``fit(y)`` on the observed scores, then ``forward`` / ``inverse`` (``none``: identity)."""

    def __init__(self, kind: str = "yeo-johnson"):
        if kind not in WARPINGS:
            raise ValueError(f"output_warping: expected one of {', '.join(WARPINGS)}, got {kind!r}")
        self.kind = kind

    def fit(self, y: np.ndarray) -> "OutputWarp":
        y = np.asarray(y, dtype=float)
        self.mean, self.std = float(y.mean()), float(y.std()) or 1.0
        self.lam = 1.0  # yeo-johnson with lam = 1 is the identity
        if self.kind == "yeo-johnson" and len(y) > 2 and np.ptp(y) > 0:
            from scipy.stats import yeojohnson_normmax

            z = (y - self.mean) / self.std
            try:
                self.lam = float(np.clip(yeojohnson_normmax(z), -3.0, 5.0))
            except (ValueError, FloatingPointError, OverflowError):
                self.lam = 1.0
        if self.kind == "copula":
            from scipy.special import ndtri
            from scipy.stats import rankdata

            self.knots_y = np.unique(y)
            ranks = rankdata(y)  # 1..n, ties averaged
            w = ndtri((ranks - 0.5) / len(y))
            self.knots_w = np.array([w[y == v][0] for v in self.knots_y])
        return self

    def forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.kind == "yeo-johnson":
            return yeo_johnson((y - self.mean) / self.std, self.lam)
        if self.kind == "copula":
            return np.interp(y, self.knots_y, self.knots_w)
        return y

    def inverse(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        if self.kind == "yeo-johnson":
            return yeo_johnson_inverse(w, self.lam) * self.std + self.mean
        if self.kind == "copula":
            return np.interp(w, self.knots_w, self.knots_y)
        return w
