"""``ComponentSpec``: a ``{type = "scope.Name", ...args}`` table, kept typed."""

from __future__ import annotations

from typing import Any, Mapping

import attrs


@attrs.frozen
class ComponentSpec:
    """A component reference: ``type`` plus the remaining keys as constructor arguments."""

    type: str
    args: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def scope(self) -> str | None:
        return self.type.split(".", 1)[0] if "." in self.type else None

    @property
    def name(self) -> str:
        return self.type.split(".", 1)[1] if "." in self.type else self.type

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **_plain(self.args)}

    def with_args(self, **changes: Any) -> "ComponentSpec":
        return ComponentSpec(self.type, {**self.args, **changes})


def _plain(value: Any) -> Any:
    if isinstance(value, ComponentSpec):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
