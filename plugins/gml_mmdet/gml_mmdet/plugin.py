"""Hook implementations of gml-mmdet (import-light: no torch, no mmdet here)."""

from __future__ import annotations

from gml_core.api import hookimpl


@hookimpl
def gml_register_scope(register):
    register("mmdet", "gml_mmdet.scope:resolve_mmdet")


@hookimpl
def gml_register_loss(register):
    register("PKDLoss", "gml_mmdet.losses:PKDLoss")
    register("DenseSigmoidKDLoss", "gml_mmdet.losses:DenseSigmoidKDLoss")


@hookimpl
def gml_build_algorithm(config, context):
    from .algorithms import build, is_detection

    return build(config, context) if is_detection(config) else None


@hookimpl
def gml_translate_config(config, source):
    from .translate import translate

    return translate(config, source)


@hookimpl
def gml_register_commands(cli):
    from .cli import mmdet

    cli.add_command(mmdet)
