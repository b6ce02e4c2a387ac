"""``IAO``: integer-arithmetic-only quantization-aware training (Jacob et al., CVPR 2018).

Training runs the prepared model: weights and activations pass through fake
quantization (quantize-dequantize with straight-through gradients), BN statistics
and then observer ranges are frozen on schedule, and after training the model is
converted to real int8 kernels, evaluated, timed and exported.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from gml_core.algorithms import GmlAlgorithm
from gml_core.checkpoint import atomic_write_text, load_file
from gml_core.config.spec import ComponentSpec
from gml_core.errors import ConfigError

from .config import IAOConfig
from .engine import quantized_engine
from .export import (format_size, latency_ms, save_bytes, save_int8_state, to_torchscript,
                     torchscript_bytes)
from .quantizers.base import Quantizer, example_batch, prefix_config_error

INT8_TORCHSCRIPT = "model_int8.ts"
INT8_STATE = "model_int8.pth"
REPORT = "qat_report.json"


def _log(message: str) -> None:
    from mmengine.logging import print_log

    print_log(message, logger="current", level=logging.INFO)


def float_model_spec(spec: ComponentSpec, context: Any) -> dict[str, Any]:
    """Plain spec that rebuilds the float architecture (``model_spec`` of an ``init_from`` export wins)."""
    from gml_core.components import accepts, resolve
    from gml_core.config.converter import converter

    init_from = spec.args.get("init_from", "")
    base = ComponentSpec(spec.type, {k: v for k, v in spec.args.items() if k != "init_from"})
    if init_from:
        ckpt = load_file(init_from, context.trust_checkpoint)
        if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model_spec"), Mapping):
            base = converter.structure(dict(ckpt["model_spec"]), ComponentSpec)
    builder = resolve("model", base.type)
    injected = {"num_classes": context.data.num_classes, "in_channels": context.data.in_channels}
    extra = {k: v for k, v in injected.items() if k not in base.args and accepts(builder, k)}
    return base.with_args(**extra).to_dict()


class IAO(GmlAlgorithm):
    """QAT of ``algorithm.model`` with ``algorithm.quantizer``; int8 results in the run summary."""

    config_class = IAOConfig

    def __init__(self, config: IAOConfig, context: Any):
        super().__init__(config, context)
        self.float_spec = float_model_spec(config.model, context)
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
            from gml_kd.distiller import TeacherDistiller

            with self.quantizer.observers_paused(self.model):
                self.distiller = TeacherDistiller(config.distiller, self.model, context)
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
        with self.distiller.recording():
            self.distiller.teacher_forward(inputs)
            logits = self.model(inputs)
            losses = self.distiller.head_losses()
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
        report = self.int8_report(run, Path(run.work_dir))
        rows = {"quantizer": self.quantizer.describe()}
        fp32, int8 = report["fp32"], report["int8"]
        rows[f"fp32 top1 ({fp32['weights']})"] = f"{fp32['top1']:.2f}"
        rows["int8 top1"] = f"{int8['top1']:.2f} ({int8['top1'] - fp32['top1']:+.2f})"
        rows["fp32 / int8 size (TorchScript)"] = (f"{format_size(fp32['torchscript_bytes'])} / "
                                                  f"{format_size(int8['torchscript_bytes'])} "
                                                  f"({fp32['torchscript_bytes'] / int8['torchscript_bytes']:.1f}x)")
        lat = report["latency"]
        threads = f"{lat['threads']} thread{'s' if lat['threads'] != 1 else ''}"
        rows[f"fp32 / int8 CPU latency (batch {lat['batch_size']}, {threads})"] = (
            f"{lat['fp32_ms']:.3f} / {lat['int8_ms']:.3f} ms ({lat['fp32_ms'] / lat['int8_ms']:.2f}x)")
        for key in ("int8_torchscript", "int8_state_dict", "report"):
            if report["files"].get(key):
                rows[key.replace("_", " ")] = report["files"][key]
        return rows

    def int8_report(self, run: Any, work_dir: Path) -> dict[str, Any]:
        """Everything the summary shows, also written to ``qat_report.json``."""
        backend = self.quantizer.backend
        shape = (self.config.latency_batch_size, *self.context.data.input_shape[1:])
        example = torch.randn(shape)
        with quantized_engine(backend):
            int8 = self.quantizer.convert(self.model)
            int8_top1 = run.evaluate(int8).get("accuracy/top1", float("nan"))
            if self.from_checkpoint:
                fp32_model, weights = self.float_start, "init_from"
            else:
                fp32_model, weights = self.quantizer.fake_quant_disabled(self.model).cpu().eval(), \
                    "QAT weights, fake quant off"
            fp32_top1 = run.evaluate(fp32_model).get("accuracy/top1", float("nan"))
            meta = {"backend": backend, "quantizer": self.quantizer.spec(), "input_shape": list(shape)}
            int8_ts = to_torchscript(int8, example)
            fp32_ts = to_torchscript(copy.deepcopy(self.float_start), example)
            int8_bytes = torchscript_bytes(int8_ts, meta)
            fp32_bytes = torchscript_bytes(fp32_ts)
            runs = self.config.latency_runs
            fp32_ms = latency_ms(fp32_ts, example, runs)
            int8_ms = latency_ms(int8_ts, example, runs)
        files: dict[str, str] = {}
        if self.config.export:
            files["int8_torchscript"] = str(save_bytes(int8_bytes, work_dir / INT8_TORCHSCRIPT).resolve())
            files["int8_state_dict"] = str(save_int8_state(int8, work_dir / INT8_STATE, self.float_spec,
                                                           self.quantizer.spec(),
                                                           self.context.data.input_shape).resolve())
        report = {
            "quantizer": self.quantizer.spec(),
            "fp32": {"top1": fp32_top1, "weights": weights, "torchscript_bytes": len(fp32_bytes)},
            "int8": {"top1": int8_top1, "torchscript_bytes": len(int8_bytes),
                     "state_dict_bytes": Path(files["int8_state_dict"]).stat().st_size if files else None},
            "latency": {"batch_size": shape[0], "threads": torch.get_num_threads(), "runs": runs,
                        "fp32_ms": fp32_ms, "int8_ms": int8_ms, "engine": backend},
            "files": files,
        }
        files["report"] = str(atomic_write_text(work_dir / REPORT, json.dumps(report, indent=2)).resolve())
        _log(f"IAO: int8 top1 {int8_top1:.2f} vs fp32 {fp32_top1:.2f} ({weights}); "
             f"latency {fp32_ms:.3f} -> {int8_ms:.3f} ms")
        return report

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
