"""Crash-safe checkpoints for gml runs.

mmengine's ``CheckpointHook`` is replaced because it is not crash-safe: it deletes the oldest
checkpoint (and the previous best) *before* writing the new one, writes ``last_checkpoint``
with a plain ``open(..., "w")`` (a kill leaves it empty) and rewrites ``epoch_N.pth`` in place.
Here every file is written atomically (temp file, fsync, rename, folder fsync) through an
mmengine file backend, old files are removed only after the new one is durable, and
``--resume`` picks the newest checkpoint that actually loads.

Files in a work dir: ``epoch_N.pth`` (the newest ``max_keep_ckpts`` of them),
``last_checkpoint`` (the name of the newest), ``best.pth`` (weights of the best validation
so far, with its score in ``meta``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmengine.runner import CheckpointLoader

from ..atomic import atomic_write_bytes, atomic_write_text, fsync_dir
from ..checkpoint import CheckpointError, load_file

BACKEND = "gml_atomic_local"
SAFE_SCHEME, TRUSTED_SCHEME = "gml-safe://", "gml-trusted://"
LAST_CHECKPOINT = "last_checkpoint"
BEST = "best.pth"
_EPOCH = re.compile(r"^epoch_(\d+)\.pth$")


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic, durable writes."""

    def put(self, obj: bytes, filepath: Any) -> None:
        atomic_write_bytes(filepath, obj)

    def put_text(self, obj: str, filepath: Any, encoding: str = "utf-8") -> None:
        atomic_write_bytes(filepath, obj.encode(encoding))


register_backend(BACKEND, AtomicLocalBackend, force=True)
# mmengine's resume reads through these: gml's classified, weights_only-safe loading
CheckpointLoader.register_scheme(SAFE_SCHEME, lambda name, map_location=None: load_file(
    name[len(SAFE_SCHEME):], False), force=True)
CheckpointLoader.register_scheme(TRUSTED_SCHEME, lambda name, map_location=None: load_file(
    name[len(TRUSTED_SCHEME):], True), force=True)


def epoch_checkpoints(work_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every ``epoch_N.pth``, newest first."""
    found = [(int(m.group(1)), p) for p in work_dir.glob("epoch_*.pth") if (m := _EPOCH.match(p.name))]
    return sorted(found, reverse=True)


def newest_intact(work_dir: Path, trust: bool = False) -> tuple[Path | None, list[str]]:
    """The newest epoch checkpoint that loads, and one note per newer one that did not."""
    skipped: list[str] = []
    for _, path in epoch_checkpoints(work_dir):
        try:
            load_file(path, trust)
        except CheckpointError as exc:
            skipped.append(f"{path.name} {exc.reason}")
            continue
        return path, skipped
    return None, skipped


class GmlCheckpointHook(Hook):
    """Saves ``epoch_N.pth`` every ``interval`` epochs (after that epoch's validation when one
    runs), keeps the newest ``max_keep``, and ``best.pth`` when ``accuracy/top1`` improves."""

    priority = "VERY_LOW"

    def __init__(self, interval: int = 1, max_keep: int = 2, save_best: bool = True,
                 indicator: str = "accuracy/top1"):
        self.interval, self.max_keep, self.save_best, self.indicator = interval, max_keep, save_best, indicator

    def _due(self, runner: Any) -> bool:
        return self._due_after(runner.epoch + 1, runner.max_epochs)

    def _due_after(self, done: int, max_epochs: int) -> bool:
        """Epoch checkpoints every ``interval`` epochs and after the last; none with interval 0."""
        return self.interval > 0 and (done % self.interval == 0 or done == max_epochs)

    def _validates_now(self, runner: Any) -> bool:
        loop = runner.train_loop
        done = runner.epoch + 1
        return (runner.val_loop is not None and done >= getattr(loop, "val_begin", 1)
                and (done % loop.val_interval == 0 or done == runner.max_epochs))

    def after_train_epoch(self, runner: Any) -> None:
        if self._due(runner) and not self._validates_now(runner):
            self._save_epoch(runner, runner.epoch + 1)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        # runs after the epoch counter moved on: the validated epoch is runner.epoch
        if not runner.train_loop or runner.epoch == 0:
            return
        score = (metrics or {}).get(self.indicator)
        hub = runner.message_hub
        if self.save_best and score is not None:
            best = hub.get_info("gml_best_score")
            if best is None or float(score) > float(best):
                hub.update_info("gml_best_score", float(score))
                hub.update_info("gml_best_epoch", runner.epoch)
                runner.save_checkpoint(str(runner.work_dir), BEST, save_optimizer=False, save_param_scheduler=False,
                                       meta={"best_score": float(score), "best_epoch": runner.epoch},
                                       by_epoch=False, backend_args={"backend": BACKEND})
        if self._due_after(runner.epoch, runner.max_epochs):
            self._save_epoch(runner, runner.epoch, epoch_done=True)

    def _save_epoch(self, runner: Any, epoch: int, epoch_done: bool = False) -> None:
        name = f"epoch_{epoch}.pth"
        work_dir = Path(runner.work_dir)
        # by_epoch=True records meta epoch = runner.epoch + 1; after validation the counter has moved on
        runner.save_checkpoint(str(work_dir), name, save_optimizer=True, save_param_scheduler=True,
                               by_epoch=not epoch_done, meta={"epoch": epoch, "iter": runner.iter} if epoch_done
                               else None, backend_args={"backend": BACKEND})
        if runner.rank != 0:
            return
        atomic_write_text(work_dir / LAST_CHECKPOINT, str(work_dir / name))
        for old_epoch, path in epoch_checkpoints(work_dir)[self.max_keep:]:
            if old_epoch < epoch:
                path.unlink(missing_ok=True)
        fsync_dir(work_dir)
