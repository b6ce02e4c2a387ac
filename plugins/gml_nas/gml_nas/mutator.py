"""``StatelessMutator``: samples subnets of a flat search space with no memory of past samples.

Sampling kinds: ``max``, ``min``, ``random`` (uniform per key), ``mutate`` (each
key re-sampled with a probability) and ``crossover`` (each key from either
parent). Under torch.distributed every rank must train the same subnet in a
step: ``broadcast`` sends rank 0's choice to all ranks (gloo or nccl).
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Optional

import torch

from .space import SearchSpace


def dist_ready() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class StatelessMutator:
    """Random, max, min, mutate and crossover sampling; ``seed`` makes the draws reproducible.

    Without ``seed`` the draws derive from torch's seed (``torch.initial_seed()``), which
    ``gml run`` sets from ``runtime.seed`` before building the algorithm: the same
    ``runtime.seed`` samples the same subnets.
    """

    def __init__(self, seed: Optional[int] = None):
        self.seed = int(torch.initial_seed()) if seed is None else int(seed)
        self.rng = random.Random(self.seed)
        self.space: Optional[SearchSpace] = None

    def prepare(self, space: SearchSpace) -> "StatelessMutator":
        """Bind to the flat search space of a supernet."""
        self.space = space
        return self

    def _space(self) -> SearchSpace:
        if self.space is None:
            raise RuntimeError("StatelessMutator.prepare(space) must be called first")
        return self.space

    def max_subnet(self) -> dict[str, Any]:
        return self._space().max()

    def min_subnet(self) -> dict[str, Any]:
        return self._space().min()

    def random_subnet(self) -> dict[str, Any]:
        return {k: item.sample(self.rng) for k, item in self._space().items.items()}

    def sample(self, kind: str = "random") -> dict[str, Any]:
        """One subnet of ``kind`` (``max``, ``min`` or ``random``), identical on every rank."""
        table = {"max": self.max_subnet, "min": self.min_subnet, "random": self.random_subnet}
        if kind not in table:
            raise ValueError(f"unknown sampling kind {kind!r}; accepted: max, min, random")
        subnet = table[kind]()
        return self.broadcast(subnet) if kind == "random" else subnet

    def sandwich(self, n: int) -> list[tuple[str, dict[str, Any]]]:
        """The sandwich rule: ``max``, ``n - 2`` random subnets, ``min`` (labelled by kind)."""
        if n < 2:
            raise ValueError(f"the sandwich rule needs at least 2 subnets, got {n}")
        randoms = [self.random_subnet() for _ in range(n - 2)]
        if randoms and dist_ready():
            randoms = self._broadcast_many(randoms)
        return [("max", self.max_subnet()), *[("random", r) for r in randoms], ("min", self.min_subnet())]

    def mutate(self, subnet: Mapping[str, Any], prob: float) -> dict[str, Any]:
        """Each key re-sampled with probability ``prob`` (not broadcast: search runs on one process)."""
        return {k: (item.sample(self.rng) if self.rng.random() < prob else subnet[k])
                for k, item in self._space().items.items()}

    def crossover(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """Each key taken from ``a`` or ``b`` with equal probability."""
        return {k: (a[k] if self.rng.random() < 0.5 else b[k]) for k in self._space().items}

    # -- distributed ------------------------------------------------------------------
    def broadcast(self, subnet: Mapping[str, Any]) -> dict[str, Any]:
        """Rank 0's ``subnet`` on every rank (a no-op without torch.distributed)."""
        if not dist_ready():
            return dict(subnet)
        return self._broadcast_many([subnet])[0]

    def _broadcast_many(self, subnets: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        import torch.distributed as dist

        space = self._space()
        codes = torch.tensor([space.encode(s) for s in subnets], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            codes = codes.cuda()
            dist.broadcast(codes, src=0)
            codes = codes.cpu()
        else:
            dist.broadcast(codes, src=0)
        return [space.decode(row.tolist()) for row in codes]
