"""Numeric encoding of a search space for model-based searchers (GP-BO, TPE).

Real and Int arguments become one column in [0, 1] (log scale with ``log: true``; finite
ordered values are rounded to the nearest value when decoded); Categorical, Nested and
File arguments become one-hot blocks (decoded by the largest entry).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..space import SearchSpace

Params = dict[str, Any]


class Encoding:
    def __init__(self, space: SearchSpace):
        self.space = space
        self.slices: list[slice] = []
        col = 0
        for d in space.dims:
            width = 1 if d.ordered else len(d.values)
            self.slices.append(slice(col, col + width))
            col += width
        self.width = col

    def encode(self, params: Params) -> np.ndarray:
        x = np.zeros(self.width)
        for d, s in zip(self.space.dims, self.slices):
            if d.ordered:
                x[s.start] = d.to_unit(params[d.name])
            else:
                x[s.start + d.index(params[d.name])] = 1.0
        return x

    def encode_all(self, rows: list[Params]) -> np.ndarray:
        return np.array([self.encode(p) for p in rows]).reshape(len(rows), self.width)

    def decode(self, x: np.ndarray) -> Params:
        out = {}
        for d, s in zip(self.space.dims, self.slices):
            out[d.name] = d.from_unit(x[s.start]) if d.ordered else d.values[int(np.argmax(x[s]))]
        return out

    def round(self, X: np.ndarray) -> np.ndarray:
        """Each row moved to the point it decodes to (what a trial would really run)."""
        return np.array([self.encode(self.decode(x)) for x in X]).reshape(X.shape)

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform points in the encoded space (one-hot blocks at a random category)."""
        X = rng.random((n, self.width))
        for d, s in zip(self.space.dims, self.slices):
            if not d.ordered:
                X[:, s] = np.eye(len(d.values))[rng.integers(len(d.values), size=n)]
        return X

    def unit_to_params(self, u: np.ndarray) -> Params:
        """Decode one point of the unit cube with one coordinate per argument (Sobol designs)."""
        out = {}
        for d, v in zip(self.space.dims, u):
            out[d.name] = d.from_unit(v) if d.ordered else d.values[min(int(v * len(d.values)), len(d.values) - 1)]
        return out


def sobol_params(enc: Encoding, seed: int | None, n: int, k: int) -> Params:
    """Point ``k`` of a scrambled Sobol design of ``n`` points (one coordinate per argument)."""
    import warnings

    from scipy.stats import qmc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a length that is not a power of 2
        pts = qmc.Sobol(len(enc.space.dims), scramble=True, seed=seed or 0).random(n)
    return enc.unit_to_params(pts[k])
