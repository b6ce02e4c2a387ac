"""The hooks of the ``gml`` plugin host (pluggy project name ``gml``).

Every hook is documented in docs/hooks.md; a test checks that each spec here has
an entry there. Registrar hooks receive a ``register(name, obj)`` callback; the
host records which plugin and distribution gave each name.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("gml")
hookimpl = pluggy.HookimplMarker("gml")


@hookspec
def gml_register_algorithm(register):
    """Register algorithm classes (subclasses of ``gml_core.algorithms.GmlAlgorithm``)."""


@hookspec
def gml_register_mutator(register):
    """Register mutators: objects that sample and set sub-architectures."""


@hookspec
def gml_register_loss(register):
    """Register loss modules (``nn.Module`` classes or factories taking keyword arguments)."""


@hookspec
def gml_register_connector(register):
    """Register feature connectors (modules mapping student/teacher features before a loss)."""


@hookspec
def gml_register_model(register):
    """Register model, backbone, neck and head builders, addressed as ``gml.Name`` in configs."""


@hookspec
def gml_register_dataset(register):
    """Register dataset factories returning a ``gml_core.data.DataBundle``."""


@hookspec
def gml_register_quantizer(register):
    """Register quantizers used by quantization-aware training algorithms."""


@hookspec
def gml_register_searcher(register):
    """Register hyper-parameter / architecture searchers."""


@hookspec
def gml_register_assessor(register):
    """Register early-stopping assessors for hyper-parameter search."""


@hookspec
def gml_register_executor(register):
    """Register trial executors (local processes, Slurm, ...)."""


@hookspec
def gml_register_tracker(register):
    """Register experiment-tracking backends (embedded store, MLflow, ...)."""


@hookspec
def gml_register_scope(register):
    """Register a component scope resolver: ``register("torchvision", resolver)``.

    A resolver is a ``gml_core.components.ScopeResolver``: it maps a name inside
    its scope (``resnet18`` in ``torchvision.resnet18``) to a builder callable.
    """


@hookspec(firstresult=True)
def gml_build_algorithm(config, context):
    """Build the algorithm for a typed algorithm config; first non-None result wins.

    The core's trylast implementation builds the registered class. An adapter may
    take over for its own model types by returning an algorithm.
    """


@hookspec
def gml_on_train_step(algorithm, iteration, epoch, losses):
    """Called after every optimisation step with the step's scalar losses (read only)."""


@hookspec
def gml_on_evaluate(algorithm, iteration, epoch, metrics):
    """Called after every validation run with its scalar metrics (read only)."""


@hookspec
def gml_register_commands(cli):
    """Add subcommands to the ``gml`` click group."""


@hookspec(firstresult=True)
def gml_translate_config(config, source):
    """Rewrite a foreign config (e.g. an mmpretrain Python config) into gml's plain vocabulary.

    Return the new plain dict, or None to leave it to others. Must not mutate ``config``.
    """
