"""``search-run TASK_FILE [--resume]``: run a task in the foreground with a live view."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from .common import run_standalone

EXIT_CODES = {"INTERRUPTED": 130, "FAILED": 1}  # by end state; DONE and STOPPED exit 0


def execute(task_file: str | None, resume: bool, quiet: bool = False, task_dir=None) -> str:
    """Run (or resume) a task to its end; print the final table; return the end state."""
    from ..scheduler import Scheduler
    from ..store import DB_FILE, TaskStore
    from ..tasks import config_of, prepare_run
    from .progress import ProgressView
    from .show import print_trials

    if task_dir is not None:
        cfg = config_of(task_dir)
        store, resumed = TaskStore(task_dir / DB_FILE), True
    else:
        cfg, store, resumed = prepare_run(task_file, resume)
    console = Console()
    view = ProgressView(console, quiet=quiet)
    scheduler = Scheduler(cfg, store, resumed=resumed, on_event=view.on_event, on_tick=view.refresh)
    view.attach(scheduler)
    try:
        state = scheduler.run()
    finally:
        view.close()
    if not quiet:
        print_trials(console, cfg.task_dir, store, limit=15)
        if state == "INTERRUPTED":
            console.print(f"trials keep running; resume with: search-ctl resume -t {cfg.name} "
                          f"--work-dir {cfg.task_dir.parent}", markup=False, highlight=False)
    store.close()
    return state


@click.command("run", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("task_file", type=click.Path(dir_okay=False))
@click.option("--resume", is_flag=True, help="Continue an existing task (finished trials are kept).")
@click.option("-q", "--quiet", is_flag=True, help="No live view, no final table.")
def run_command(task_file: str, resume: bool, quiet: bool) -> None:
    """Run the search described by TASK_FILE (YAML or TOML) in the foreground."""
    sys.exit(EXIT_CODES.get(execute(task_file, resume, quiet), 0))


def main(argv: list[str] | None = None) -> None:
    run_standalone(run_command, "search-run", argv)
