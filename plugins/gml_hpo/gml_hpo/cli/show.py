"""Tables of tasks and trials (``search-ctl list`` / ``show`` and the end of ``search-run``)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..records import TrialState
from ..store import TaskStore
from ..tasks import best_trial, flatten_params, reward_settings, task_status
from .common import fmt_duration, fmt_reward, fmt_value

_STATE_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "NO_REWARD": "red", "EARLY_STOPPED": "yellow", "TIMEOUT": "magenta",
                "CANCELLED": "dim", "RUNNING": "cyan", "PENDING": "cyan"}


def sorted_trials(store: TaskStore):
    """Trials with a reward first (best first), then running ones, then the rest by id."""
    _, maximize = reward_settings(store)
    trials = store.trials()
    with_reward = [t for t in trials if t.reward is not None]
    with_reward.sort(key=lambda t: (t.state != TrialState.SUCCEEDED, -t.reward if maximize else t.reward))
    active = [t for t in trials if t.reward is None and not t.state.finished]
    rest = [t for t in trials if t.reward is None and t.state.finished]
    return with_reward + active + rest


def print_trials(console: Console, task_dir: Path, store: TaskStore, limit: int | None = None) -> None:
    attr, maximize = reward_settings(store)
    trials = sorted_trials(store)
    names: list[str] = []
    for t in trials:
        for k in flatten_params(t.params):
            if k not in names:
                names.append(k)
    table = Table(title=f"task {store.meta('name')}: {task_status(task_dir, store)} "
                        f"({attr}, {'maximize' if maximize else 'minimize'})", title_justify="left")
    table.add_column("trial", no_wrap=True, min_width=5)
    table.add_column("state", no_wrap=True, min_width=9)
    table.add_column(attr, justify="right", no_wrap=True)
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("steps", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("note", overflow="ellipsis", max_width=48, no_wrap=True, ratio=1)
    shown = trials if limit is None else trials[:limit]
    for t in shown:
        flat = flatten_params(t.params)
        note = t.reason.splitlines()[0] if t.reason else ""
        if t.state == TrialState.FAILED and t.exit_code not in (None, 0) and "exit code" not in note:
            note = f"exit code {t.exit_code}" + (f"; {note}" if note else "")
        style = _STATE_STYLE.get(t.state.value, "")
        table.add_row(t.trial_id, f"[{style}]{t.state.value}[/]" if style else t.state.value, fmt_reward(t.reward),
                      *[fmt_value(flat.get(n, "")) for n in names],
                      "-" if t.last_step is None else str(t.last_step), fmt_duration(t.duration_s), note)
    console.print(table)
    if limit is not None and len(trials) > limit:
        console.print(f"... {len(trials) - limit} more (search-ctl show -t {store.meta('name')})", highlight=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    if counts:
        console.print("trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())), highlight=False)
    if counts.get(TrialState.NO_REWARD.value):
        console.print(f"{counts[TrialState.NO_REWARD.value]} trial(s) exited 0 without a numeric '{attr}' "
                      "(state NO_REWARD; see the note)", highlight=False)
    best = best_trial(store)
    if best:
        console.print(f"best: {best[1]} {attr}={best[0]:.6g}", highlight=False)


def print_tasks(console: Console, task_dirs: list[Path]) -> None:
    table = Table(title="gml-hpo tasks", title_justify="left")
    for col in ("task", "state", "trials", "running", "best", "searcher", "created"):
        table.add_column(col)
    import time

    for task_dir in task_dirs:
        store = TaskStore(task_dir / "task.db", readonly=True)
        try:
            counts = {r["state"]: r["n"] for r in
                      store.conn.execute("SELECT state, COUNT(*) AS n FROM trials GROUP BY state")}
            best = best_trial(store)
            attr, _ = reward_settings(store)
            cfg = store.meta("config", {})
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(store.meta("created_at", 0)))
            table.add_row(task_dir.name, task_status(task_dir, store), str(sum(counts.values())),
                          str(counts.get("RUNNING", 0)),
                          f"{attr}={best[0]:.4g} ({best[1]})" if best else "-",
                          (cfg.get("searcher") or {}).get("type", "GridSearcher"), created)
        finally:
            store.close()
    console.print(table)
