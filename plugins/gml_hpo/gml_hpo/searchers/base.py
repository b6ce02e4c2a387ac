"""The searcher interface.

A searcher proposes parameter sets and learns from their rewards. The scheduler calls
``suggest(running)`` whenever a slot is free (``running``: params of trials still
running, so a searcher can avoid proposing them again) and ``observe(params, reward)``
when a trial ends (``reward`` None for a failed trial). ``exhausted`` turns True when
the searcher will never propose anything again (a finite space is used up).
After a scheduler restart, :meth:`restore` replays the task store's history.

Third parties register their own class through ``gml_register_searcher``; options given
in the task file's ``searcher`` section (beside the common keys) are structured into
``options_class``.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar, Sequence

from ..space import SearchSpace, params_key

Params = dict[str, Any]


class Searcher:
    options_class: ClassVar[type | None] = None

    def __init__(self, space: SearchSpace, options: Any = None, *, optimize_mode: str = "maximize",
                 seed: int | None = None):
        self.space = space
        self.options = options
        self.maximize = optimize_mode == "maximize"
        self.seed = seed
        self.rng = random.Random(seed)
        self.issued: set[str] = set()
        self.history: list[tuple[Params, float | None]] = []
        self.exhausted = False

    # -- configuration ---------------------------------------------------------------
    @classmethod
    def check_space(cls, space: SearchSpace, options: Any) -> list[tuple[str, str]]:
        """Problems ``(key_path, message)`` if this searcher cannot handle ``space``."""
        return []

    # -- the protocol ----------------------------------------------------------------
    def suggest(self, running: Sequence[Params] = ()) -> Params | None:
        """Next params to try, or None (check ``exhausted``: None may also mean 'not now')."""
        params = self._suggest(list(running))
        if params is not None:
            self.issued.add(params_key(params))
        return params

    def _suggest(self, running: list[Params]) -> Params | None:
        raise NotImplementedError

    def observe(self, params: Params, reward: float | None) -> None:
        """Result of a finished trial (``reward`` None when it failed)."""
        self.issued.add(params_key(params))
        self.history.append((params, reward))
        self._observe(params, reward)

    def _observe(self, params: Params, reward: float | None) -> None:
        """Hook for subclasses."""

    def restore(self, finished: Sequence[tuple[Params, float | None]], pending: Sequence[Params]) -> None:
        """Rebuild state after a restart from finished trials (in order) and unfinished ones."""
        for params, reward in finished:
            self.observe(params, reward)
        for params in pending:
            self.issued.add(params_key(params))
        self._after_restore()

    def _after_restore(self) -> None:
        self.rng = random.Random(None if self.seed is None else self.seed + 7919 * len(self.issued))

    # -- helpers ---------------------------------------------------------------------
    def score(self, reward: float) -> float:
        """Higher is better, whatever the optimize mode."""
        return reward if self.maximize else -reward

    def is_new(self, params: Params) -> bool:
        return params_key(params) not in self.issued

    def random_new(self, running: list[Params], tries: int = 200) -> Params | None:
        """A random point not issued before (finite spaces: none left means exhausted)."""
        taken = self.issued | {params_key(p) for p in running}
        if self.space.finite and len(taken) >= self.space.size:
            self.exhausted = True
            return None
        for _ in range(tries):
            params = self.space.sample(self.rng)
            if params_key(params) not in taken:
                return params
        if self.space.finite:  # nearly used up: pick among what is left
            left = [p for p in self.space.grid() if params_key(p) not in taken]
            if not left:
                self.exhausted = True
                return None
            return left[self.rng.randrange(len(left))]
        return self.space.sample(self.rng)
