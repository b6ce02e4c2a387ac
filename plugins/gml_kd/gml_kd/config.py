"""Typed configs of the distillation algorithms (the seed vocabulary, strictly checked).

```toml
[algorithm]
type = "TeacherStudentDistillation"      # or "ABTeacherStudentDistillation"
use_meal = false
[algorithm.model]                        # the student
type = "gml.SmallCNN"
[algorithm.distiller]
type = "TeacherDistiller"                # or "InplaceDistiller"
[[algorithm.distiller.distill_cfg.teacher]]
ckpt_path = "work_dirs/kd_teacher/best.pth"
model = { type = "gml.SmallCNN", width = 16 }
[[algorithm.distiller.distill_cfg.teacher.distill_head_cfg]]
student_module = "backbone.layer3"
teacher_module = "backbone.layer3"
head = { type = "BaseDistillationHead", name = "hint3", stu_connector = { type = "ConvBNConnector" },
         loss = { type = "MSELoss", loss_weight = 1.0 } }
```
"""

from __future__ import annotations

import re
from typing import Any, Literal, Mapping, Optional, Union

import attrs

from gml_core.api import AlgorithmConfig, ComponentSpec, ConfigError, component_field, converter, did_you_mean, one_of

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@attrs.frozen(kw_only=True)
class HeadConfig:
    """``head``: connectors that transform the captured features and the loss comparing them."""

    type: Literal["BaseDistillationHead"] = "BaseDistillationHead"
    name: str
    loss: ComponentSpec = component_field("loss")
    stu_connector: Optional[ComponentSpec] = component_field("connector", default=None)
    tea_connector: Optional[ComponentSpec] = component_field("connector", default=None)


@attrs.frozen(kw_only=True)
class DistillHeadConfig:
    """One supervised pair of modules (``""`` names the model's own output)."""

    student_module: str
    teacher_module: str
    head: HeadConfig


@attrs.frozen(kw_only=True)
class TeacherConfig:
    """One teacher: its architecture, its weights and the heads it supervises."""

    ckpt_path: str = ""
    model: ComponentSpec = component_field("model")
    distill_head_cfg: list[DistillHeadConfig] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class DistillCfg:
    """``distill_cfg``: one or several teachers (a single table is one teacher)."""

    teacher: list[TeacherConfig] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class TeacherDistillerConfig:
    """``TeacherDistiller``: frozen teachers supervise the student through distillation heads."""

    type: Literal["TeacherDistiller"] = "TeacherDistiller"
    distill_cfg: DistillCfg = attrs.field(factory=DistillCfg)
    save_teacher: bool = False


@attrs.frozen(kw_only=True)
class InplaceDistillerConfig:
    """``InplaceDistiller``: the full-width student teaches its own narrower sub-networks."""

    type: Literal["InplaceDistiller"] = "InplaceDistiller"
    min_width: float = 0.25
    num_random: int = 2
    soft_loss: ComponentSpec = component_field("loss", factory=lambda: ComponentSpec("DistillKLDivLoss", {"tau": 1.0}))
    eval_widths: list[float] = attrs.field(factory=list)
    calib_batches: int = 20


DistillerConfig = Union[TeacherDistillerConfig, InplaceDistillerConfig]
_DISTILLERS: dict[str, type] = {"TeacherDistiller": TeacherDistillerConfig,
                                 "InplaceDistiller": InplaceDistillerConfig}


def _structure_distiller(value: Any, _type: Any) -> Any:
    if isinstance(value, (TeacherDistillerConfig, InplaceDistillerConfig)):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a table with a 'type' key, got {value!r}")
    kind = value.get("type", "TeacherDistiller")
    if kind not in _DISTILLERS:
        raise ValueError(f"unknown distiller {kind!r}{did_you_mean(str(kind), _DISTILLERS)}; accepted: "
                         f"{one_of(_DISTILLERS)}")
    data = dict(value)
    cfg = data.get("distill_cfg")
    if isinstance(cfg, Mapping) and isinstance(cfg.get("teacher"), Mapping):
        data["distill_cfg"] = {**cfg, "teacher": [cfg["teacher"]]}  # seed form: one teacher as a table
    return converter.structure(data, _DISTILLERS[kind])


converter.register_structure_hook_func(lambda t: t == DistillerConfig, _structure_distiller)


@attrs.frozen(kw_only=True)
class MealConfig:
    """MEAL v2 settings: soft targets of the teacher ensemble plus an output discriminator."""

    temperature: float = 1.0
    kd_weight: float = 1.0
    adversarial_weight: float = 0.01
    discriminator_weight: float = 1.0
    discriminator_hidden: list[int] = attrs.field(factory=lambda: [64, 64])


@attrs.frozen(kw_only=True)
class TeacherStudentDistillationConfig(AlgorithmConfig):
    """``TeacherStudentDistillation``: the student (``model``) learns from labels and teachers.

    ``init_epochs`` > 0 runs that many extra passes before the ``train.epochs`` schedule,
    training only on the heads named in ``init_heads`` (FitNet's hint stage); then those
    heads are dropped and the other heads plus the label loss train the whole student.
    ``init_keep_norms``: after that stage, scale each convolution that feeds a BatchNorm back
    to its weight norm before the stage (the network computes the same function; the stage
    no longer shrinks the effective learning rate of the schedule).
    ``init_lr``: peak learning rate of that stage (cosine to 0 over it); 0 means ``train.lr``.
    ``label_loss_norm`` (images without labels, ``data.label_limit``): the label cross-entropy
    is summed over the batch's labelled images and divided by the batch size (``"batch"``, the
    default: every image weighs alike) or averaged over the labelled images (``"labelled"``);
    the same when all are labelled.
    ``mixup_alpha`` > 0: function matching (Beyer et al., 2022): each training batch is mixed with a
    shuffled copy of itself, ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha, alpha)``;
    teachers and student see the same mixed images, and the label term is ``lam * CE(y) +
    (1 - lam) * CE(y[perm])`` over the labelled members; 0 (the default) turns it off.
    """

    use_meal: bool = False
    pretrained: str = ""
    distiller: DistillerConfig = attrs.field(factory=TeacherDistillerConfig)
    student_loss_weight: float = 1.0
    init_epochs: int = 0
    init_heads: list[str] = attrs.field(factory=list)
    init_keep_norms: bool = False
    init_lr: float = 0.0
    label_loss_norm: Literal["batch", "labelled"] = "batch"
    mixup_alpha: float = 0.0
    eval_teachers: bool = True
    meal: MealConfig = attrs.field(factory=MealConfig)

    def __attrs_post_init__(self) -> None:
        problems = check_distillation(self)
        if problems:
            raise ConfigError(problems)


@attrs.frozen(kw_only=True)
class ABTeacherStudentDistillationConfig(TeacherStudentDistillationConfig):
    """``ABTeacherStudentDistillation``: an activation-boundary initialisation stage, then training.

    For ``init_epochs`` extra passes before the schedule only the heads of ``init_heads``
    train (all heads when the list is empty); then the student trains on its labels plus
    any heads not listed there.
    """

    init_epochs: int = 1
    init_keep_norms: bool = True


def head_names(config: TeacherStudentDistillationConfig) -> list[str]:
    """All head names of a teacher distiller, in config order."""
    if not isinstance(config.distiller, TeacherDistillerConfig):
        return []
    return [h.head.name for t in config.distiller.distill_cfg.teacher for h in t.distill_head_cfg]


def check_distillation(config: TeacherStudentDistillationConfig) -> list[tuple[str, str]]:
    """Cross-field checks, each with its full key path."""
    problems: list[tuple[str, str]] = []
    d = config.distiller
    is_ab = isinstance(config, ABTeacherStudentDistillationConfig)
    if isinstance(d, TeacherDistillerConfig):
        base = "algorithm.distiller.distill_cfg.teacher"
        if not d.distill_cfg.teacher:
            problems.append((base, "TeacherDistiller needs at least one [[algorithm.distiller.distill_cfg.teacher]]"))
        seen: set[str] = set()
        for i, teacher in enumerate(d.distill_cfg.teacher):
            for j, item in enumerate(teacher.distill_head_cfg):
                path = f"{base}[{i}].distill_head_cfg[{j}].head.name"
                name = item.head.name
                if not _NAME.match(name):
                    problems.append((path, f"head name {name!r} may use only letters, digits, '_' and '-'"))
                elif name in seen:
                    problems.append((path, f"duplicate head name {name!r}; every head needs its own name"))
                seen.add(name)
        if not config.use_meal and not seen:
            problems.append((base, "no distill_head_cfg: add at least one head (or set use_meal = true)"))
    else:
        if config.use_meal:
            problems.append(("algorithm.use_meal", "MEAL v2 needs teachers: use distiller.type = \"TeacherDistiller\""))
        if not 0.0 < d.min_width < 1.0:
            problems.append(("algorithm.distiller.min_width", f"must be between 0 and 1 (exclusive), got {d.min_width}"))
        if d.num_random < 0:
            problems.append(("algorithm.distiller.num_random", f"must be >= 0, got {d.num_random}"))
        bad = [w for w in d.eval_widths if not 0.0 < w <= 1.0]
        if bad:
            problems.append(("algorithm.distiller.eval_widths", f"widths must be in (0, 1], got {bad}"))
        if d.calib_batches < 1:
            problems.append(("algorithm.distiller.calib_batches", f"must be >= 1, got {d.calib_batches}"))
        if config.init_epochs or config.init_heads:
            problems.append(("algorithm.init_epochs", "the InplaceDistiller has no heads: init_epochs/init_heads "
                             "apply to the TeacherDistiller only"))
    names = head_names(config)
    for name in config.init_heads:
        if name not in names:
            problems.append(("algorithm.init_heads", f"no head named {name!r}{did_you_mean(name, names)}; "
                             f"heads: {one_of(names)}"))
    if config.init_epochs < 0:
        problems.append(("algorithm.init_epochs", f"must be >= 0, got {config.init_epochs}"))
    if is_ab and config.init_epochs < 1:
        problems.append(("algorithm.init_epochs", "ABTeacherStudentDistillation needs an initialisation stage: "
                         "init_epochs >= 1 (use TeacherStudentDistillation for AB loss without it)"))
    if not is_ab and config.init_heads and config.init_epochs == 0:
        problems.append(("algorithm.init_heads", "init_heads needs init_epochs >= 1"))
    if not is_ab and config.init_epochs > 0 and not config.init_heads:
        problems.append(("algorithm.init_heads", "init_epochs > 0 needs the names of the heads that train in "
                         f"the first stage; heads: {one_of(names)}"))
    if config.init_lr < 0:
        problems.append(("algorithm.init_lr", f"must be >= 0 (0: train.lr), got {config.init_lr}"))
    if config.mixup_alpha < 0:
        problems.append(("algorithm.mixup_alpha", f"must be >= 0 (0: no mixing), got {config.mixup_alpha}"))
    if config.mixup_alpha > 0 and not isinstance(d, TeacherDistillerConfig):
        problems.append(("algorithm.mixup_alpha", "mixing applies to the TeacherDistiller only"))
    if config.student_loss_weight < 0:
        problems.append(("algorithm.student_loss_weight", f"must be >= 0, got {config.student_loss_weight}"))
    m = config.meal
    if config.use_meal and (m.temperature <= 0 or any(h < 1 for h in m.discriminator_hidden)):
        problems.append(("algorithm.meal", "temperature must be > 0 and discriminator_hidden sizes >= 1"))
    return problems


def init_head_set(config: TeacherStudentDistillationConfig) -> set[str]:
    """Heads trained in the initialisation stage (AB: all heads when none are listed)."""
    if config.init_epochs <= 0:
        return set()
    if config.init_heads:
        return set(config.init_heads)
    return set(head_names(config)) if isinstance(config, ABTeacherStudentDistillationConfig) else set()
