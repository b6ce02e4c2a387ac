"""``IAO``: integer-arithmetic-only quantization-aware training (Jacob et al., CVPR 2018).

Training runs the prepared model: weights and activations pass through fake
quantization (quantize-dequantize with straight-through gradients), BN statistics
and then observer ranges are frozen on schedule, and after training the model is
converted to real int8 kernels, evaluated, timed and exported.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gml_core.api import ConfigError, GmlAlgorithm, GmlUserError

from .config import IAOConfig
from .quantizers.base import Quantizer, example_batch, prefix_config_error
from .report import int8_report, summary_rows


def _log(message: str) -> None:
    from mmengine.logging import print_log

    print_log(message, logger="current", level=logging.INFO)


class IAO(GmlAlgorithm):
    """QAT of ``algorithm.model`` with ``algorithm.quantizer``; int8 results in the run summary."""

    config_class = IAOConfig

    def __init__(self, config: IAOConfig, context: Any):
        if config.freeze_observer_after.unit != "never" and config.freeze_observer_after.value == 0:
            raise GmlUserError("algorithm.freeze_observer_after: observers must see data before they freeze; "
                               "use 1 iter or more (or \"never\")")
        super().__init__(config, context)
        self.float_spec = self.model_spec.to_dict()
        self.from_checkpoint = bool(config.model.args.get("init_from"))
        float_model = self.model
        # the start model, outside the module tree: fp32 reference for accuracy (init_from), size and latency
        object.__setattr__(self, "float_start", copy.deepcopy(float_model).cpu().eval())
        self.quantizer: Quantizer = context.build("quantizer", config.quantizer, "algorithm.quantizer")
        try:
            self.model = self.quantizer.prepare(float_model, example_batch(context.data.input_shape))
        except ConfigError as exc:
            raise prefix_config_error(exc, "algorithm.quantizer") from None
        self.distiller = None
        if config.distiller is not None:
            from gml_kd.api import build_distiller

            example = example_batch(context.data.input_shape)
            self.quantizer.initialize_weight_ranges(self.model, example)  # fixed buffer shapes from here on
            with self.quantizer.observers_paused(self.model):  # the distiller's dry run calibrates nothing
                self.distiller = build_distiller(config.distiller, self.model, context, "algorithm.distiller")
        self.iters_per_epoch = 1
        self.bn_frozen = False
        self.observers_frozen = False

    # -- training ---------------------------------------------------------------------------
    def before_train(self, run: Any) -> None:
        self.iters_per_epoch = max(int(run.iters_per_epoch or 1), 1)
        _log(f"IAO: {self.quantizer.describe()}; freeze BN after {self.config.freeze_bn_after}, "
             f"observers after {self.config.freeze_observer_after}")
        if self.distiller is not None:
            for line in self.distiller.descriptions:
                _log(line)

    def before_train_iter(self, iteration: int, epoch: int, max_iters: int) -> None:
        bn_due = not self.bn_frozen and iteration >= self.config.freeze_bn_after.iteration(self.iters_per_epoch)
        obs_due = not self.observers_frozen and \
            iteration >= self.config.freeze_observer_after.iteration(self.iters_per_epoch)
        if bn_due or obs_due:
            _broadcast_buffers(self.model)  # every rank freezes rank 0's statistics and ranges
        if bn_due:
            self.quantizer.freeze_bn(self.model)
            self.bn_frozen = True
            _log(f"IAO: BN statistics frozen at iteration {iteration}")
        if obs_due:
            self.quantizer.freeze_observers(self.model)
            self.observers_frozen = True
            _log(f"IAO: observers (scales, zero points) frozen at iteration {iteration}")

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        smoothing = self.context.train.label_smoothing
        if self.distiller is None:
            return {"loss_cls": F.cross_entropy(self.model(inputs), labels, label_smoothing=smoothing)}
        from gml_kd.api import distill_forward

        logits, losses = distill_forward(self.distiller, self.model, inputs)
        if self.config.student_loss_weight > 0:
            losses["loss_cls"] = self.config.student_loss_weight * F.cross_entropy(
                logits, labels, label_smoothing=smoothing)
        return losses

    def predict(self, inputs: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Fake-quantized logits; validation data never updates the observers."""
        with self.quantizer.observers_paused(self.model):
            return self.model(inputs)

    # -- after training -----------------------------------------------------------------------
    def after_train(self, run: Any) -> dict[str, Any]:
        """Convert to int8, evaluate, time and export; returns the summary rows."""
        _broadcast_buffers(self.model)
        self.quantizer.freeze_bn(self.model)
        self.quantizer.freeze_observers(self.model)  # training is over: later forwards change nothing
        self.bn_frozen = self.observers_frozen = True
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if distributed and torch.distributed.get_rank() != 0:
            return {}
        report = int8_report(self.quantizer, self.model, self.float_start, self.from_checkpoint, run,
                             Path(run.work_dir), self.config, self.float_spec, self.context.data.input_shape)
        return summary_rows(self.quantizer, report)

    def deploy_model(self) -> nn.Module:
        """The fake-quantized model (what trains and validates); the int8 model is built after training."""
        return self.model


def _broadcast_buffers(model: nn.Module) -> None:
    """In a distributed run, give every rank rank 0's buffers (BN statistics, observer ranges, scales)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    with torch.no_grad():
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)
