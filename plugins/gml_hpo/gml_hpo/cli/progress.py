"""The live view of ``search-run``: a rich panel on a terminal, plain event lines otherwise."""

from __future__ import annotations

import time
from collections import deque

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .common import fmt_duration, fmt_reward


class ProgressView:
    """Receives scheduler events (main thread only) and renders them."""

    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or Console()
        self.quiet = quiet
        self.scheduler = None
        self.events: deque[str] = deque(maxlen=8)
        self.live: Live | None = None
        self._last = 0.0

    def attach(self, scheduler) -> None:
        self.scheduler = scheduler
        if self.console.is_terminal and not self.quiet:
            self.live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
            self.live.start()

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self._render(), refresh=True)
            self.live.stop()
            self.live = None

    def on_event(self, kind: str, trial_id: str | None, message: str) -> None:
        if kind in ("tracking_error", "poll_error", "cancel_error"):
            pass
        elif kind not in ("started", "finished", "stopping", "stopping_task", "reattached", "failed", "end",
                          "start", "resume", "interrupted"):
            return
        stamp = time.strftime("%H:%M:%S")
        line = f"{stamp} {trial_id or 'task'} {kind}: {message.splitlines()[0] if message else ''}"
        self.events.append(line)
        if self.live is None:
            if not self.quiet:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        if self.live is None or self.scheduler is None:
            return
        now = time.monotonic()
        if force or now - self._last > 0.25:
            self._last = now
            self.live.update(self._render(), refresh=True)

    def _render(self):
        s = self.scheduler
        if s is None:
            return Text("starting...")
        counts = s.counts()
        done = sum(v for k, v in counts.items() if k not in ("RUNNING", "PENDING"))
        head = Table.grid(padding=(0, 2))
        head.add_row(Text(f"task {s.cfg.name}", style="bold"),
                     f"done {done}" + (f"/{s.cfg.max_tries}" if s.cfg.max_tries else ""),
                     f"running {len(s.running)}/{s.cfg.scheduler.parallel_size}",
                     f"elapsed {fmt_duration(s.elapsed())}")
        detail = ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()) if k not in ("RUNNING", "PENDING"))
        best = (f"best {s.reward_attribute} = {fmt_reward(s.best[0])} ({s.best[1]})" if s.best
                else f"best {s.reward_attribute} = -")
        head.add_row(best, detail, "", "stopping: " + s.stopping if s.stopping else "")
        running = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        for col in ("trial", "step", s.reward_attribute, "time"):
            running.add_column(col)
        for rt in list(s.running.values())[:12]:
            last = rt.history[-1] if rt.history else None
            running.add_row(rt.id, str(rt.record.last_step if rt.record.last_step is not None else "-"),
                            fmt_reward(last), fmt_duration(rt.record.duration_s))
        return Group(head, running, Text("\n".join(self.events), style="dim"))
