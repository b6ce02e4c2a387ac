"""``[algorithm.search]``: settings of ``gml nas search`` (evolution under FLOPs / params limits)."""

from __future__ import annotations

from typing import Optional

import attrs

from gml_core.api import ConfigError


def _count(value: Optional[str], key: str) -> Optional[float]:
    if value is None:
        return None
    from gml_core.api import parse_count
    try:
        out = parse_count(value)
    except ValueError:
        raise ConfigError([(f"algorithm.search.{key}", f"{value!r} is not a count; use e.g. \"300M\", \"1.5G\", "
                            "\"500K\"")]) from None
    if out <= 0:
        raise ConfigError([(f"algorithm.search.{key}", f"must be positive, got {value!r}")])
    return out


@attrs.frozen(kw_only=True)
class SearchConfig:
    """Evolution search: ``population_size`` candidates per generation, the ``top_k`` best survive.

    Each generation makes ``crossover_ratio`` of its children by crossover of two
    survivors and the rest by mutating one (each key re-sampled with
    ``mutation_prob``). Candidates must fit ``flops`` and ``params`` (upper limits
    such as ``"2M"``; FLOPs count a multiply-add as 2) and use at least ``min_ratio`` of
    each (of the largest subnet's cost when that is below the limit). Scores are top-1 accuracy
    on the search split (``val_batches``; -1 all; the validation split without ``search_split`` data) after BN re-calibration on
    ``calib_batches`` training batches.
    """

    flops: Optional[str] = None
    params: Optional[str] = None
    population_size: int = 20
    top_k: int = 5
    generations: int = 5
    mutation_prob: float = 0.3
    crossover_ratio: float = 0.5
    calib_batches: int = 10
    val_batches: int = -1
    max_sample_tries: int = 500
    seed: int = 0
    min_ratio: float = 0.85

    def __attrs_post_init__(self) -> None:
        problems = []
        for key in ("population_size", "top_k", "generations", "calib_batches", "max_sample_tries"):
            if getattr(self, key) < 1:
                problems.append((f"algorithm.search.{key}", f"must be at least 1, got {getattr(self, key)}"))
        if self.top_k > self.population_size:
            problems.append(("algorithm.search.top_k", f"{self.top_k} exceeds population_size {self.population_size}"))
        for key in ("mutation_prob", "crossover_ratio", "min_ratio"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                problems.append((f"algorithm.search.{key}", f"must be in [0, 1], got {getattr(self, key)}"))
        if problems:
            raise ConfigError(problems)
        _count(self.flops, "flops")
        _count(self.params, "params")

    @property
    def flops_limit(self) -> Optional[float]:
        return _count(self.flops, "flops")

    @property
    def params_limit(self) -> Optional[float]:
        return _count(self.params, "params")
