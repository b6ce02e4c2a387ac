"""Hook implementations of gml-hello. Import-light: classes are registered by path."""

from gml_core.api import hookimpl


@hookimpl
def gml_register_algorithm(register):
    register("HelloMixup", "gml_hello.mixup:HelloMixup")


@hookimpl
def gml_register_loss(register):
    register("HelloFocalLoss", "gml_hello.focal:HelloFocalLoss")


# gml-hpo adds this hook when it is installed; optionalhook keeps gml-hello working without it
@hookimpl(optionalhook=True)
def gml_register_searcher(register):
    register("HelloLocalSearcher", "gml_hello.local_search:HelloLocalSearcher")
