"""Tables of tasks and trials (``search-ctl list`` / ``show`` and the end of ``search-run``)."""

from __future__ import annotations

from pathlib import Path

from rich import box
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


#: optional columns, dropped in this order when the table is wider than the terminal
_OPTIONAL = ("note", "duration", "steps")
_MIN_NOTE = 12
_GAP = 3  # between two columns: padding 1 + box.SIMPLE_HEAD's blank rule + padding 1
_EDGES = 2  # the box's blank outer rules


def wrap_header(name: str, width: int) -> str:
    """``name`` broken after ``_`` into lines of at most ``width`` characters (where it can)."""
    parts = [p + "_" for p in name.split("_")]
    parts[-1] = parts[-1][:-1]
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def plan_columns(width: int, fixed: list[int], params: list[int],
                 optional: dict[str, int]) -> tuple[list[list[int]], dict[str, int]]:
    """Lay the table out in ``width`` characters.

    ``fixed`` (trial, state, reward), ``params`` and ``optional`` are column widths. The
    parameters are never dropped: when they do not all fit beside the fixed columns they
    continue in further tables (each led by the trial column). The optional columns are
    dropped in ``_OPTIONAL`` order; the note keeps the room left (at least ``_MIN_NOTE``).
    Returns the parameter indexes of each table and the optional columns kept (with widths).
    """
    def cost(widths) -> int:
        return sum(widths) + _GAP * max(0, len(widths) - 1) + _EDGES

    chunks: list[list[int]] = [[]]
    lead = list(fixed)
    for i, w in enumerate(params):
        if (chunks[-1] or len(lead) > 1) and cost([*lead, *[params[j] for j in chunks[-1]], w]) > width:
            chunks.append([])
            lead = fixed[:1]
        chunks[-1].append(i)
    used = cost([*lead, *[params[j] for j in chunks[-1]]])
    kept = dict(optional)
    for name in _OPTIONAL:
        need = used + sum(w + _GAP for w in kept.values())
        if need <= width:
            break
        if name == "note":
            room = width - (need - kept["note"])
            if room >= _MIN_NOTE:
                kept["note"] = room
                break
        del kept[name]
    return chunks, kept


def print_trials(console: Console, task_dir: Path, store: TaskStore, limit: int | None = None) -> None:
    """The trials table, fitted to the console width: long parameter names wrap in the
    header; the note, then duration, then steps are dropped when there is no room; and
    parameters that still do not fit continue in a second table, never dropped."""
    attr, maximize = reward_settings(store)
    trials = sorted_trials(store)
    names: list[str] = []
    for t in trials:
        for k in flatten_params(t.params):
            if k not in names:
                names.append(k)
    shown = trials if limit is None else trials[:limit]
    rows = []
    for t in shown:
        flat = flatten_params(t.params)
        note = t.reason.splitlines()[0] if t.reason else ""
        if t.state == TrialState.FAILED and t.exit_code not in (None, 0) and "exit code" not in note:
            note = f"exit code {t.exit_code}" + (f"; {note}" if note else "")
        style = _STATE_STYLE.get(t.state.value, "")
        rows.append({"trial": t.trial_id, "state": t.state.value, "style": style, "reward": fmt_reward(t.reward),
                     "params": [fmt_value(flat.get(n, "")) for n in names],
                     "steps": "-" if t.last_step is None else str(t.last_step),
                     "duration": fmt_duration(t.duration_s), "note": note})

    def widest(cells: list[str], header: str) -> int:
        return max([len(header), *map(len, cells)])

    fixed = [widest([r["trial"] for r in rows], "trial"), widest([r["state"] for r in rows], "state"),
             widest([r["reward"] for r in rows], attr)]
    headers, pwidths = [], []
    for i, n in enumerate(names):
        cells = max([0, *(len(r["params"][i]) for r in rows)])
        head = wrap_header(n, max(cells, 6))
        headers.append(head)
        pwidths.append(max(cells, *map(len, head.splitlines())))
    optional = {k: widest([r[k] for r in rows], k) for k in _OPTIONAL}
    chunks, kept = plan_columns(console.width, fixed, pwidths, optional)

    title = (f"task {store.meta('name')}: {task_status(task_dir, store)} "
             f"({attr}, {'maximize' if maximize else 'minimize'})")
    for n_chunk, chunk in enumerate(chunks):
        first, last = n_chunk == 0, n_chunk == len(chunks) - 1
        table = Table(title=title if first else None, title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False, padding=(0, 1))
        table.add_column("trial", no_wrap=True)
        if first:
            table.add_column("state", no_wrap=True)
            table.add_column(attr, justify="right", no_wrap=True)
        for i in chunk:
            table.add_column(headers[i], justify="right", overflow="fold",
                             min_width=min(pwidths[i], console.width - fixed[0] - _GAP - _EDGES))
        extra = [k for k in ("steps", "duration") if k in kept] if last else []
        for k in extra:
            table.add_column(k, justify="right", no_wrap=True)
        note = last and "note" in kept
        if note:
            table.add_column("note", overflow="ellipsis", no_wrap=True, max_width=min(kept["note"], 60))
        for row in rows:
            cells = [row["trial"]]
            if first:
                style = row["style"]
                cells += [f"[{style}]{row['state']}[/]" if style else row["state"], row["reward"]]
            cells += [row["params"][i] for i in chunk] + [row[k] for k in extra] + ([row["note"]] if note else [])
            table.add_row(*cells)
        console.print(table)
    if "note" not in kept:  # no room for the column: the notes follow the table
        for row in rows:
            if row["note"]:
                console.print(f"{row['trial']}: {row['note']}", overflow="ellipsis", no_wrap=True,
                              highlight=False, markup=False)
    if limit is not None and len(trials) > limit:
        console.print(f"... {len(trials) - limit} more (search-ctl show -t {store.meta('name')})", highlight=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    if counts:
        console.print("trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())), highlight=False)
    if counts.get(TrialState.NO_REWARD.value):
        console.print(f"{counts[TrialState.NO_REWARD.value]} trial(s) exited 0 without a numeric '{attr}' "
                      "(state NO_REWARD; see the note). A trial reports it by printing a line "
                      f"'GML_HPO_REPORT {{\"{attr}\": VALUE}}', by gml_hpo.report({attr}=VALUE), or through "
                      "searcher.reward_pattern (docs/hpo.md, 'Reporting metrics')", highlight=False, markup=False)
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
