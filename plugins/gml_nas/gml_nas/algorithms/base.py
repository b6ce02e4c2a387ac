"""What BigNAS and SPOS share: the supernet, its mutator, subnet activation and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import attrs
import torch
from torch import nn

from gml_core.api import AlgorithmConfig, ComponentSpec, ConfigError, GmlAlgorithm, component_field

from ..classifier import ImageClassifierSearch
from ..evaluation import DynamicDistEvalHook, DynamicEvalConfig, calibrate_bn, format_results
from ..search_config import SearchConfig
from ..specs import key_prefix


def _ratio(name: str):
    def check(instance: Any, attribute: Any, value: float) -> None:
        if not 0.0 <= value < 1.0:
            raise ConfigError([(f"algorithm.{name}", f"must be in [0, 1), got {value}")])
    return check


@attrs.frozen(kw_only=True)
class OneShotConfig(AlgorithmConfig):
    """Fields of every one-shot NAS algorithm (``model`` is the supernet)."""

    mutator: ComponentSpec = component_field("mutator", default=ComponentSpec("StatelessMutator", {}))
    drop_ratio: float = attrs.field(default=0.0, validator=_ratio("drop_ratio"))
    val_calib_batches: int = 10
    norm_bias_decay: bool = False
    search_eval_cfg: Optional[DynamicEvalConfig] = None
    search: SearchConfig = attrs.field(factory=SearchConfig)


class OneShotNAS(GmlAlgorithm):
    """Base of ``BigNAS`` and ``SPOS``: trains ``self.model`` (an ``ImageClassifierSearch``)."""

    config_class = OneShotConfig
    is_gml_nas = True

    def __init__(self, config: OneShotConfig, context: Any):
        with key_prefix("algorithm.model"):
            super().__init__(config, context)
        if not isinstance(self.model, ImageClassifierSearch):
            raise ConfigError([("algorithm.model.type", f"{config.type} trains a supernet: use "
                                f"gml.ImageClassifierSearch, got {config.model.type}")])
        self.mutator = context.build("mutator", config.mutator, "algorithm.mutator").prepare(self.model.space)
        self.eval_hook = (DynamicDistEvalHook(config.search_eval_cfg, self.model.space)
                          if config.search_eval_cfg is not None else None)
        self.run_info: Any = None
        self.subnet_results: dict[str, dict[str, float]] = {}
        self._validations = 0
        self._evaluated_at: Optional[int] = None
        self._bn_stale = False

    # -- subnets ----------------------------------------------------------------------
    def drop_settings(self, largest: bool) -> tuple[float, float]:
        """(dropout, drop-path) for a subnet; overridden by BigNAS (largest subnet only)."""
        return self.config.drop_ratio, 0.0

    def activate(self, subnet: Mapping[str, Any], largest: bool = False, training: bool = False) -> None:
        """Run ``subnet`` next; regularisation only while training."""
        self.model.set_subnet(subnet)
        drop, drop_path = self.drop_settings(largest) if training else (0.0, 0.0)
        self.model.set_dropout(drop)
        self.model.set_drop_path(drop_path)

    def before_train_iter(self, iteration: int, epoch: int, max_iters: int) -> None:
        self._bn_stale = True

    def predict(self, inputs: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Validation runs the largest subnet; after training steps its BatchNorm statistics are first
        re-calibrated on ``val_calib_batches`` training batches (0: keep the running statistics)."""
        if self.model.subnet != self.model.space.max():
            self.activate(self.model.space.max())
        n = self.config.val_calib_batches
        if self._bn_stale and n != 0 and self.run_info is not None:
            calibrate_bn(self.model, self.run_info.train_loader, n)
            self.model.eval()
        self._bn_stale = False
        return self.model(inputs)

    def deploy_model(self) -> nn.Module:
        """The largest subnet, exported as a static model (what the run summary counts)."""
        self.activate(self.model.space.max())
        return self.model.export().eval()

    def optimizer_param_groups(self) -> Any:
        """Weight decay on conv / linear weights only; BatchNorm scales and shifts and biases are
        not decayed unless ``norm_bias_decay`` (the usual no-bias-decay practice: decay would pull the
        zero-initialised residual scales and the BN parameters every subnet shares towards 0)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if self.config.norm_bias_decay:
            return params
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]

    # -- lifecycle --------------------------------------------------------------------
    def before_train(self, run: Any) -> None:
        self.run_info = run

    def on_validation(self, iteration: int, epoch: int) -> None:
        """Called through ``gml_on_evaluate``: evaluate the configured subnets every ``interval`` validations."""
        self._validations += 1
        cfg = self.config.search_eval_cfg
        if self.eval_hook is None or self.run_info is None or cfg.interval <= 0 or self._validations % cfg.interval:
            return
        self._dynamic_eval(iteration, epoch)

    def _dynamic_eval(self, iteration: int, epoch: int) -> dict[str, dict[str, float]]:
        info = self.run_info
        results = self.eval_hook.run(self, info.train_loader, info.val_loader, info.data.num_classes,
                                     info.data.input_shape)
        self.subnet_results, self._evaluated_at = results, iteration
        self._log(results, epoch)
        return results

    def _log(self, results: Mapping[str, Mapping[str, float]], epoch: int) -> None:
        from mmengine.logging import MMLogger, print_log

        units = self.config.search_eval_cfg.evaluator.units
        for name, line in format_results(results, units, self.eval_hook.labels).items():
            print_log(f"epoch {epoch}: {name}: {line}", logger=MMLogger.get_current_instance())
        runner = getattr(self.run_info, "runner", None)
        if runner is not None and runner.rank == 0:
            scalars = {f"nas/{n}/{k}": v for n, m in results.items() for k, v in m.items()}
            runner.visualizer.add_scalars(scalars, step=epoch)

    def after_train(self, run: Any) -> dict[str, Any]:
        """Save the supernet weights, evaluate the configured subnets, report both."""
        from gml_core.api import save_checkpoint
        self.run_info = run
        rows: dict[str, Any] = {}
        runner = getattr(run, "runner", None)
        if self.eval_hook is not None:
            current = runner.iter if runner is not None else None
            results = self.subnet_results if (current is not None and current == self._evaluated_at) else \
                self._dynamic_eval(current or 0, getattr(runner, "epoch", 0))
            rows.update(format_results(results, self.config.search_eval_cfg.evaluator.units, self.eval_hook.labels))
        if runner is None or runner.rank == 0:
            path = save_checkpoint(supernet_checkpoint(self), Path(run.work_dir) / "supernet.pth")
            rows["supernet"] = str(path)
        return rows


def supernet_checkpoint(algorithm: OneShotNAS) -> dict[str, Any]:
    """``{"state_dict": supernet weights, "nas": {...}}``, loadable with ``weights_only=True``."""
    state = {k: v.detach().cpu() for k, v in algorithm.model.state_dict().items()}
    return {"state_dict": state, "nas": {"algorithm": algorithm.config.type, "keys": algorithm.model.space.keys()}}
