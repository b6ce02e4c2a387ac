"""``TeacherStudentDistillation`` and ``ABTeacherStudentDistillation``.

The student is ``self.model`` (what is evaluated, counted and exported); the
distiller holds the frozen teachers and the trainable heads/connectors.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from gml_core.api import GmlAlgorithm, GmlUserError, load_checkpoint, load_weights, save_checkpoint

from .config import (
    ABTeacherStudentDistillationConfig,
    InplaceDistillerConfig,
    TeacherStudentDistillationConfig,
    init_head_set,
)
from .distiller import TeacherDistiller
from .inplace import InplaceDistiller
from .meal import MealLoss
from .pretrain import pretrain_connectors, run_init_stage

STUDENT_FILE = "student.pth"
#: label of an image without one (``data.label_limit``; PyTorch's ``ignore_index``): no label loss
UNLABELLED = -100


def _log(message: str, level: int = logging.INFO) -> None:
    from mmengine.logging import print_log

    print_log(message, logger="current", level=level)


class TeacherStudentDistillation(GmlAlgorithm):
    """Distil one or several frozen teachers (or the student's own widest sub-network) into the student."""

    config_class = TeacherStudentDistillationConfig

    def __init__(self, config: TeacherStudentDistillationConfig, context: Any):
        super().__init__(config, context)
        self.student_spec = _exported_spec(config.model, context)
        if config.pretrained:
            try:
                load_weights(self.model, config.pretrained, context.trust_checkpoint, prefix="model.")
            except GmlUserError as exc:
                raise GmlUserError(f"algorithm.pretrained: {exc}") from None
        self.inplace = isinstance(config.distiller, InplaceDistillerConfig)
        if self.inplace:
            self.distiller = InplaceDistiller(config.distiller, self.model, context)
        else:
            self.distiller = TeacherDistiller(config.distiller, self.model, context)
        self.meal = MealLoss(config.meal, context.data.num_classes) if config.use_meal else None
        self.init_heads = init_head_set(config)
        #: set once the initialisation stage has run (saved in checkpoints: a resumed run skips it)
        self.register_buffer("init_done", torch.zeros((), dtype=torch.bool))

    # -- lifecycle -------------------------------------------------------------------------
    def before_train(self, run: Any) -> None:
        if not self.inplace:
            for line in self.distiller.descriptions:
                _log(line)
            _broadcast_teachers(self.distiller.teachers)
            pretrain_connectors(self, run)
            run_init_stage(self, run)

    def optimizer_param_groups(self) -> Any:
        """Everything trainable except pre-trained connectors and heads of the initialisation stage."""
        if self.inplace:
            return [p for p in self.parameters() if p.requires_grad]
        skip = self.distiller.frozen_parameters()
        skip |= {id(p) for n in self.init_heads for p in self.distiller.heads[n].parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in skip]

    # -- losses ----------------------------------------------------------------------------
    def active_heads(self) -> set[str]:
        """Heads of the main schedule (those of the initialisation stage are dropped after it)."""
        return set(self.distiller.heads.keys()) - self.init_heads

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.inplace:
            return {"loss_cls": self._label_loss(self.model(inputs), labels)}
        mix = None
        if self.training and self.config.mixup_alpha > 0:
            inputs, mix = mix_batch(inputs, self.config.mixup_alpha)
        with self.distiller.recording():
            teacher_outputs = self.distiller.teacher_forward(inputs)
            logits = self.model(inputs)
            losses = self.distiller.head_losses(self.active_heads())
        if self.meal is not None:
            losses.update(self.meal(logits, teacher_outputs))
        elif self.config.student_loss_weight > 0:
            if mix is None:
                label_loss = self._label_loss(logits, labels)
            else:   # cross-entropy is linear in the target: the mixed target's loss is the mix of the two
                perm, lam = mix
                label_loss = lam * self._label_loss(logits, labels) + (1 - lam) * self._label_loss(logits, labels[perm])
            losses["loss_cls"] = self.config.student_loss_weight * label_loss
        if not losses:
            losses["loss_zero"] = logits.sum() * 0.0
        return losses

    def _label_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the labelled images of the batch (label -100: unlabelled, skipped; 0 if none).

        ``label_loss_norm = "labelled"``: their mean; ``"batch"``: their sum over the batch size.
        """
        labelled = labels != UNLABELLED
        if not bool(labelled.any()):
            return logits.sum() * 0.0
        loss = F.cross_entropy(logits[labelled], labels[labelled], label_smoothing=self.context.train.label_smoothing)
        if self.config.label_loss_norm == "batch":
            loss = loss * labelled.sum() / labels.numel()
        return loss

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        if not self.inplace:
            return super().train_step(data, optim_wrapper)
        inputs, labels = self.data_preprocessor(data, True)
        with optim_wrapper.optim_context(self):
            logits = self.model(inputs)
            loss, log_vars = self.parse_losses({"loss_cls": self._label_loss(logits, labels)})
        optim_wrapper.backward(loss)
        soft = logits.detach()
        total_soft = torch.zeros((), device=soft.device)
        for width in self.distiller.sample_widths():
            with optim_wrapper.optim_context(self), self.distiller.masker.width(width):
                sub_loss = self.distiller.soft_loss(self.model(inputs), soft)
            optim_wrapper.backward(sub_loss)
            total_soft += sub_loss.detach()
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        log_vars["loss_inplace"] = total_soft
        log_vars["loss"] = log_vars["loss"] + total_soft
        return log_vars

    # -- after training ----------------------------------------------------------------------
    def after_train(self, run: Any) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else 0
        if self.inplace and not distributed:
            device = next(self.model.parameters()).device
            for width in self.distiller.eval_widths():
                sub = self.distiller.calibrated_copy(self.model, width, run.train_loader, device)
                with type(self.distiller.masker)(sub).width(width):
                    top1 = run.evaluate(sub).get("accuracy/top1", float("nan"))
                rows[f"width {width:g} top1 (BN recalibrated)"] = f"{top1:.2f}"
        elif not self.inplace and self.config.eval_teachers and not distributed:
            for i, teacher in enumerate(self.distiller.teachers):
                top1 = run.evaluate(teacher).get("accuracy/top1", float("nan"))
                rows[f"teacher[{i}] top1"] = f"{top1:.2f}"
        if rank == 0:
            rows["student checkpoint"] = str(self.export_student(Path(run.work_dir) / STUDENT_FILE))
        return rows

    def export_student(self, path: Path) -> Path:
        """Save the student alone (``state_dict``, plus ``model_spec`` for a rebuilt model)."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        payload: dict[str, Any] = {"state_dict": state}
        if self.student_spec is not None:
            payload["model_spec"] = self.student_spec
        return save_checkpoint(payload, path)


class ABTeacherStudentDistillation(TeacherStudentDistillation):
    """Heo et al. (2019): activation-boundary transfer as an initialisation stage, then training."""

    config_class = ABTeacherStudentDistillationConfig


def mix_batch(inputs: torch.Tensor, alpha: float) -> tuple[torch.Tensor, tuple[torch.Tensor, float]]:
    """Mixup of a batch with a shuffled copy of itself: ``lam * x + (1 - lam) * x[perm]``, ``lam ~ Beta(alpha, alpha)``.

    Returns the mixed batch and ``(perm, lam)``; draws from torch's global generator (seeded runs repeat).
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(inputs.shape[0], device=inputs.device)
    return lam * inputs + (1.0 - lam) * inputs[perm], (perm, lam)


def _exported_spec(spec: Any, context: Any) -> dict[str, Any] | None:
    """The ``model_spec`` of the student's ``init_from`` checkpoint, if it has one."""
    init_from = spec.args.get("init_from", "")
    if not init_from:
        return None
    ckpt = load_checkpoint(init_from, context.trust_checkpoint)
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model_spec"), Mapping):
        return dict(ckpt["model_spec"])
    return None


def _broadcast_teachers(teachers: list[torch.nn.Module]) -> None:
    """Same teacher weights on every rank (matters only for an unloaded, random teacher)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    with torch.no_grad():
        for teacher in teachers:
            for tensor in list(teacher.parameters()) + list(teacher.buffers()):
                torch.distributed.broadcast(tensor.data, src=0)
