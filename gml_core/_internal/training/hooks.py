"""The mmengine hook that connects a training run to gml: algorithm lifecycle,
plugin hooks, plain-data checkpoints and a progress display."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from .plain_state import make_plain_checkpoint, restore_checkpoint
from .run_info import RunInfo


def unwrap(model: Any) -> Any:
    return model.module if is_model_wrapper(model) else model


class GmlHook(Hook):
    """Calls ``before_train``/``before_train_iter``/``after_train`` of the algorithm,
    broadcasts ``gml_on_train_step`` and ``gml_on_evaluate``, and keeps checkpoints plain."""

    priority = "NORMAL"

    def __init__(self, run_info: RunInfo, host: Any, progress: bool = False):
        self.run_info = run_info
        self.host = host
        self.progress = progress
        self.last_metrics: dict[str, float] = {}
        self.summary_rows: dict[str, Any] = {}
        self._bar = None

    def before_train(self, runner: Any) -> None:
        info = self.run_info
        info.runner = runner
        info.max_iters = runner.max_iters
        info.iters_per_epoch = len(runner.train_dataloader)
        if runner.distributed:
            from .dist import sync_gradients

            sync_gradients(runner.optim_wrapper)
        unwrap(runner.model).before_train(info)
        if self.progress and runner.rank == 0:
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task("training", total=runner.max_iters, completed=runner.iter)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        unwrap(runner.model).before_train_iter(runner.iter, runner.epoch, runner.max_iters)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        losses = {k: float(v.detach()) if hasattr(v, 'detach') else float(v) for k, v in (outputs or {}).items()}
        self.host.notify("gml_on_train_step", algorithm=unwrap(runner.model), iteration=runner.iter + 1,
                         epoch=runner.epoch, losses=losses)
        if self._bar is not None:
            loss = losses.get("loss")
            desc = f"epoch {runner.epoch + 1}" + (f" loss {loss:.3f}" if loss is not None else "")
            self._bar.update(self._task, advance=1, description=desc)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not metrics:
            return
        self.last_metrics = {k: float(v) for k, v in metrics.items()}
        self.host.notify("gml_on_evaluate", algorithm=unwrap(runner.model), iteration=runner.iter,
                         epoch=runner.epoch, metrics=dict(self.last_metrics))

    def after_train(self, runner: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self.summary_rows = dict(unwrap(runner.model).after_train(self.run_info) or {})

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        make_plain_checkpoint(checkpoint)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        restore_checkpoint(checkpoint)
