"""The learning rate the engine's schedulers give, and the NAS benchmarks' own loop giving the same."""

import sys
from pathlib import Path

import pytest
import torch
from mmengine.optim import scheduler as mm_sched

from gml_core._internal.config.schema import TrainConfig
from gml_core._internal.training.optim import scheduler_configs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from nas_recipe import lr_at  # noqa: E402


def engine_lrs(train: TrainConfig, iters_per_epoch: int) -> list[float]:
    """lr before each iteration when mmengine's schedulers step as its runner steps them."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=train.lr)
    per_iter, per_epoch = [], []
    for cfg in scheduler_configs(train):
        cfg = dict(cfg)
        cls = getattr(mm_sched, cfg.pop("type"))
        if cfg.pop("convert_to_iter_based", False):
            per_iter.append(cls.build_iter_from_epoch(opt, epoch_length=iters_per_epoch, **cfg))
        elif cfg["by_epoch"]:
            per_epoch.append(cls(opt, **cfg))
        else:
            per_iter.append(cls(opt, **cfg))
    lrs = []
    for _ in range(train.epochs):
        for _ in range(iters_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            for s in per_iter:
                s.step()
        for s in per_epoch:
            s.step()
    return lrs


@pytest.mark.parametrize("warmup", [1, 2, 6])
def test_warmup_rises_linearly_from_a_tenth_to_the_full_lr(warmup):
    train = TrainConfig(epochs=3, lr=0.5, lr_schedule="constant", warmup_iters=warmup)
    lrs = engine_lrs(train, 4)
    ramp = [0.5 * (0.1 + 0.9 * i / (warmup - 1)) for i in range(warmup - 1)]  # full lr from iteration warmup - 1
    assert lrs == pytest.approx(ramp + [0.5] * (12 - len(ramp)))


@pytest.mark.parametrize("schedule,warmup", [("cosine", 0), ("cosine", 7), ("cosine_iter", 5),
                                              ("step", 3), ("constant", 4)])
def test_nas_benchmark_loop_lr_is_the_engine_lr(schedule, warmup):
    train = TrainConfig(epochs=5, lr=0.2, lr_schedule=schedule, warmup_iters=warmup)
    ours = [lr_at(train, it, 4, train.epochs) for it in range(20)]
    assert ours == pytest.approx(engine_lrs(train, 4), rel=1e-9, abs=1e-12)
