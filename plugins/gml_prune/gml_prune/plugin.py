"""gml-prune's hook implementations (import-light: no torch at import time)."""

from gml_core.api import hookimpl


@hookimpl
def gml_register_algorithm(register):
    register("DMCP", "gml_prune.algorithms.dmcp:DMCP")
    register("MagnitudePruning", "gml_prune.algorithms.magnitude:MagnitudePruning")


@hookimpl
def gml_register_model(register):
    register("PrunedModel", "gml_prune.export:build_pruned_model")


@hookimpl
def gml_register_commands(cli):
    from .cli import prune

    cli.add_command(prune)
