"""Helpers for the gml-kd tests: build algorithms from plain tables, fake teacher checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gml_core._internal.algorithms import BuildContext, DataInfo
from gml_core._internal.config.loader import check_components, structure_algorithm
from gml_core._internal.config.schema import TrainConfig
from gml_core._internal.models.small_cnn import SmallCNN

DATA = DataInfo(10, 1, (16, 16))


def save_teacher(path: Path, width: int = 8, seed: int = 0, layout: str = "gml") -> dict[str, torch.Tensor]:
    """A random SmallCNN teacher saved like a gml run (``model.`` keys) or as a plain state dict."""
    torch.manual_seed(seed)
    model = SmallCNN(width=width)
    state = model.state_dict()
    if layout == "gml":
        torch.save({"meta": {"epoch": 1}, "state_dict": {f"model.{k}": v for k, v in state.items()}}, path)
    else:
        torch.save(state, path)
    return state


def head(student_module: str, teacher_module: str, name: str, loss: dict, **connectors: Any) -> dict:
    return {"student_module": student_module, "teacher_module": teacher_module,
            "head": {"type": "BaseDistillationHead", "name": name, "loss": loss, **connectors}}


def table(ckpt: str | list[str], heads: list[dict], student_width: int = 4, teacher_width: int = 8,
          **algorithm: Any) -> dict:
    ckpts = [ckpt] if isinstance(ckpt, str) else ckpt
    teachers = [{"ckpt_path": c, "model": {"type": "gml.SmallCNN", "width": teacher_width},
                 "distill_head_cfg": heads if i == 0 else []} for i, c in enumerate(ckpts)]
    return {"type": "TeacherStudentDistillation", "model": {"type": "gml.SmallCNN", "width": student_width},
            "distiller": {"type": "TeacherDistiller", "distill_cfg": {"teacher": teachers}}, **algorithm}


def build(tab: dict, epochs: int = 3, tmp: Path | None = None, **train: Any):
    """Structure, check and build an algorithm exactly as ``gml run`` does."""
    from gml_core._internal.plugins import get_host

    config = structure_algorithm(tab)
    check_components(config)
    context = BuildContext(DATA, TrainConfig(epochs=epochs, **train), tmp or Path("work_dirs/tmp"))
    return get_host().hook.gml_build_algorithm(config=config, context=context)


def batch(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


class FakeRun:
    """What ``before_train``/``after_train`` read from a ``RunInfo``."""

    def __init__(self, work_dir: Path, batches: list):
        self.work_dir = work_dir
        self.train_loader = batches
        self.val_loader = batches

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        from gml_core._internal.training.metric import evaluate_model

        return evaluate_model(model, self.val_loader, 10)
