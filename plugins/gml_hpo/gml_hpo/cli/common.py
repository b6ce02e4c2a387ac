"""Helpers shared by the search commands."""

from __future__ import annotations

import sys
from typing import Any

import click

from gml_core.api import GmlUserError


def work_dir_option(fn):
    return click.option("--work-dir", "work_dir", default=None, metavar="DIR",
                        help="Folder holding the tasks (default: $GML_HPO_WORK_DIR or work_dirs/hpo).")(fn)


def task_option(fn):
    return click.option("-t", "--task", "task", required=True, metavar="NAME", help="Task name.")(fn)


def run_standalone(command: click.Command, prog_name: str, argv: list[str] | None = None) -> Any:
    """Run a click command as a console script: user errors print one message and exit 2."""
    try:
        return command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except GmlUserError as exc:
        text = str(exc)
        click.echo(f"error:\n{text}" if "\n" in text else f"error: {text}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def fmt_reward(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
