"""Hook implementations of gml-hello. Import-light: classes are registered by path."""

from gml_core.api import hookimpl


@hookimpl
def gml_register_algorithm(register):
    register("HelloMixup", "gml_hello.mixup:HelloMixup")


@hookimpl
def gml_register_loss(register):
    register("HelloFocalLoss", "gml_hello.focal:HelloFocalLoss")
