"""``gml mmpretrain export``: write an mmpretrain config and checkpoint for a gml result."""

from __future__ import annotations

import click


@click.group()
def mmpretrain() -> None:
    """mmpretrain (mmcls) adapter commands."""


@mmpretrain.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-c", "--config", "run_config", type=click.Path(dir_okay=False), default=None,
              help="The gml run config that produced CHECKPOINT (data normalisation, classes, model spec).")
@click.option("-o", "--out", "out_dir", default=None, help="Output folder (default: CHECKPOINT's folder/mmpretrain).")
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE", help="Overrides for the run config.")
@click.option("--trust-checkpoint", is_flag=True, help="Allow checkpoints that need unsafe pickle globals.")
def export(checkpoint: str, run_config: str | None, out_dir: str | None, cfg_options: tuple[str, ...],
           trust_checkpoint: bool) -> None:
    """Export CHECKPOINT (a run checkpoint, a pruned/NAS/student .pth, or an int8 .ts) for mmpretrain."""
    from pathlib import Path

    from .export import export_for_mmpretrain

    out = Path(out_dir) if out_dir else Path(checkpoint).parent / "mmpretrain"
    result = export_for_mmpretrain(checkpoint, out, run_config, cfg_options, trust_checkpoint)
    click.echo(f"model type:  {result.model_type}")
    click.echo(f"config:      {result.config}")
    click.echo(f"weights:     {result.weights or '(inside the TorchScript file)'}")
    click.echo(f"reload check through mmpretrain: max |logit difference| = {result.max_abs_diff:.3g}")
