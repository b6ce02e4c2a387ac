"""``gml qat report RUN_DIR...``: fp32 vs int8 accuracy, size and latency of finished IAO runs.

Reads each run's ``qat_report.json`` (no torch import, so it answers instantly).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from gml_core.api import GmlUserError

REPORT = "qat_report.json"


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def _size(fp32: dict, int8: dict) -> str:
    if fp32.get("torchscript_bytes") and int8.get("torchscript_bytes"):
        return f"{_kib(fp32['torchscript_bytes'])} -> {_kib(int8['torchscript_bytes'])}"
    return f"{_kib(fp32['state_dict_bytes'])} -> {_kib(int8['state_dict_bytes'])} (state dict)"


def load_reports(paths: tuple[str, ...]) -> list[tuple[str, dict]]:
    out = []
    for raw in paths:
        path = Path(raw)
        file = path / REPORT if path.is_dir() else path
        if not file.is_file():
            raise GmlUserError(f"{raw}: no {REPORT} (is it the work dir of a finished IAO run?)")
        try:
            out.append((str(path), json.loads(file.read_text())))
        except json.JSONDecodeError as exc:
            raise GmlUserError(f"{file}: not valid JSON ({exc})") from None
    return out


def _speedup(lat: dict) -> str:
    """The interleaved (paired) speed-up; reports written before it existed: the ratio of the medians."""
    if "speedup" not in lat:
        return f"{lat['fp32_ms'] / lat['int8_ms']:.1f}x, sequential timing"
    return f"{lat['speedup']:.1f}x interleaved" + ("" if lat.get("stable", True) else ", UNSTABLE")


def report_rows(reports: list[tuple[str, dict]]) -> list[list[str]]:
    rows = []
    for name, r in reports:
        fp32, int8, lat = r["fp32"], r["int8"], r["latency"]
        q, metric = r.get("quantizer", {}), r.get("metric", "top1")
        quality = f"{fp32[metric]:.2f}", f"{int8[metric]:.2f}" + ("" if metric == "top1" else f" ({metric})")
        rows.append([
            name, f"{q.get('type', '?')} ({q.get('backend', '?')})",
            *quality,
            _size(fp32, int8),
            f"{lat['fp32_ms']:.3f} -> {lat['int8_ms']:.3f} ms ({_speedup(lat)}; "
            f"batch {lat['batch_size']}, {lat['threads']} thread{'s' if lat['threads'] != 1 else ''})",
        ])
    return rows


@click.group("qat")
def qat() -> None:
    """Quantization-aware training tools (gml-qat)."""


@qat.command("report")
@click.argument("runs", nargs=-1, required=True)
def report(runs: tuple[str, ...]) -> None:
    """Compare fp32 and int8 top-1, TorchScript size and CPU latency of IAO RUNS (work dirs)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fp32 vs int8 (gml-qat)")
    for column in ("run", "quantizer", "fp32 metric", "int8 metric", "size on disk", "CPU latency"):
        table.add_column(column)
    for row in report_rows(load_reports(runs)):
        table.add_row(*row)
    Console(width=160).print(table)
