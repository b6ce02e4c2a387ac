"""Named registries of components, with provenance, lazy loading and clash records.

Plugins register either an object or an import path ``"package.module:attr"``; paths are
imported on first use so that listing plugins never imports torch. Two distributions
registering one name is a *clash*: it is recorded, not raised, so every other name keeps
working; only looking the clashing name up fails, naming both distributions.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterator

import attrs

from .errors import GmlUserError, did_you_mean, one_of
from .install_hints import install_hint


@attrs.frozen
class Entry:
    """One registered name: what it is and who gave it."""

    kind: str
    name: str
    target: Any
    plugin: str
    distribution: str

    def load(self) -> Any:
        """Return the registered object, importing ``"module:attr"`` paths on demand."""
        if isinstance(self.target, str) and ":" in self.target:
            module, _, attr = self.target.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        return self.target


class Registry:
    """All names of one component kind (``algorithm``, ``loss``, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._clashes: dict[str, list[Entry]] = {}

    def add(self, name: str, target: Any, plugin: str, distribution: str) -> None:
        if not isinstance(name, str) or not name:
            raise GmlUserError(f"plugin {plugin} ({distribution}) registered a {self.kind} with invalid name {name!r}")
        entry = Entry(self.kind, name, target, plugin, distribution)
        if name in self._entries:
            self._clashes.setdefault(name, [self._entries[name]]).append(entry)
        else:
            self._entries[name] = entry

    def drop_plugin(self, plugin: str) -> None:
        """Forget every name one plugin registered (it turned out broken)."""
        self._entries = {n: e for n, e in self._entries.items() if e.plugin != plugin}
        for name, entries in list(self._clashes.items()):
            left = [e for e in entries if e.plugin != plugin]
            if len(left) > 1:
                self._clashes[name] = left
            else:
                del self._clashes[name]
                if left:
                    self._entries[name] = left[0]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return sorted(self._entries)

    def clashes(self) -> dict[str, list[Entry]]:
        """Names registered more than once, with every registration."""
        return dict(self._clashes)

    def entry(self, name: str) -> Entry:
        if name in self._clashes:
            raise GmlUserError(self.clash_message(name))
        try:
            return self._entries[name]
        except KeyError:
            raise GmlUserError(self.unknown_message(name)) from None

    def get(self, name: str) -> Any:
        """The registered object for ``name``; a clear error when unknown or clashing."""
        return self.entry(name).load()

    def clash_message(self, name: str) -> str:
        who = " and by ".join(f"{e.distribution} (plugin {e.plugin})" for e in self._clashes[name])
        return (f"{self.kind} name '{name}' is registered by {who}; uninstall one of them or choose the "
                "plugins to load with GML_LOAD_PLUGINS")

    def unknown_message(self, name: str) -> str:
        msg = f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; installed: {one_of(self._entries)}"
        hint = install_hint(self.kind, name)
        return f"{msg}; {hint}" if hint else msg
