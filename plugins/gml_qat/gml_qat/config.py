"""The typed config of ``IAO`` (seed vocabulary).

```toml
[algorithm]
type = "IAO"
freeze_bn_after = 3              # epochs, "200 iters", or "never"
freeze_observer_after = 4
[algorithm.model]
type = "gml.SmallCNN"
init_from = ""                   # e.g. a distilled student or an exported pruned model
[algorithm.quantizer]
type = "TorchDefaultQuantizer"   # or "FxQuantizer"
backend = "fbgemm"
input_layer = "backbone.conv1"
output_layer = "backbone.layer4"
fuse_config = { "backbone" = [["conv1", "bn1", "relu"]] }
```
An optional ``[algorithm.distiller]`` table (gml-kd's ``TeacherDistiller``) adds float teachers.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import attrs

from gml_core.api import AlgorithmConfig, ComponentSpec, component_field, converter

from .schedule import NonNegativeFloat, Period, PositiveInt


class KDDistiller:
    """Marker type: an ``[algorithm.distiller]`` table structured by gml-kd (``TeacherDistiller``)."""


def _structure_distiller(value: Any, _type: Any) -> Any:
    try:
        from gml_kd.config import DistillerConfig, TeacherDistillerConfig
    except ImportError:
        raise ValueError("QAT with a float teacher uses gml-kd's TeacherDistiller, which is not installed: "
                         "pip install gml-kd (or gml-qat[kd])") from None
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a [algorithm.distiller] table, got {value!r}")
    config = converter.structure({"type": "TeacherDistiller", **value}, DistillerConfig)
    if not isinstance(config, TeacherDistillerConfig):
        raise ValueError("IAO distils from float teachers: use type = \"TeacherDistiller\"")
    teachers = config.distill_cfg.teacher
    if not teachers:
        raise ValueError("needs at least one [[algorithm.distiller.distill_cfg.teacher]]")
    names = [h.head.name for t in teachers for h in t.distill_head_cfg]
    if not names:
        raise ValueError("needs at least one distill_head_cfg (student_module = \"\" distils the logits)")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate head names {duplicates}; every head needs its own name")
    return config


converter.register_structure_hook(KDDistiller, _structure_distiller)


@attrs.frozen(kw_only=True)
class IAOConfig(AlgorithmConfig):
    """Quantization-aware training with fake quantization, BN/observer freezing and int8 export.

    ``latency_batch_size``/``latency_runs``: how the int8 and fp32 CPU latencies in the summary
    are measured (median of ``latency_runs`` forward passes). ``export = false`` skips the
    int8 files (the int8 model is still evaluated).
    """

    quantizer: ComponentSpec = component_field("quantizer", factory=lambda: ComponentSpec("TorchDefaultQuantizer"))
    freeze_bn_after: Period = Period(0, "never")
    freeze_observer_after: Period = Period(0, "never")
    export: bool = True
    latency_batch_size: PositiveInt = PositiveInt(1)
    latency_runs: PositiveInt = PositiveInt(50)
    distiller: Optional[KDDistiller] = None
    student_loss_weight: NonNegativeFloat = NonNegativeFloat(1.0)
