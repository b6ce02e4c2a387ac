"""What DMCP and magnitude pruning share: analysis, masks, export and the report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gml_core.api import BuildContext, ConfigError, GmlAlgorithm

from ..export import PRUNED_TYPE, model_spec, prune_model, save_pruned, save_torchscript
from ..flops import FlopsModel
from ..graph import analyze
from ..masking import ChannelMasker
from ..oneshot import fixed_summary
from ..report import compare, format_report, interleaved_latency, resources


def is_main_process() -> bool:
    from mmengine.dist import get_rank

    return get_rank() == 0


class PruningAlgorithm(GmlAlgorithm):
    """Analyses ``self.model`` once, masks channels during training, exports at the end."""

    def __init__(self, config: Any, context: BuildContext, input_shape: Sequence[int] | None, shape_key: str):
        super().__init__(config, context)
        shape = list(input_shape) if input_shape else list(context.data.input_shape)
        self.input_shape = shape
        self.graph = analyze(self.model, shape, config.exclude, shape_key=shape_key, exclude_key="algorithm.exclude")
        if not self.graph.prunable:
            raise ConfigError([("algorithm.model", f"{config.model.type} has no prunable channel group "
                                                  f"(fixed: {fixed_summary(self.graph)}; see `gml prune analyze`)")])
        self.flops = FlopsModel(self.graph, self.model)
        self.masker = ChannelMasker(self.model, self.graph)
        self._deployed: nn.Module | None = None
        self.accuracy_before: dict[str, float] = {}

    def ce_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=self.context.train.label_smoothing)

    def optimizer_param_groups(self) -> Any:
        return [p for p in self.model.parameters() if p.requires_grad]

    def deploy_model(self) -> nn.Module:
        return self._deployed if self._deployed is not None else self.model

    def original_spec(self) -> tuple[dict[str, Any], dict[str, int]]:
        """The spec that rebuilds the unpruned architecture, plus channels already pruned.

        Usually the config's model; when it is initialised from an exported checkpoint
        (pruning a pruned model), that checkpoint's base spec and channel counts.
        """
        spec = self.model_spec.to_dict()
        if spec.get("type") == PRUNED_TYPE:
            return dict(spec["base"]), dict(spec.get("channels", {}))
        return spec, {}

    def export_spec(self, counts: Mapping[int, int]) -> dict[str, Any]:
        """The ``model_spec`` that rebuilds the model pruned to ``counts``."""
        base, previous = self.original_spec()
        spec = model_spec(base, self.graph, counts)
        spec["channels"] = {**previous, **spec["channels"]}
        return spec

    def plain_model(self) -> nn.Module:
        """A hook-free deep copy of the full model (for the 'before' measurements)."""
        with self.masker.paused():
            return copy.deepcopy(self.model)

    def export_pruned(self, keep: Mapping[int, torch.Tensor]) -> nn.Module:
        """The physically smaller model for ``keep`` indices per group."""
        with self.masker.paused():
            return prune_model(self.model, self.graph, keep)

    def write_export(self, run: Any, small: nn.Module, counts: Mapping[int, int], before: nn.Module,
                     metrics_before: Mapping[str, float], metrics_after: Mapping[str, float],
                     extra: Mapping[str, Any] = ()) -> dict[str, str]:
        """Save ``pruned.pth``, TorchScript and the resource report; returns summary rows."""
        work_dir = Path(run.work_dir)
        spec = self.export_spec(counts)
        cpu_before = copy.deepcopy(before).cpu()
        cpu_after = copy.deepcopy(small).cpu()
        before_res, after_res = resources(cpu_before, self.input_shape), resources(cpu_after, self.input_shape)
        latency = interleaved_latency({"before": cpu_before, "after": cpu_after}, self.input_shape,
                                      self.config.latency_batches)
        before_res["latency_ms"], after_res["latency_ms"] = latency["before"], latency["after"]
        report = compare(before_res, after_res)
        report["before"].update(metrics_before)
        report["after"].update(metrics_after)
        report["channels"] = dict(spec["channels"])
        report.update(dict(extra))
        rows: dict[str, str] = {}
        if is_main_process():
            ckpt = save_pruned(work_dir / "pruned.pth", cpu_after, spec,
                               {"flops": report["after"]["flops"], "params": report["after"]["params"]})
            script = save_torchscript(cpu_after, self.input_shape, work_dir / "pruned_torchscript.pt")
            from gml_core.api import atomic_write_text
            atomic_write_text(work_dir / "prune_report.json", json.dumps(report, indent=2))
            atomic_write_text(work_dir / "prune_report.md", format_report(report, f"{self.config.type} pruning"))
            rows.update({"pruned checkpoint": str(ckpt), "pruned TorchScript": str(script),
                         "prune report": str(work_dir / "prune_report.md")})
        rows.update(_summary_rows(report))
        return rows


def _summary_rows(report: Mapping[str, Any]) -> dict[str, str]:
    from gml_core.api import format_count
    b, a, r = report["before"], report["after"], report["ratio"]
    rows = {
        "pruned params": f"{format_count(b['params'], 'M')} -> {format_count(a['params'], 'M')} (x{r['params']:.3f})",
        "pruned FLOPs": f"{format_count(b['flops'], 'M')} -> {format_count(a['flops'], 'M')} (x{r['flops']:.3f})",
    }
    for batch in a["latency_ms"]:
        rows[f"CPU latency b{batch}"] = (f"{b['latency_ms'][batch]:.3f} ms -> {a['latency_ms'][batch]:.3f} ms "
                                         f"(x{r[f'latency_b{batch}']:.3f})")
    for key in sorted(k for k in a if k.startswith("accuracy")):
        before = f"{b[key]:.2f}" if key in b else "-"
        rows[f"{key} before -> pruned"] = f"{before} -> {a[key]:.2f}"
    return rows
