"""``gml mmdet export``: write an mmdet config and checkpoint for a gml detector."""

from __future__ import annotations

import click


@click.group()
def mmdet() -> None:
    """mmdet adapter commands."""


@mmdet.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-c", "--config", "run_config", type=click.Path(dir_okay=False), required=True,
              help="The gml run config that produced CHECKPOINT (data classes, size, normalisation, model).")
@click.option("-o", "--out", "out_dir", default=None, help="Output folder (default: CHECKPOINT's folder/mmdet).")
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE", help="Overrides for the run config.")
@click.option("--trust-checkpoint", is_flag=True, help="Allow checkpoints that need unsafe pickle globals.")
def export(checkpoint: str, run_config: str, out_dir: str | None, cfg_options: tuple[str, ...],
           trust_checkpoint: bool) -> None:
    """Export CHECKPOINT (a run checkpoint, a KD student.pth or a pruned.pth) for mmdet."""
    from pathlib import Path

    from .export import export_for_mmdet

    out = Path(out_dir) if out_dir else Path(checkpoint).parent / "mmdet"
    result = export_for_mmdet(checkpoint, out, run_config, cfg_options, trust_checkpoint)
    click.echo(f"model type:  {result.model_type}")
    click.echo(f"config:      {result.config}")
    click.echo(f"weights:     {result.weights}")
    click.echo(f"reload check through mmdet: max |head output difference| = {result.max_abs_diff:.3g}")
