"""Shared pieces of the gml-nas recipe benchmarks: train a one-shot supernet in-process exactly as
``gml run`` does (the algorithm's ``train_step``, its optimiser parameter groups, the learning rate
of the config's schedule and warm-up), pick subnets that span the FLOPs range, measure them inside
the supernet (BN re-calibrated, no fine-tuning) and the same architectures trained from scratch.

Not a benchmark by itself: ``nas_recipe_ablation.py`` and ``nas_fashion_mnist.py`` use it.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]


def load(config: Path, overrides: Sequence[str] = ()) -> tuple[Any, Any]:
    from gml_core.api import build_component, load_config

    cfg = load_config(str(config), list(overrides))
    return cfg, build_component("dataset", cfg.data, "data")


def build_algorithm(cfg: Any, bundle: Any, seed: int) -> Any:
    from gml_core.api import BuildContext, build_algorithm

    torch.manual_seed(seed)
    random.seed(seed)
    return build_algorithm(cfg.algorithm, BuildContext(bundle.info, cfg.train))


def lr_at(train: Any, it: int, iters_per_epoch: int, epochs: int) -> float:
    """The learning rate at iteration ``it`` as the engine's schedulers give it: cosine (per epoch or
    per iteration), step or constant, times an optional linear warm-up from 0.1 (mmengine's LinearLR,
    full lr at iteration ``warmup_iters - 1``). Closed form rather than mmengine's chained schedulers: the
    per-epoch cosine stays bit-identical to the earlier harness, so its documented figures reproduce
    (tests/core/test_core_lr_schedule.py checks it against mmengine)."""
    from gml_core._internal.training.optim import step_milestones

    epoch = it // iters_per_epoch
    if train.lr_schedule == "cosine":
        lr = 0.5 * train.lr * (1.0 + math.cos(math.pi * epoch / epochs))
    elif train.lr_schedule == "cosine_iter":
        lr = 0.5 * train.lr * (1.0 + math.cos(math.pi * it / (epochs * iters_per_epoch)))
    elif train.lr_schedule == "step":
        lr = train.lr * 0.1 ** sum(epoch >= s for s in step_milestones(train.lr_steps, epochs))
    else:
        lr = train.lr
    if it < train.warmup_iters - 1:
        lr *= 0.1 + 0.9 * it / (train.warmup_iters - 1)
    return lr


def fit(step: Callable[[Any, Any], Any], before_iter: Callable[[int, int, int], None], params_owner: Any,
        cfg: Any, train_set: Any, epochs: int, seed: int) -> float:
    """``epochs`` passes of ``step(batch, optim_wrapper)``; returns seconds."""
    wrapper = params_owner.build_optim_wrapper(cfg.train)
    loader = DataLoader(train_set, batch_size=cfg.train.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    max_iters, it, t0 = epochs * len(loader), 0, time.time()
    for epoch in range(epochs):
        for batch in loader:
            for group in wrapper.optimizer.param_groups:
                group["lr"] = lr_at(cfg.train, it, len(loader), epochs)
            before_iter(it, epoch, max_iters)
            params_owner.train()
            step(batch, wrapper)
            it += 1
    return time.time() - t0


def train_supernet(cfg: Any, bundle: Any, epochs: int, seed: int) -> tuple[Any, float]:
    algo = build_algorithm(cfg, bundle, seed)
    seconds = fit(algo.train_step, algo.before_train_iter, algo, cfg, bundle.train, epochs, seed)
    return algo, seconds


def subnet_flops(algo: Any, subnet: dict, shape: Sequence[int]) -> float:
    from gml_core.api import count_flops

    algo.activate(subnet)
    return float(count_flops(algo.model, tuple(shape)))


def spanning_subnets(algo: Any, shape: Sequence[int], seed: int = 0, pool: int = 300,
                     quantiles: Sequence[float] = (0.2, 0.5, 0.8)) -> list[tuple[str, dict]]:
    """min, the random subnets at the given FLOPs quantiles of ``pool`` random draws, max."""
    from gml_nas.mutator import StatelessMutator

    space = algo.model.space
    mut = StatelessMutator(seed).prepare(space)
    draws = sorted(((subnet_flops(algo, s, shape), i, s) for i, s in
                    enumerate(mut.random_subnet() for _ in range(pool))), key=lambda t: (t[0], t[1]))
    mids = [(f"q{int(q * 100)}", draws[min(len(draws) - 1, int(q * len(draws)))][2]) for q in quantiles]
    return [("min", space.min()), *mids, ("max", space.max())]


def calib_batches(train_set: Any, batch_size: int, n: int, seed: int = 0) -> list:
    import itertools

    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return list(itertools.islice(loader, n))


def supernet_accuracy(algo: Any, subnet: dict, calib: list, test_set: Any) -> float:
    """Top-1 (%) of ``subnet`` inside the supernet after BN re-calibration on ``calib``."""
    from gml_nas.evaluation import calibrate_bn, evaluate_accuracy, preserved_bn_state

    with preserved_bn_state(algo.model), torch.no_grad():
        algo.activate(subnet)
        calibrate_bn(algo.model, calib, -1)
        return evaluate_accuracy(algo.model, DataLoader(test_set, batch_size=256), 10)["accuracy/top1"]


def scratch_accuracy(cfg: Any, bundle: Any, algo: Any, subnet: dict, epochs: int, seed: int) -> float:
    """The same architecture as a plain network (``gml.StaticSubnet``, ``reinit = true``), trained alone on
    the labels (cross-entropy with the head's label smoothing, same optimiser, lr schedule, epochs)."""
    import torch.nn.functional as F

    from gml_core.api import make_optim_wrapper
    from gml_nas.evaluation import evaluate_accuracy

    torch.manual_seed(seed)
    algo.model.set_subnet(subnet)
    net = algo.model.export()
    for m in net.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    smooth = algo.model.head.label_smooth_val

    class Owner(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def build_optim_wrapper(self, train: Any) -> Any:
            return make_optim_wrapper([p for p in self.parameters()], train)

    owner = Owner()

    def step(batch: Any, wrapper: Any) -> None:
        x, y = batch
        wrapper.update_params(F.cross_entropy(owner.net(x), y, label_smoothing=smooth))

    fit(step, lambda *a: None, owner, cfg, bundle.train, epochs, seed)
    return evaluate_accuracy(net.eval(), DataLoader(bundle.val, batch_size=256), 10)["accuracy/top1"]


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(xs, ys).statistic)
