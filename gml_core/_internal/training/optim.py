"""Optimisers and learning-rate schedules from ``TrainConfig``."""

from __future__ import annotations

from typing import Any

import torch
from mmengine.optim import OptimWrapper

from ..config.schema import TrainConfig


def make_optimizer(params: Any, train: TrainConfig, lr: float | None = None,
                   weight_decay: float | None = None) -> torch.optim.Optimizer:
    """The optimiser named by ``train.optimizer`` over ``params``."""
    lr = train.lr if lr is None else lr
    wd = train.weight_decay if weight_decay is None else weight_decay
    if train.optimizer == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=train.momentum, weight_decay=wd, nesterov=train.nesterov)
    if train.optimizer == "AdamW":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def make_optim_wrapper(params: Any, train: TrainConfig) -> OptimWrapper:
    clip = dict(max_norm=train.grad_clip) if train.grad_clip else None
    return OptimWrapper(make_optimizer(params, train), clip_grad=clip)


def scheduler_configs(train: TrainConfig) -> list[dict[str, Any]]:
    """mmengine param-scheduler configs (by epoch, optional linear warm-up by iteration)."""
    out: list[dict[str, Any]] = []
    # mmengine's LinearLR reaches the full lr at iteration end - 1; with end = 1 it never does (the lr
    # would stay at 0.1x for the whole run), and a warm-up that ends at iteration 0 is no warm-up.
    if train.warmup_iters > 1:
        out.append(dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=train.warmup_iters))
    if train.lr_schedule in ("cosine", "cosine_iter"):   # cosine_iter: updated every iteration, not every epoch
        out.append(dict(type="CosineAnnealingLR", T_max=train.epochs, by_epoch=True, begin=0, end=train.epochs,
                        eta_min=0.0, convert_to_iter_based=train.lr_schedule == "cosine_iter"))
    elif train.lr_schedule == "step":
        out.append(dict(type="MultiStepLR", milestones=step_milestones(train.lr_steps, train.epochs), gamma=0.1,
                        by_epoch=True))
    return out


def step_milestones(lr_steps: list[int], epochs: int) -> list[int]:
    """Epochs where the ``step`` schedule divides the lr by 10: ``lr_steps``, else 60 % and 85 % of ``epochs``."""
    return lr_steps or [max(1, int(epochs * 0.6)), max(1, int(epochs * 0.85))]
