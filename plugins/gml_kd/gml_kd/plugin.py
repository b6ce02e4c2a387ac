"""gml-kd's hook implementations (import-light: components load on first use)."""

from gml_core.api import hookimpl

_ALGORITHMS = {
    "TeacherStudentDistillation": "gml_kd.algorithms:TeacherStudentDistillation",
    "ABTeacherStudentDistillation": "gml_kd.algorithms:ABTeacherStudentDistillation",
    # the seed system's name of the teacher-student distiller of image classifiers
    "ImageClassifierDistiller": "gml_kd.algorithms:TeacherStudentDistillation",
}

_LOSSES = {
    "DistillKLDivLoss": "gml_kd.losses:DistillKLDivLoss",
    "KLDivergence": "gml_kd.losses:DistillKLDivLoss",
    "MSELoss": "gml_kd.losses:MSELoss",
    "ATLoss": "gml_kd.losses:ATLoss",
    "ABLoss": "gml_kd.losses:ABLoss",
    "FTLoss": "gml_kd.losses:FTLoss",
    "SoftTargetCrossEntropy": "gml_kd.losses:SoftTargetCrossEntropy",
}

_CONNECTORS = {
    "ConvBNConnector": "gml_kd.connectors:ConvBNConnector",
    "LinearConnector": "gml_kd.connectors:LinearConnector",
    "Paraphraser": "gml_kd.connectors:Paraphraser",
    "Translator": "gml_kd.connectors:Translator",
}


@hookimpl
def gml_add_hookspecs(host):
    from . import hookspecs

    host.add_hookspecs(hookspecs)


@hookimpl
def gml_register_algorithm(register):
    for name, target in _ALGORITHMS.items():
        register(name, target)


@hookimpl
def gml_register_loss(register):
    for name, target in _LOSSES.items():
        register(name, target)


@hookimpl
def gml_register_connector(register):
    for name, target in _CONNECTORS.items():
        register(name, target)
