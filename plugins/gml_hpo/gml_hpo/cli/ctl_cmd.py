"""``search-ctl``: list, show, stop, resume, export and report tasks."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console

from gml_core.api import GmlUserError

from .common import run_standalone, task_option, work_dir_option


@click.group("ctl", context_settings={"help_option_names": ["-h", "--help"]})
def ctl() -> None:
    """Inspect and control hyper-parameter search tasks."""


@ctl.command("list")
@work_dir_option
def list_cmd(work_dir: str | None) -> None:
    """List the tasks of the work dir."""
    from ..tasks import default_work_dir, list_task_dirs
    from .show import print_tasks

    dirs = list_task_dirs(work_dir)
    if not dirs:
        click.echo(f"no tasks in {work_dir or default_work_dir()}")
        return
    print_tasks(Console(), dirs)


@ctl.command("show")
@task_option
@work_dir_option
@click.option("--events", "n_events", type=int, default=0, help="Also print the last N task events.")
def show_cmd(task: str, work_dir: str | None, n_events: int) -> None:
    """Trials of a task sorted by reward, with params, state and duration."""
    from ..tasks import find_task, open_store
    from .common import fmt_duration
    from .show import print_trials

    task_dir = find_task(task, work_dir)
    store = open_store(task_dir)
    try:
        console = Console()
        print_trials(console, task_dir, store)
        meta = store.all_meta()
        console.print(f"task dir: {task_dir}", highlight=False)
        console.print(f"elapsed: {fmt_duration(meta.get('elapsed_s'))}"
                      + (f"; {meta['end_reason']}" if meta.get("end_reason") else ""), highlight=False)
        console.print(f"tracking: {meta.get('tracking') or task_dir / 'task.db'}", highlight=False)
        for ev in store.events(n_events) if n_events > 0 else []:
            stamp = time.strftime("%H:%M:%S", time.localtime(ev["time"]))
            first = (ev["message"] or "").splitlines()[0] if ev["message"] else ""
            console.print(f"{stamp} {ev['trial_id'] or 'task'} {ev['kind']}: {first}", markup=False, highlight=False)
    finally:
        store.close()


@ctl.command("stop")
@task_option
@work_dir_option
@click.option("--wait/--no-wait", default=False, help="Wait until the scheduler has stopped.")
def stop_cmd(task: str, work_dir: str | None, wait: bool) -> None:
    """Stop a task: its scheduler cancels running trials and ends (resumable later)."""
    from ..scheduler import STOP_FILE
    from ..task_lock import TaskLock
    from ..tasks import find_task

    task_dir = find_task(task, work_dir)
    pid = TaskLock.held(task_dir)
    (task_dir / STOP_FILE).touch()
    if not pid:
        click.echo(f"no scheduler is running task '{task}'; the stop request is applied when it resumes "
                   f"(search-ctl resume -t {task} cancels its remaining trials and ends)")
        return
    click.echo(f"stop requested; scheduler pid {pid} cancels running trials")
    while wait and TaskLock.held(task_dir):
        time.sleep(0.2)
    if wait:
        click.echo("stopped")


@ctl.command("resume")
@task_option
@work_dir_option
@click.option("-q", "--quiet", is_flag=True)
def resume_cmd(task: str, work_dir: str | None, quiet: bool) -> None:
    """Resume a task from its store (same as search-run TASK_FILE --resume)."""
    from ..tasks import find_task
    from .run_cmd import EXIT_CODES, execute

    sys.exit(EXIT_CODES.get(execute(None, True, quiet, task_dir=find_task(task, work_dir)), 0))


def export_rows(store) -> list[dict]:
    from ..tasks import flatten_params

    attr = store.meta("config", {}).get("searcher", {}).get("reward_attribute", "acc")
    rows = []
    for t in store.trials():
        rows.append({
            "trial_id": t.trial_id, "state": t.state.value, "reward": t.reward, "reward_attribute": attr,
            "params": flatten_params(t.params), "search_args": t.params, "exit_code": t.exit_code,
            "attempt": t.attempt, "started_at": t.started_at, "finished_at": t.finished_at,
            "duration_s": t.duration_s if t.started_at else None, "last_step": t.last_step,
            "last_metrics": t.last_metrics, "reason": t.reason, "command": t.command,
            "trial_dir": str(t.trial_dir), "log_path": str(t.log_path),
        })
    return rows


@ctl.command("export")
@task_option
@work_dir_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("-o", "--output", default=None, help="Output file (default: stdout).")
def export_cmd(task: str, work_dir: str | None, fmt: str, output: str | None) -> None:
    """Export trials (params, state, reward, metrics) as CSV or JSON."""
    from ..tasks import find_task, open_store

    store = open_store(find_task(task, work_dir))
    try:
        rows = export_rows(store)
        if fmt == "json":
            for row in rows:
                row["metrics"] = {}
                for name in store.metric_names():
                    hist = store.history(row["trial_id"], name)
                    if hist:
                        row["metrics"][name] = hist
            text = json.dumps({"task": store.meta("name"), "config": store.meta("config"), "trials": rows},
                              indent=2, default=str)
        else:
            params = list(dict.fromkeys(k for r in rows for k in r["params"]))
            metrics = list(dict.fromkeys(k for r in rows for k in r["last_metrics"]))
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["trial_id", "state", "reward", *params, "exit_code", "attempt", "duration_s", "last_step",
                        *[f"last.{m}" for m in metrics], "reason"])
            for r in rows:
                w.writerow([r["trial_id"], r["state"], r["reward"], *[r["params"].get(p, "") for p in params],
                            r["exit_code"], r["attempt"],
                            None if r["duration_s"] is None else round(r["duration_s"], 3), r["last_step"],
                            *[r["last_metrics"].get(m, "") for m in metrics],
                            r["reason"].splitlines()[0] if r["reason"] else ""])
            text = buf.getvalue()
    finally:
        store.close()
    if output:
        from gml_core.api import atomic_write_text
        atomic_write_text(Path(output), text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@ctl.command("report")
@task_option
@work_dir_option
@click.option("-o", "--output", default=None, help="Folder for the PNG plots (default: <task dir>/report).")
def report_cmd(task: str, work_dir: str | None, output: str | None) -> None:
    """Plot best-so-far history, intermediate curves and parallel coordinates (PNG)."""
    from ..plots import write_report
    from ..tasks import find_task, open_store

    task_dir = find_task(task, work_dir)
    store = open_store(task_dir)
    try:
        paths = write_report(store, Path(output) if output else task_dir / "report")
    finally:
        store.close()
    if not paths:
        raise GmlUserError(f"task '{task}' has no finished trial to plot yet")
    for p in paths:
        click.echo(str(p))


def main(argv: list[str] | None = None) -> None:
    run_standalone(ctl, "search-ctl", argv)
