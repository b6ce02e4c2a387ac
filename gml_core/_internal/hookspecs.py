"""The hooks every gml technique needs (pluggy project name ``gml``).

Each hook is documented in docs/hooks.md; a test checks that every spec here appears there
with the same signature. A plugin that introduces a kind of component only it uses adds its
own ``gml_register_<kind>`` spec from ``gml_add_hookspecs`` (gml-hpo adds searchers,
assessors, executors and trackers; gml-qat quantizers; gml-kd connectors), so third parties
extend it the same way.

Registrar hooks receive a ``register(name, target)`` callback; the host records the plugin
and distribution that gave each name. ``target`` is the object or an import path
``"package.module:attr"`` loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import pluggy

if TYPE_CHECKING:  # annotations only: importing this module stays torch-free
    import click

    from .algorithms.base import BuildContext, GmlAlgorithm
    from .config.schema import AlgorithmConfig
    from .plugins import PluginHost

hookspec = pluggy.HookspecMarker("gml")
hookimpl = pluggy.HookimplMarker("gml")

#: the callback a registrar hook receives: ``register(name, target)``
Register = Callable[[str, Any], None]


@hookspec(historic=True)
def gml_add_hookspecs(host: PluginHost) -> None:
    """Add a plugin's own hookspecs: ``host.add_hookspecs(module)``.

    Called for every plugin as it is registered (historic), before any registry is built, so
    specs added here are known when other plugins' implementations are checked.
    """


@hookspec
def gml_register_algorithm(register: Register) -> None:
    """Register algorithm classes: ``GmlAlgorithm`` subclasses with a ``config_class``."""


@hookspec
def gml_register_mutator(register: Register) -> None:
    """Register mutators: objects that sample and set sub-architectures."""


@hookspec
def gml_register_loss(register: Register) -> None:
    """Register loss modules (``nn.Module`` classes or factories taking keyword arguments)."""


@hookspec
def gml_register_model(register: Register) -> None:
    """Register model, backbone, neck and head builders, addressed as ``gml.Name`` in configs."""


@hookspec
def gml_register_dataset(register: Register) -> None:
    """Register dataset factories returning a ``DataBundle``."""


@hookspec
def gml_register_scope(register: Register) -> None:
    """Register a scope resolver: ``register("torchvision", resolver)``.

    A resolver is ``resolver(kind, name) -> builder``: it maps a name inside its scope
    (``resnet18`` in ``torchvision.resnet18``) to a builder callable for registry ``kind``.
    """


@hookspec(firstresult=True)
def gml_build_algorithm(config: AlgorithmConfig, context: BuildContext) -> GmlAlgorithm | None:
    """Build the algorithm for a typed algorithm config; the first non-None result wins.

    The core's trylast implementation builds the registered class. An adapter may take over
    for its own model types by returning an algorithm.
    """


@hookspec
def gml_on_train_step(algorithm: GmlAlgorithm, iteration: int, epoch: int, losses: Mapping[str, float]) -> None:
    """Called after every optimisation step with the step's scalar losses (read only).

    ``iteration`` counts steps from 1; ``epoch`` is the 0-based epoch the step belongs to.
    """


@hookspec
def gml_on_evaluate(algorithm: GmlAlgorithm, iteration: int, epoch: int, metrics: Mapping[str, float]) -> None:
    """Called after every validation run with its scalar metrics (read only).

    ``iteration`` is the number of steps done; ``epoch`` is the number of epochs done (1-based).
    """


@hookspec
def gml_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``gml`` click group."""


@hookspec(firstresult=True)
def gml_translate_config(config: Mapping[str, Any], source: str) -> dict[str, Any] | None:
    """Rewrite a foreign config (e.g. an mmpretrain Python config) into gml's plain vocabulary.

    Return the new plain dict, or None to leave it to others. Must not mutate ``config``.
    """
