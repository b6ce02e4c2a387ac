"""Named registries of components, with provenance and lazy loading.

Plugins register either an object or an import path ``"package.module:attr"``;
paths are imported on first use so that listing plugins never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterator

import attrs

from .errors import GmlUserError, did_you_mean, one_of

# Names a user of the original system may type, and the distribution that provides them.
KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "algorithm": {
        "TeacherStudentDistillation": "gml-kd", "ABTeacherStudentDistillation": "gml-kd",
        "BigNAS": "gml-nas", "SPOS": "gml-nas", "DMCP": "gml-prune",
        "MagnitudePruning": "gml-prune", "IAO": "gml-qat",
    },
    "searcher": {
        "GridSearcher": "gml-hpo", "BatchSearcher": "gml-hpo", "RandomSearcher": "gml-hpo",
        "SkoptSearcher": "gml-hpo", "EvolutionSearcher": "gml-hpo",
    },
    "mutator": {"StatelessMutator": "gml-nas", "DMCPMutator": "gml-prune"},
    "quantizer": {"TorchDefaultQuantizer": "gml-qat", "FxQuantizer": "gml-qat"},
}


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

    def add(self, name: str, target: Any, plugin: str, distribution: str) -> None:
        if not isinstance(name, str) or not name:
            raise GmlUserError(f"plugin {plugin} ({distribution}) registered a {self.kind} with invalid name {name!r}")
        old = self._entries.get(name)
        if old is not None:
            raise GmlUserError(
                f"duplicate {self.kind} name '{name}': registered by {old.distribution} "
                f"(plugin {old.plugin}) and by {distribution} (plugin {plugin})"
            )
        self._entries[name] = Entry(self.kind, name, target, plugin, distribution)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise GmlUserError(self.unknown_message(name)) from None

    def get(self, name: str) -> Any:
        """The registered object for ``name``; a clear error when unknown."""
        return self.entry(name).load()

    def unknown_message(self, name: str) -> str:
        msg = f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; installed: {one_of(self._entries)}"
        provider = KNOWN_PROVIDERS.get(self.kind, {}).get(name)
        if provider:
            msg += f"; '{name}' is provided by {provider}: pip install {provider}"
        return msg
