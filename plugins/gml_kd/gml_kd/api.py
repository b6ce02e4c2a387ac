"""Use gml-kd's teacher distiller from another algorithm (e.g. QAT with a float teacher).

```python
from gml_kd.api import build_distiller, distill_forward

distiller = build_distiller({"distill_cfg": {"teacher": [...]}}, student, context, key="algorithm.teacher")
logits, losses = distill_forward(distiller, student, inputs)   # losses: {"loss_<head>": tensor}
```
Keep the returned distiller as a sub-module of the algorithm (its heads and connectors train
and are checkpointed with it; the teachers stay outside the module tree).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn

from gml_core.api import check_components, structure

from .config import TeacherDistillerConfig
from .distiller import TeacherDistiller


def build_distiller(table: Mapping[str, Any] | TeacherDistillerConfig, student: nn.Module, context: Any,
                    key: str = "algorithm.distiller") -> TeacherDistiller:
    """A ``TeacherDistiller`` for ``student`` from a ``[distiller]``-style table (checked like a config)."""
    if isinstance(table, TeacherDistillerConfig):
        config = table
    else:
        data = {k: v for k, v in table.items() if k != "type"}
        cfg = data.get("distill_cfg")
        if isinstance(cfg, Mapping) and isinstance(cfg.get("teacher"), Mapping):
            data["distill_cfg"] = {**cfg, "teacher": [cfg["teacher"]]}
        config = structure(data, TeacherDistillerConfig, key)
    check_components(config, key)
    return TeacherDistiller(config, student, context, key)


def distill_forward(distiller: TeacherDistiller, student: nn.Module, inputs: torch.Tensor,
                    active: Optional[set[str]] = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Teacher forward (no grad), student forward, then every (active) head's loss."""
    with distiller.recording():
        distiller.teacher_forward(inputs)
        logits = student(inputs)
        losses = distiller.head_losses(active)
    return logits, losses
