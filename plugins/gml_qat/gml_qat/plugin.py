"""gml-qat's hook implementations (import-light: names and import paths only)."""

from gml_core.api import hookimpl


@hookimpl
def gml_add_hookspecs(host):
    from . import hookspecs

    host.add_hookspecs(hookspecs)


@hookimpl
def gml_register_algorithm(register):
    register("IAO", "gml_qat.algorithm:IAO")


@hookimpl
def gml_register_quantizer(register):
    register("TorchDefaultQuantizer", "gml_qat.quantizers.eager:TorchDefaultQuantizer")
    register("FxQuantizer", "gml_qat.quantizers.fx:FxQuantizer")


@hookimpl
def gml_register_commands(cli):
    from .commands import qat

    cli.add_command(qat)
