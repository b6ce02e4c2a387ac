"""gml-hpo's own hooks: third parties register searchers, assessors, executors and trackers.

Added to the host by ``gml_add_hookspecs`` when gml-hpo loads; implement them in any plugin
with ``@hookimpl`` (``from gml_core.api import hookimpl``), exactly like the core's registrars.
"""

from __future__ import annotations

from gml_core.api import Register, hookspec


@hookspec
def gml_register_searcher(register: Register) -> None:
    """Register searchers (``gml_hpo.searchers.base.Searcher`` subclasses), named in ``searcher.type``."""


@hookspec
def gml_register_assessor(register: Register) -> None:
    """Register early-stopping assessors (``scheduler.assessor.type``)."""


@hookspec
def gml_register_executor(register: Register) -> None:
    """Register trial executors (local processes, Slurm, ...), named by ``scheduler.type``."""


@hookspec
def gml_register_tracker(register: Register) -> None:
    """Register experiment-tracking backends (the embedded store, MLflow, ...)."""
