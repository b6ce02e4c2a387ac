"""The mmengine hook that connects a training run to gml: algorithm lifecycle,
plugin hooks, plain-data checkpoints and a progress display."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from .console import EpochLines
from .plain_state import make_plain_checkpoint, restore_checkpoint
from .run_info import RunInfo


def unwrap(model: Any) -> Any:
    return model.module if is_model_wrapper(model) else model


class GmlHook(Hook):
    """Calls ``before_train``/``before_train_iter``/``after_train`` of the algorithm,
    broadcasts ``gml_on_train_step`` and ``gml_on_evaluate``, and keeps checkpoints plain."""

    priority = "NORMAL"

    def __init__(self, run_info: RunInfo, host: Any, progress: bool = False, console: str = "normal"):
        self.run_info = run_info
        self.host = host
        self.progress = progress
        self.console = console
        self.last_metrics: dict[str, float] = {}
        self.summary_rows: dict[str, Any] = {}
        self._lines: EpochLines | None = None

    def before_train(self, runner: Any) -> None:
        info = self.run_info
        info.runner = runner
        info.max_iters = runner.max_iters
        info.iters_per_epoch = len(runner.train_dataloader)
        if runner.distributed:
            from .dist import sync_gradients

            sync_gradients(runner.optim_wrapper)
        unwrap(runner.model).before_train(info)
        if runner.rank == 0:
            self._lines = EpochLines(enabled=self.console == "normal", bar=self.progress and self.console != "quiet")

    def before_train_epoch(self, runner: Any) -> None:
        if self._lines is not None:
            self._lines.start_epoch(runner.epoch + 1, runner.max_epochs, len(runner.train_dataloader))

    def after_train_epoch(self, runner: Any) -> None:
        if self._lines is not None:
            self._lines.end_epoch(runner.epoch + 1, runner.max_epochs)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        unwrap(runner.model).before_train_iter(runner.iter, runner.epoch, runner.max_iters)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        losses = {k: float(v.detach()) if hasattr(v, 'detach') else float(v) for k, v in (outputs or {}).items()}
        self.host.notify("gml_on_train_step", algorithm=unwrap(runner.model), iteration=runner.iter + 1,
                         epoch=runner.epoch, losses=losses)
        if self._lines is not None:
            self._lines.step(runner.epoch + 1, runner.max_epochs, losses.get("loss"))

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not metrics:
            return
        self.last_metrics = {k: float(v) for k, v in metrics.items()}
        if self._lines is not None:
            self._lines.validated(self.last_metrics)
        self.host.notify("gml_on_evaluate", algorithm=unwrap(runner.model), iteration=runner.iter,
                         epoch=runner.epoch, metrics=dict(self.last_metrics))

    def after_train(self, runner: Any) -> None:
        self.close()
        self.summary_rows = dict(unwrap(runner.model).after_train(self.run_info) or {})

    def close(self) -> None:
        """Stop the progress display (also when training fails)."""
        if self._lines is not None:
            self._lines.close()
            self._lines = None

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        make_plain_checkpoint(checkpoint)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        restore_checkpoint(checkpoint)
