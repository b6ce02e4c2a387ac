"""Magnitude channel pruning (L1 / L2 / BN-scale) on dependency groups, one-shot or iterative.

Step ``k`` of ``steps`` (at the start of epoch ``k * step_interval``) prunes to the
geometric interpolation ``target^((k+1)/steps)`` of the final budget, ranking only
the channels still alive; training between steps fine-tunes the masked model. At
the end the masks are turned into a physically smaller model and exported.
"""

from __future__ import annotations

from typing import Any

import torch

from gml_core.api import BuildContext, ConfigError

from ..budget import resolve_target
from ..config import MagnitudePruningConfig
from ..importance import channel_scores, lowest_count, search_global, search_uniform, top_masks, uniform_counts
from .base import PruningAlgorithm


class MagnitudePruning(PruningAlgorithm):
    """Norm-based channel pruning to a FLOPs target or a keep ratio."""

    config_class = MagnitudePruningConfig

    def __init__(self, config: MagnitudePruningConfig, context: BuildContext):
        super().__init__(config, context, config.input_shape, "algorithm.input_shape")
        self.min_counts = {g.index: lowest_count(g, config.min_keep) for g in self.graph.prunable}
        self.target: float | None = None
        if config.target_flops is not None:
            self.target = resolve_target(config.target_flops, self.flops.full, "algorithm.target_flops")
            lowest = float(self.flops(self.min_counts))
            if self.target < lowest:
                raise ConfigError([("algorithm.target_flops",
                                    f"{self.target:.4g} FLOPs is below the {lowest:.4g} FLOPs "
                                    f"({100 * lowest / self.flops.full:.1f}% of the full model) that min_keep = "
                                    f"{config.min_keep} allows; raise target_flops or lower min_keep")])
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self._step_iters: list[int] = []
        self._latency: Any = None

    # -- schedule ----------------------------------------------------------------------
    def before_train(self, run: Any) -> None:
        cfg = self.config
        per_epoch = max(1, int(run.iters_per_epoch or 1))
        self._step_iters = [k * cfg.step_interval * per_epoch for k in range(cfg.steps)]
        if run.max_iters and self._step_iters[-1] >= run.max_iters:
            epochs = run.max_iters // per_epoch
            raise ConfigError([("algorithm.steps", f"{cfg.steps} pruning steps every {cfg.step_interval} epoch(s) "
                                                   f"need more than {self._step_iters[-1] // per_epoch} training "
                                                   f"epochs, but train.epochs = {epochs}")])
        if cfg.evaluate_before and int(self.steps_done) == 0:
            self.accuracy_before = run.evaluate(self.model)
        if not run.max_iters:
            while int(self.steps_done) < cfg.steps:
                self.prune_step(int(self.steps_done))

    def before_train_iter(self, iteration: int, epoch: int, max_iters: int) -> None:
        while int(self.steps_done) < len(self._step_iters) and iteration >= self._step_iters[int(self.steps_done)]:
            self.prune_step(int(self.steps_done))

    # -- one pruning step --------------------------------------------------------------------
    def step_target(self, step: int) -> float:
        """This step's FLOPs budget (or keep ratio), geometrically interpolated toward the final one."""
        frac = (step + 1) / self.config.steps
        if self.target is None:
            return self.config.keep_ratio ** frac
        return self.flops.full * (self.target / self.flops.full) ** frac

    @torch.no_grad()
    def prune_step(self, step: int) -> dict[int, int]:
        cfg = self.config
        alive = {gi: self.masker.mask(gi) > 0 for gi in self.masker.sizes}
        current = {gi: int(a.sum()) for gi, a in alive.items()}
        scores = {g.index: channel_scores(self.model, g, cfg.criterion) for g in self.graph.prunable}
        budget = self.step_target(step)
        if self.target is None:
            if cfg.allocation == "uniform":
                masks = top_masks(scores, uniform_counts(self.graph, budget, cfg.min_keep, cfg.round_to, current), alive,
                                  self.graph.blocks())
            else:
                total = sum(g.size for g in self.graph.prunable)
                masks = search_global(self.graph, scores, lambda c: sum(c.values()), budget * total, cfg.min_keep,
                                      alive, cfg.round_to)
        elif cfg.allocation == "latency":
            from ..latency import measured_latency, search_latency
            if self._latency is None:
                self._latency = measured_latency(self.model, self.graph, cfg.latency_batch, cfg.round_to, cfg.min_keep)
            counts = search_latency(self.graph, scores, lambda c: float(self.flops(c)), budget, cfg.min_keep,
                                    self._latency, cfg.round_to, alive)
            masks = top_masks(scores, counts, alive, self.graph.blocks())
        elif cfg.allocation == "uniform":
            counts = search_uniform(self.graph, lambda c: float(self.flops(c)), budget, cfg.min_keep, cfg.round_to,
                                    current)
            masks = top_masks(scores, counts, alive, self.graph.blocks())
        else:
            masks = search_global(self.graph, scores, lambda c: float(self.flops(c)), budget, cfg.min_keep, alive,
                                  cfg.round_to)
        self.masker.set_masks({gi: m.float() for gi, m in masks.items()})
        self.steps_done.fill_(step + 1)
        return self.masker.counts()

    # -- export --------------------------------------------------------------------------
    def after_train(self, run: Any) -> dict[str, str]:
        counts = self.masker.counts()
        small = self.export_pruned(self.masker.keep_indices())
        after = run.evaluate(small)
        rows = self.write_export(run, small, counts, self.plain_model(), self.accuracy_before, after,
                                 {"criterion": self.config.criterion, "allocation": self.config.allocation,
                                  "steps": self.config.steps})
        self._deployed = small
        return rows
