"""What every searchable backbone shares: its search space, the active arch and validation helpers."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

from torch import nn

from gml_core.api import ConfigError, did_you_mean, join_path, one_of

from ..space import SearchSpace, SpaceItem


def possible(node: Any) -> list[Any]:
    """Every value a search-space leaf (or fixed value) can take."""
    if isinstance(node, SpaceItem):
        choices = node.choices()
        return choices if choices is not None else [node.min_value(), node.max_value()]
    return [node]


def largest(node: Any) -> Any:
    return node.max_value() if isinstance(node, SpaceItem) else node


class Problems:
    """Collects ``(key_path, message)`` pairs and raises them together as one ``ConfigError``."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)

    def keys(self, table: Mapping[str, Any], known: Sequence[str], required: Iterable[str], path: str) -> None:
        for key in table:
            if key not in known:
                self.add(join_path(path, key), f"unknown search-space key{did_you_mean(key, known)}; "
                                               f"accepted: {one_of(known)}")
        for key in required:
            if key not in table:
                self.add(join_path(path, key), "required search-space key is missing")

    def values(self, node: Any, path: str, ok, expected: str) -> None:
        """Check every possible value of ``node`` with ``ok(value)``."""
        for v in possible(node):
            if not ok(v):
                self.add(path, f"{v!r} is not allowed; expected {expected}")
                return

    def length(self, seq: Any, n: int, path: str, what: str) -> bool:
        if not isinstance(seq, list):
            self.add(path, f"expected a list ({what}), got {seq!r}")
            return False
        if len(seq) != n:
            self.add(path, f"expected {n} entries ({what}), got {len(seq)}")
            return False
        return True


def positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def odd_int(v: Any) -> bool:
    return positive_int(v) and v % 2 == 1


class SearchableBackbone(nn.Module):
    """Base class: ``space`` (keys relative to the backbone), ``set_arch``, ``feat_dim``, ``export``."""

    space: SearchSpace

    def __init__(self) -> None:
        super().__init__()
        self.arch: Any = None
        self.drop_path_ratio = 0.0

    def set_arch(self, values: Optional[Mapping[str, Any]] = None) -> None:
        """Activate a subnet given by flat ``values`` (missing keys take their default)."""
        self.arch = self.space.resolve(values or {})
        self._apply_arch(self.arch)

    def _apply_arch(self, arch: Any) -> None:
        raise NotImplementedError

    def set_drop_path(self, ratio: float) -> None:
        """Stochastic-depth rate of the deepest residual block (linearly smaller before it)."""
        self.drop_path_ratio = ratio

    def residual_branch_norms(self) -> list[nn.Module]:
        """The last BatchNorm of every residual branch (zero-initialised by BigNAS)."""
        return []

    @property
    def feat_dim(self) -> int:
        raise NotImplementedError

    def export(self) -> nn.Module:
        raise NotImplementedError
