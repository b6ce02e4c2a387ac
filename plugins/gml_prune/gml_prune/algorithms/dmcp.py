"""The DMCP algorithm: sandwich training of weights, Markov architecture parameters, export.

Each iteration (1) trains the weights on ``mutator.num_sample`` sampled widths of
the same batch (gradients accumulated, one optimiser step: the sandwich rule),
then (2) from ``arch_start_training`` on, every ``arch_train_freq`` iterations,
updates the architecture parameters with their own optimiser on the full-width
model whose BN outputs are scaled by the marginal keep probabilities: task loss
plus FLOPs loss toward ``mutator.target_flops``. After training the deployed widths
are the expected widths or the best of ``arch_sample_num`` chain samples near the
target, and the physically pruned model is exported.
"""

from __future__ import annotations

from typing import Any

import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict

from gml_core.api import BuildContext

from ..config import DMCPConfig
from ..dmcp import DMCPMutator, flops_loss
from ..export import prefix_keep
from ..report import batch_scores, recalibrate_bn, split_batches
from .base import PruningAlgorithm


class DMCP(PruningAlgorithm):
    """Differentiable Markov Channel Pruning (Guo et al., CVPR 2020)."""

    config_class = DMCPConfig

    def __init__(self, config: DMCPConfig, context: BuildContext):
        super().__init__(config, context, config.mutator.input_shape, "algorithm.mutator.input_shape")
        self.mutator = DMCPMutator(config.mutator, self.graph, self.flops)
        self.register_buffer("sample_prob", torch.ones(()))
        self._iter = 0
        self.masker.set_counts(self.mutator.max_counts())

    # -- optimisers ----------------------------------------------------------------------
    def build_optim_wrapper(self, train: Any) -> OptimWrapperDict:
        from gml_core.api import make_optimizer
        clip = dict(max_norm=train.grad_clip) if train.grad_clip else None
        weights = OptimWrapper(make_optimizer(self.optimizer_param_groups(), train), clip_grad=clip)
        m = self.config.mutator
        arch = torch.optim.Adam(self.mutator.parameters(), lr=m.arch_learning_rate,
                                weight_decay=m.arch_weight_decay)
        return OptimWrapperDict(model=weights, architecture=OptimWrapper(arch))

    # -- training ------------------------------------------------------------------------
    def before_train(self, run: Any) -> None:
        self.masker.set_counts(self.mutator.max_counts())

    def before_train_iter(self, iteration: int, epoch: int, max_iters: int) -> None:
        self._iter = iteration

    @property
    def arch_training(self) -> bool:
        return self._iter >= self.config.arch_start_training

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        inputs, labels = self.data_preprocessor(data, True)
        weights = optim_wrapper["model"]
        losses: dict[str, torch.Tensor] = {}
        with weights.optim_context(self):
            for i, kind in enumerate(self.config.mutator.arch_sample_type):
                self.masker.set_counts(self.mutator.sample(kind, self.arch_training, float(self.sample_prob)))
                loss = self.ce_loss(self.model(inputs), labels)
                weights.backward(loss)
                losses[f"loss_{i}_{kind}"] = loss.detach()
        weights.step()
        weights.zero_grad()
        log = dict(self.parse_losses(losses)[1])
        if self.arch_training:
            self.sample_prob.mul_(self.config.mutator.sample_prob_decay)
            if (self._iter - self.config.arch_start_training) % self.config.arch_train_freq == 0:
                log.update(self.arch_step(inputs, labels, optim_wrapper["architecture"]))
                weights.zero_grad()
        self.masker.set_counts(self.mutator.max_counts())
        return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in log.items()}

    def arch_step(self, inputs: torch.Tensor, labels: torch.Tensor, arch: OptimWrapper) -> dict[str, torch.Tensor]:
        """One update of the architecture parameters: task loss at marginal-scaled full width + FLOPs loss."""
        self.masker.set_counts(self.mutator.max_counts())
        self.masker.set_soft(self.mutator.channel_scales())
        try:
            with arch.optim_context(self):
                task = self.ce_loss(self.model(inputs), labels)
                expected = self.mutator.expected_flops()
                floss = self.config.flops_loss_weight * flops_loss(
                    expected, self.mutator.target, self.flops.full, self.config.flops_loss_type)
                arch.backward(task + floss)
            arch.step()
            arch.zero_grad()
        finally:
            self.masker.clear_soft()
        return {"arch_task": task.detach(), "arch_flops": floss.detach(),
                "expected_flops_ratio": (expected / self.flops.full).detach()}

    def predict(self, inputs: torch.Tensor, labels: Any = None) -> torch.Tensor:
        if self._deployed is None:
            self.masker.set_counts(self.mutator.max_counts())
        return self.deploy_model()(inputs)

    # -- choosing and exporting the deployed widths --------------------------------------------
    def candidate_widths(self) -> list[dict[int, int]]:
        """The expected widths, then up to ``arch_sample_num`` chain samples within the FLOPs tolerance."""
        candidates = [self.mutator.expected_sample()]
        if self.config.deploy_width == "expected":
            return candidates
        target, tol = self.mutator.target, self.config.flops_tolerance
        for _ in range(self.config.arch_sample_num):
            best, best_gap = None, float("inf")
            for _ in range(200):
                counts = self.mutator.chain_sample()
                gap = abs(float(self.flops(counts)) / target - 1.0)
                if gap < best_gap:
                    best, best_gap = counts, gap
                if gap <= tol:
                    break
            candidates.append(best)
        return candidates

    def select_width(self, run: Any) -> tuple[dict[int, int], torch.nn.Module, list[dict[str, float]]]:
        """Pick the candidate with the lowest loss on training batches (after BN recalibration).

        Every candidate is calibrated and scored on the same batches; a candidate above
        the FLOPs target by more than ``flops_tolerance`` only wins when all are.
        """
        cfg = self.config
        calib, score = split_batches(run.train_loader, cfg.calib_batches,
                                     cfg.score_batches if cfg.deploy_width == "best" else 0)
        limit = self.mutator.target / self.flops.full * (1 + cfg.flops_tolerance)
        table, best = [], None
        for i, counts in enumerate(self.candidate_widths()):
            small = self.export_pruned(prefix_keep(counts, self.graph))
            recalibrate_bn(small, calib, len(calib))
            scores = batch_scores(small, score) if score else {"top1": 0.0, "loss": 0.0}
            ratio = float(self.flops(counts)) / self.flops.full
            table.append({"candidate": "expected" if i == 0 else f"sample{i}", "flops_ratio": ratio,
                          "train_top1": scores["top1"], "train_loss": scores["loss"]})
            key = (ratio <= limit, -scores["loss"], -ratio)
            if best is None or key > best[0]:
                best = (key, counts, small)
        return best[1], best[2], table

    def after_train(self, run: Any) -> dict[str, str]:
        self.masker.set_counts(self.mutator.max_counts())
        full = self.plain_model()
        if self.mutator.max_counts() != {g.index: g.size for g in self.graph.prunable}:
            full = self.export_pruned(prefix_keep(self.mutator.max_counts(), self.graph))
        calib, _ = split_batches(run.train_loader, self.config.calib_batches, 0)
        recalibrate_bn(full, calib, len(calib))
        counts, small, table = self.select_width(run)
        before = run.evaluate(full)
        after = run.evaluate(small)
        with torch.no_grad():
            expected = float(self.mutator.expected_flops()) / self.flops.full
        extra = {"candidates": table, "expected_flops_ratio": expected,
                 "target_flops_ratio": self.mutator.target / self.flops.full}
        rows = self.write_export(run, small, counts, full, before, after, extra)
        self._deployed = small
        rows["DMCP expected FLOPs / target"] = f"{expected:.3f} / {self.mutator.target / self.flops.full:.3f}"
        return rows
