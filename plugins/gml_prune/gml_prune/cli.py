"""``gml prune``: inspect channel groups and export a pruned model from a training checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gml_core.api import GmlUserError


@click.group()
def prune() -> None:
    """Channel pruning tools (gml-prune)."""


def _shape(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        shape = [int(s) for s in text.replace("x", ",").split(",") if s.strip()]
    except ValueError:
        raise GmlUserError(f"--input-shape '{text}': expected integers like 1,3,224,224") from None
    if len(shape) < 2:
        raise GmlUserError(f"--input-shape '{text}': expected at least [batch, channels]")
    return shape


def _context(cfg: Any, work_dir: Path, trust: bool) -> tuple[Any, Any]:
    from gml_core.api import BuildContext, build_component
    bundle = build_component("dataset", cfg.data, "data")
    return bundle, BuildContext(bundle.info, cfg.train, work_dir, trust)


@prune.command("analyze")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--model", "model_type", default=None, help="A model type instead of a config, e.g. torchvision.resnet18.")
@click.option("--input-shape", default=None, help="Input shape for tracing, e.g. 1,3,224,224.")
@click.option("--num-classes", type=int, default=10, show_default=True, help="With --model.")
@click.option("--exclude", multiple=True, help="Module name or pattern kept unpruned (repeatable).")
def analyze_command(config: str | None, model_type: str | None, input_shape: str | None, num_classes: int,
                    exclude: tuple[str, ...]) -> None:
    """Print the channel dependency groups of CONFIG's model (or of --model)."""
    from gml_core.api import ComponentSpec, build_component

    from .graph import analyze

    shape = _shape(input_shape)
    if config:
        from gml_core.api import load_config
        cfg = load_config(config)
        _, context = _context(cfg, Path("."), cfg.runtime.trust_checkpoint)
        model = context.build_model(cfg.algorithm.model)
        shape = shape or getattr(cfg.algorithm, "input_shape", None) or \
            getattr(getattr(cfg.algorithm, "mutator", None), "input_shape", None) or list(context.data.input_shape)
        exclude = tuple(exclude) + tuple(getattr(cfg.algorithm, "exclude", ()))
    elif model_type:
        shape = shape or [1, 3, 224, 224]
        model = build_component("model", ComponentSpec(model_type, {}), "--model", num_classes=num_classes,
                      in_channels=shape[1])
    else:
        raise GmlUserError("give a CONFIG or --model TYPE")
    graph = analyze(model, shape, list(exclude), shape_key="--input-shape", exclude_key="--exclude")
    click.echo(graph.describe())
    click.echo(f"{len(graph.prunable)} prunable groups of {len([g for g in graph.groups if g.members])}")


@prune.command("export")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=None, help="Output folder (default: the checkpoint's folder).")
@click.option("--trust-checkpoint", is_flag=True, help="Allow checkpoints that need unsafe pickle globals.")
def export_command(config: str, checkpoint: str, out_dir: str | None, trust_checkpoint: bool) -> None:
    """Export the pruned model of a DMCP / MagnitudePruning CHECKPOINT trained with CONFIG.

    Rebuilds the algorithm, restores its state (weights, masks or architecture
    parameters) and writes pruned.pth, pruned_torchscript.pt and prune_report.md.
    """
    import torch
    from torch.utils.data import DataLoader

    from gml_core.api import RunInfo, build_algorithm, load_checkpoint, load_config

    from .algorithms.base import PruningAlgorithm

    cfg = load_config(config)
    work_dir = Path(out_dir) if out_dir else Path(checkpoint).parent
    bundle, context = _context(cfg, work_dir, trust_checkpoint or cfg.runtime.trust_checkpoint)
    algorithm = build_algorithm(cfg.algorithm, context)
    if not isinstance(algorithm, PruningAlgorithm):
        raise GmlUserError(f"{config}: algorithm.type = '{cfg.algorithm.type}' is not a gml-prune algorithm")
    ckpt = load_checkpoint(checkpoint, context.trust_checkpoint)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise GmlUserError(f"{checkpoint}: no state_dict found")
    result = algorithm.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("data_preprocessor")]
    if missing:
        raise GmlUserError(f"{checkpoint} does not fit {config}: {len(missing)} missing keys "
                           f"({', '.join(missing[:3])}...)")
    torch.manual_seed(cfg.runtime.seed)
    train = DataLoader(bundle.train, batch_size=cfg.train.batch_size, shuffle=True)
    val = DataLoader(bundle.val, batch_size=cfg.train.val_batch_size)
    run = RunInfo(work_dir, train, val, bundle.info, cfg)
    rows = algorithm.after_train(run)
    for key, value in rows.items():
        click.echo(f"{key}: {value}")
