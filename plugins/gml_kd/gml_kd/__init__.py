"""gml-kd: knowledge distillation for gml (teacher-student, FitNet, AT, AB, FT, MEAL v2, in-place)."""

__version__ = "0.1.0"
