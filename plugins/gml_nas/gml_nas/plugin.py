"""gml-nas hook implementations (import-light: components are registered by import path)."""

from gml_core.api import hookimpl

_MODELS = {
    "ImageClassifierSearch": "gml_nas.classifier:ImageClassifierSearch",
    "StaticSubnet": "gml_nas.classifier:StaticSubnet",
    "LinearClsHeadV2": "gml_nas.head:LinearClsHeadV2",
    "MobileNetV3Slice": "gml_nas.backbones.mobilenet_v3:MobileNetV3Slice",
    "ResNetSlice": "gml_nas.backbones.resnet:ResNetSlice",
    "ShuffleNetV2_OneShot": "gml_nas.backbones.shufflenet:ShuffleNetV2_OneShot",
}


@hookimpl
def gml_register_algorithm(register):
    register("BigNAS", "gml_nas.algorithms.bignas:BigNAS")
    register("SPOS", "gml_nas.algorithms.spos:SPOS")


@hookimpl
def gml_register_mutator(register):
    register("StatelessMutator", "gml_nas.mutator:StatelessMutator")
    register("StateslessMutator", "gml_nas.mutator:StatelessMutator")  # the original system's spelling
    register("RandomMutator", "gml_nas.mutator:StatelessMutator")  # the seed's name for uniform sampling


@hookimpl
def gml_register_model(register):
    for name, target in _MODELS.items():
        register(name, target)


@hookimpl
def gml_register_dataset(register):
    register("search_split", "gml_nas.data:search_split")


@hookimpl
def gml_on_evaluate(algorithm, iteration, epoch, metrics):
    """After each validation, a NAS algorithm with ``search_eval_cfg`` evaluates its listed subnets."""
    hook = getattr(algorithm, "on_validation", None)
    if hook is not None and getattr(algorithm, "is_gml_nas", False):
        hook(iteration, epoch)


@hookimpl
def gml_register_commands(cli):
    from .cli import nas

    if "nas" not in cli.commands:
        cli.add_command(nas)
