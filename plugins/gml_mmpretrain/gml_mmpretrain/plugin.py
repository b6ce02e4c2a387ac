"""Hook implementations of gml-mmpretrain (import-light: no torch, no mmpretrain here)."""

from __future__ import annotations

from gml_core.api import hookimpl

from .compat import patch_mmengine_config

# mmengine reads ``mmpretrain::`` config bases through pkg_resources, gone in setuptools >= 81
patch_mmengine_config()


@hookimpl
def gml_register_scope(register):
    register("mmpretrain", "gml_mmpretrain.scope:resolve_mmpretrain")
    register("mmcls", "gml_mmpretrain.scope:resolve_mmcls")


@hookimpl
def gml_translate_config(config, source):
    from .translate import translate

    return translate(config, source)


@hookimpl
def gml_register_commands(cli):
    from .cli import mmpretrain

    cli.add_command(mmpretrain)
