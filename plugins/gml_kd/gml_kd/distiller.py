"""``TeacherDistiller``: frozen teachers, feature capture and distillation heads.

The teachers are kept outside the module tree: they never reach the optimiser,
``state_dict`` (unless ``save_teacher``), ``train()`` or a model wrapper's
parameter broadcast; ``_apply`` still moves them with the algorithm
(``.to(device)``). Heads, connectors and their states are ordinary sub-modules.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Iterator, Optional

import torch
from torch import nn

from gml_core.api import GmlUserError

from .config import DistillHeadConfig, TeacherDistillerConfig
from .connectors import BaseConnector
from .features import FeatureRecorder
from .losses import DistillLoss
from .teachers import build_teacher

TEACHER_PREFIX = "teachers."


def _shape(t: torch.Tensor) -> str:
    return "(N, " + ", ".join(str(s) for s in t.shape[1:]) + ")"


class BaseDistillationHead(nn.Module):
    """Connect a student feature and a teacher feature, then compare them with a loss."""

    def __init__(self, name: str, student_module: str, teacher_module: str, teacher_index: int, loss: nn.Module,
                 stu_connector: Optional[nn.Module] = None, tea_connector: Optional[nn.Module] = None):
        super().__init__()
        self.name = name
        self.student_module = student_module
        self.teacher_module = teacher_module
        self.teacher_index = teacher_index
        self.loss = loss
        self.stu_connector = stu_connector
        self.tea_connector = tea_connector

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if self.tea_connector is not None:
            teacher = self.tea_connector(teacher)
        if self.stu_connector is not None:
            student = self.stu_connector(student)
        return self.loss(student, teacher)


class TeacherDistiller(nn.Module):
    """Builds teachers and heads from ``TeacherDistillerConfig`` for one ``student``."""

    def __init__(self, config: TeacherDistillerConfig, student: nn.Module, context: Any,
                 key: str = "algorithm.distiller"):
        super().__init__()
        self.config = config
        self.save_teacher = config.save_teacher
        teachers = [build_teacher(t, i, context, key) for i, t in enumerate(config.distill_cfg.teacher)]
        object.__setattr__(self, "teachers", teachers)  # not a sub-module: see the module docstring
        base = f"{key}.distill_cfg.teacher"
        items = [(i, j, item) for i, t in enumerate(config.distill_cfg.teacher)
                 for j, item in enumerate(t.distill_head_cfg)]
        self.student_recorder = FeatureRecorder(
            student, {it.student_module: f"{base}[{i}].distill_head_cfg[{j}].student_module" for i, j, it in items},
            "student")
        self.teacher_recorders = [
            FeatureRecorder(teacher, {it.teacher_module: f"{base}[{i}].distill_head_cfg[{j}].teacher_module"
                                      for i2, j, it in items if i2 == i}, f"teacher[{i}]")
            for i, teacher in enumerate(teachers)]
        self.heads = nn.ModuleDict()
        self.descriptions: list[str] = []
        if items:
            s_feats, t_feats = self._dry_run(student, context.data.input_shape)
            for i, j, item in items:
                item_key = f"{base}[{i}].distill_head_cfg[{j}]"
                self.heads[item.head.name] = self._build_head(item, i, item_key, s_feats, t_feats[i], context)

    # -- building ------------------------------------------------------------------------
    @torch.no_grad()
    def _dry_run(self, student: nn.Module, input_shape: tuple[int, ...]) -> tuple[dict, list[dict]]:
        """Feature shapes from one forward pass of zeros, in the modes used for training.

        It also tells each recorder which outputs an in-place op changes afterwards
        (those are cloned when captured). The student's buffers (BatchNorm statistics)
        are restored afterwards.
        """
        device = next(student.parameters()).device
        x = torch.zeros((2, *input_shape[1:]), device=device)
        was_training = student.training
        saved = [b.detach().clone() for b in student.buffers()]
        student.train()
        try:
            with self.student_recorder.calibrate() as s_feats:
                student(x)
            t_feats = []
            for teacher, recorder in zip(self.teachers, self.teacher_recorders):
                with recorder.calibrate() as feats:
                    teacher(x)
                t_feats.append(feats)
        finally:
            student.train(was_training)
            for buffer, value in zip(student.buffers(), saved):
                buffer.copy_(value)
        for recorder, feats in [(self.student_recorder, s_feats), *zip(self.teacher_recorders, t_feats)]:
            for path in recorder.modules:
                if path not in feats:
                    raise GmlUserError(f"{recorder.role} module '{path}' did not run in the forward pass; "
                                       "pick a module the model actually calls")
        return dict(s_feats), [dict(f) for f in t_feats]

    def _build_head(self, item: DistillHeadConfig, index: int, key: str, s_feats: dict, t_feats: dict,
                    context: Any) -> BaseDistillationHead:
        cfg = item.head
        s, t = s_feats[item.student_module], t_feats[item.teacher_module]
        tea_conn = stu_conn = None
        t_out, s_out = t, s
        with torch.no_grad():
            if cfg.tea_connector is not None:
                tea_conn = context.build("connector", cfg.tea_connector, f"{key}.head.tea_connector",
                                         in_channels=t.shape[1])
                t_out = _eval_once(tea_conn, t)
            if cfg.stu_connector is not None:
                stu_conn = context.build("connector", cfg.stu_connector, f"{key}.head.stu_connector",
                                         in_channels=s.shape[1], out_channels=t_out.shape[1])
                s_out = _eval_once(stu_conn, s)
        loss = context.build("loss", cfg.loss, f"{key}.head.loss")
        _check_loss(loss, s_out, t_out, item, key, s, t)
        arrow_s = f" -> {cfg.stu_connector.type} {_shape(s_out)}" if stu_conn is not None else ""
        arrow_t = f" -> {cfg.tea_connector.type} {_shape(t_out)}" if tea_conn is not None else ""
        self.descriptions.append(
            f"head {cfg.name}: student '{item.student_module}' {_shape(s)}{arrow_s} | teacher[{index}] "
            f"'{item.teacher_module}' {_shape(t)}{arrow_t} | {cfg.loss.type}")
        return BaseDistillationHead(cfg.name, item.student_module, item.teacher_module, index, loss,
                                    stu_conn, tea_conn)

    # -- training ------------------------------------------------------------------------
    @contextmanager
    def recording(self) -> Iterator[None]:
        """Capture student and teacher features inside this block."""
        with ExitStack() as stack:
            stack.enter_context(self.student_recorder.recording())
            for recorder in self.teacher_recorders:
                stack.enter_context(recorder.recording())
            yield

    @torch.no_grad()
    def teacher_forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Run every teacher (eval mode, no gradient); returns their outputs."""
        return [teacher(inputs) for teacher in self.teachers]

    def head_losses(self, active: Optional[set[str]] = None) -> dict[str, torch.Tensor]:
        """``loss_<head name>`` for every active head, from the features just recorded."""
        out: dict[str, torch.Tensor] = {}
        for name, head in self.heads.items():
            if active is not None and name not in active:
                continue
            student = self.student_recorder.take(head.student_module)
            teacher = self.teacher_recorders[head.teacher_index].take(head.teacher_module)
            out[f"loss_{name}"] = head(student, teacher)
        return out

    def pretrain_connectors(self) -> list[tuple[BaseDistillationHead, BaseConnector, str]]:
        """Connectors with a pre-training stage (done or not): ``(head, connector, "teacher" | "student")``."""
        out = []
        for h in self.heads.values():
            for side, conn in (("teacher", h.tea_connector), ("student", h.stu_connector)):
                if isinstance(conn, BaseConnector) and conn.needs_pretrain:
                    out.append((h, conn, side))
        return out

    def frozen_parameters(self) -> set[int]:
        """Ids of parameters that the weight optimiser must not see (pre-trained connectors)."""
        return {id(p) for _, c, _ in self.pretrain_connectors() for p in c.parameters()}

    # -- device moves and checkpoints -------------------------------------------------------
    def _apply(self, fn: Any, recurse: bool = True) -> "TeacherDistiller":
        super()._apply(fn, recurse)
        for teacher in self.teachers:
            teacher._apply(fn)
        return self

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.save_teacher:
            for i, teacher in enumerate(self.teachers):
                for k, v in teacher.state_dict(keep_vars=keep_vars).items():
                    destination[f"{prefix}{TEACHER_PREFIX}{i}.{k}"] = v if keep_vars else v.detach()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        mine = prefix + TEACHER_PREFIX
        saved = {k[len(mine):]: state_dict.pop(k) for k in [k for k in state_dict if k.startswith(mine)]}
        for i, teacher in enumerate(self.teachers):
            part = {k[len(f"{i}."):]: v for k, v in saved.items() if k.startswith(f"{i}.")}
            if part:
                teacher.load_state_dict(part)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


@torch.no_grad()
def _eval_once(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    module.to(x.device).eval()
    try:
        return module(x)
    finally:
        module.train()


def _check_loss(loss: nn.Module, s: torch.Tensor, t: torch.Tensor, item: DistillHeadConfig, key: str,
                s_raw: torch.Tensor, t_raw: torch.Tensor) -> None:
    """A clear error when the (connected) features cannot be compared by the loss."""
    same_shape = getattr(loss, "same_shape", isinstance(loss, DistillLoss))
    problem = None
    if same_shape and s.shape != t.shape:
        problem = "needs equal shapes"
    else:
        try:
            with torch.no_grad():
                loss(s, t)
        except Exception as exc:  # the loss's own complaint, reported with the shapes
            problem = f"fails on them ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    if problem is None:
        return
    hint = ""
    if s.dim() == 4 and t.dim() == 4 and s.shape[2:] == t.shape[2:]:
        hint = (f"; add stu_connector = {{ type = \"ConvBNConnector\" }} to map {s.shape[1]} to {t.shape[1]} "
                "channels")
    elif s.dim() == 4 and t.dim() == 4:
        hint = "; the spatial sizes differ: pick modules of equal resolution (or a connector with a stride)"
    elif s.dim() == 2 and t.dim() == 2:
        hint = f"; add stu_connector = {{ type = \"LinearConnector\" }} to map {s.shape[1]} to {t.shape[1]} features"
    raise GmlUserError(
        f"{key}: student feature '{item.student_module}' {_shape(s_raw)}"
        + (f" (after stu_connector: {_shape(s)})" if s is not s_raw else "")
        + f" and teacher feature '{item.teacher_module}' {_shape(t_raw)}"
        + (f" (after tea_connector: {_shape(t)})" if t is not t_raw else "")
        + f": {type(loss).__name__} {problem}{hint}")
