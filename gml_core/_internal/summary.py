"""The final summary table of ``gml run``."""

from __future__ import annotations

from typing import Any


def print_summary(result: Any) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # borderless: one line per row plus the title, so a whole run fits a screen
    table = Table(title="gml run summary", show_header=False, box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("item", style="bold")
    table.add_column("value", overflow="fold")  # long paths wrap whole, never cut with an ellipsis
    for key, value in result.rows():
        table.add_row(key, value)
    Console(width=max(100, len(str(result.work_dir)) + 40)).print(table)
