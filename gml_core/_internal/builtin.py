"""The core's built-ins, registered as a plugin like any other (import-light)."""

from .hookspecs import hookimpl


@hookimpl
def gml_register_algorithm(register):
    register("Supervised", "gml_core._internal.algorithms.supervised:Supervised")


@hookimpl
def gml_register_model(register):
    register("SmallCNN", "gml_core._internal.models.small_cnn:SmallCNN")


@hookimpl
def gml_register_loss(register):
    register("CrossEntropyLoss", "torch.nn:CrossEntropyLoss")


@hookimpl
def gml_register_dataset(register):
    register("digits", "gml_core._internal.data.digits:digits")
    register("fashion_mnist", "gml_core._internal.data.fashion_mnist:fashion_mnist")
    register("cifar10", "gml_core._internal.data.folders:cifar10")
    register("imagefolder", "gml_core._internal.data.folders:imagefolder")


@hookimpl
def gml_register_scope(register):
    register("torchvision", "gml_core._internal.models.torchvision_scope:resolve_torchvision")


@hookimpl(trylast=True)
def gml_build_algorithm(config, context):
    from .plugins import get_host

    cls = get_host().registry("algorithm").get(config.type)
    return cls(config, context)


@hookimpl
def gml_register_commands(cli):
    """The core's commands are defined in ``gml_core._internal.cli`` directly."""
