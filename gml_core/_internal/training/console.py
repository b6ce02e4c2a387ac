"""What ``gml run`` prints: quiet by default, mmengine's full log always in the work dir.

``runtime.console`` (``gml run -v`` / ``-q``):

- ``normal``: one header line (config, work dir, device, plugins), a progress bar per epoch on a
  terminal, one line per epoch with the training loss and the validation metrics, the summary.
  mmengine's environment block, hook table, config dump and iteration lines go to the log file.
- ``verbose``: mmengine's console output as well (everything the log file gets).
- ``quiet``: only the summary (and errors).

Off a terminal (CI, Slurm logs) the bar is replaced by a plain progress line every
``PLAIN_EVERY_S`` seconds of a long epoch; the per-epoch lines remain.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

#: mmengine warnings about how gml drives it, not about the user's run (kept in the log file)
MMENGINE_NOISE = ("has no metainfo", '"FileClient" will be deprecated', '"HardDiskBackend" is the alias')


#: seconds between the plain progress lines of a long epoch off a terminal
PLAIN_EVERY_S = 60.0


class ConsoleFilter(logging.Filter):
    """Lets only warnings and errors reach the console; drops mmengine's own noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return record.levelno >= logging.WARNING and not any(n in record.getMessage() for n in MMENGINE_NOISE)


def console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]


def quiet_console(logger: logging.Logger, mode: str) -> None:
    """Filter the console handlers of mmengine's logger unless ``mode`` is ``verbose``."""
    if mode == "verbose":
        return
    for handler in console_handlers(logger):
        if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())


def restore_console(logger: logging.Logger | None) -> None:
    """Undo ``quiet_console`` (the logger stays mmengine's current one after the run)."""
    for handler in console_handlers(logger) if logger is not None else []:
        for f in [f for f in handler.filters if isinstance(f, ConsoleFilter)]:
            handler.removeFilter(f)


def _distribution(kind: str, type_name: str) -> str | None:
    from ..plugins import get_host

    host = get_host()
    scope, _, name = type_name.rpartition(".")
    try:
        if scope and scope != "gml":
            return host.registry("scope").entry(scope).distribution
        return host.registry(kind).entry(name).distribution
    except Exception:  # an unusual name only loses its mention in the header
        return None


def header(config: Any, work_dir: Any, device: str, log_file: Any) -> str:
    """``gml run cfg.toml -> work_dirs/x | cpu | Supervised, gml.SmallCNN (gml-core) | log: ...``."""
    algo = config.algorithm
    dists = [_distribution("algorithm", algo.type), _distribution("model", algo.model.type),
             _distribution("dataset", config.data.type)]
    plugins = ", ".join(dict.fromkeys(d for d in dists if d))
    return (f"gml run {config.source or '-'} -> {work_dir} | {device} | {algo.type} on {config.data.type}"
            f"{f' ({plugins})' if plugins else ''} | log: {log_file}")


class EpochLines:
    """One line per epoch (loss, then the validation metrics when the epoch is validated), and a
    rich progress bar per epoch on a terminal."""

    def __init__(self, enabled: bool, bar: bool, plain_every_s: float = PLAIN_EVERY_S):
        self.enabled, self.bar, self.plain_every_s = enabled, bar, plain_every_s
        self._progress = None
        self._task = None
        self._pending: str | None = None
        self._loss_sum = 0.0
        self._loss_n = 0
        self._start = 0.0

    def start_epoch(self, epoch: int, max_epochs: int, iters: int) -> None:
        self.flush()
        self._loss_sum, self._loss_n, self._start = 0.0, 0, time.monotonic()
        self._iters, self._done, self._last_plain = iters, 0, self._start
        if self.enabled and self.bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            if self._progress is None:
                self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                          TimeRemainingColumn(), transient=True)
                self._progress.start()
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(f"epoch {epoch}/{max_epochs}", total=iters)

    def step(self, epoch: int, max_epochs: int, loss: float | None) -> None:
        if loss is not None:
            self._loss_sum += loss
            self._loss_n += 1
        self._done += 1
        mean = f" loss {self._loss_sum / self._loss_n:.4f}" if self._loss_n else ""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, description=f"epoch {epoch}/{max_epochs}{mean}")
        elif self.enabled and not self.bar and self._done < self._iters:
            now = time.monotonic()
            if now - self._last_plain >= self.plain_every_s:
                self._last_plain = now
                eta = (now - self._start) / self._done * (self._iters - self._done)
                self._print(f"epoch {epoch}/{max_epochs}  {self._done}/{self._iters} iters{mean}  (eta {eta:.0f} s)")

    def end_epoch(self, epoch: int, max_epochs: int) -> None:
        loss = f"  loss {self._loss_sum / self._loss_n:.4f}" if self._loss_n else ""
        self._pending = f"epoch {epoch}/{max_epochs}{loss}  ({time.monotonic() - self._start:.1f} s)"

    def validated(self, metrics: dict[str, float]) -> None:
        shown = "  ".join(f"{k} {v:.2f}" for k, v in metrics.items())
        line = f"{self._pending}  {shown}" if self._pending else f"validation  {shown}"
        self._pending = None
        self._print(line)

    def flush(self) -> None:
        if self._pending:
            self._print(self._pending)
            self._pending = None

    def close(self) -> None:
        self.flush()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _print(self, line: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stdout, flush=True)
