"""The final summary table of ``gml run``."""

from __future__ import annotations

from typing import Any


def print_summary(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gml run summary", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    for key, value in result.rows():
        table.add_row(key, value)
    Console(width=max(100, len(str(result.work_dir)) + 40)).print(table)
