"""``gml nas``: search a trained supernet and export subnets (click only at import time)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click


@click.group("nas")
def nas() -> None:
    """One-shot NAS: evolution search over a trained supernet, subnet export."""


def _common(fn):
    fn = click.option("--trust-checkpoint", is_flag=True, help="Allow checkpoints that need unsafe globals.")(fn)
    fn = click.option("--checkpoint", default=None, help="Supernet weights (default: <work_dir>/supernet.pth).")(fn)
    fn = click.option("--work-dir", default=None, help="The run's work dir (default: as in the config).")(fn)
    fn = click.option("--cfg-options", multiple=True, metavar="KEY=VALUE", help="Override a config key.")(fn)
    fn = click.argument("config", type=click.Path(dir_okay=False))(fn)
    return fn


@nas.command("search")
@_common
@click.option("--flops", default=None, help="FLOPs limit, e.g. 1.5M (default: algorithm.search.flops).")
@click.option("--params", default=None, help="Parameter limit, e.g. 100K (default: algorithm.search.params).")
@click.option("--population-size", type=int, default=None)
@click.option("--generations", type=int, default=None)
@click.option("--top-k", type=int, default=None)
@click.option("--seed", type=int, default=None)
@click.option("--min-ratio", type=float, default=None,
              help="Candidates use at least this share of each limit (default: algorithm.search.min_ratio).")
@click.option("--out", default=None, help="Output folder (default: <work_dir>/search).")
@click.option("--resume", is_flag=True, help="Continue from <out>/search_state.json.")
def search(config: str, cfg_options: tuple[str, ...], work_dir: Optional[str], checkpoint: Optional[str],
           trust_checkpoint: bool, flops: Optional[str], params: Optional[str], population_size: Optional[int],
           generations: Optional[int], top_k: Optional[int], seed: Optional[int], min_ratio: Optional[float],
           out: Optional[str], resume: bool) -> None:
    """Evolution search of CONFIG's trained supernet under FLOPs / params limits."""
    import attrs

    from .commands import run_search
    from .session import open_session

    session = open_session(config, cfg_options, work_dir, checkpoint, trust_checkpoint)
    changes = dict(flops=flops, params=params, population_size=population_size, generations=generations,
                   top_k=top_k, seed=seed, min_ratio=min_ratio)
    search_cfg = attrs.evolve(session.config.algorithm.search, **{k: v for k, v in changes.items() if v is not None})
    out_dir = Path(out) if out else session.work_dir / "search"
    result = run_search(session, search_cfg, out_dir, resume, log=lambda m: click.echo(f"search: {m}"))
    click.echo(f"evaluated {result['evaluated']} subnets on the {result['split']}; best first:")
    for e in result["entries"]:
        click.echo(f"  #{e['rank']}: top-1 {e['score']:.2f}%  FLOPs {e['flops'] / 1e6:.3f}M  "
                   f"params {e['params'] / 1e3:.1f}K")
    click.echo(f"best subnets: {result['toml']} (and {result['json'].name})")
    click.echo(f"accuracy-vs-FLOPs front ({len(result['front'])} subnets): "
               f"{', '.join(str(p) for p in result['front_files'])}")


@nas.command("export")
@_common
@click.option("--subnet", default="max", show_default=True,
              help="A subnet file written by `gml nas search` (TOML/JSON), or max / min / default.")
@click.option("--rank", type=int, default=1, show_default=True, help="Which entry of a results file.")
@click.option("--calib-batches", type=int, default=None,
              help="Training batches for BN re-calibration (default: algorithm.search.calib_batches).")
@click.option("--out", default=None, help="Output folder (default: <work_dir>/export).")
@click.option("--name", default="subnet", show_default=True, help="File stem of the outputs.")
@click.option("--no-eval", is_flag=True, help="Skip the standalone evaluation of the exported model.")
def export(config: str, cfg_options: tuple[str, ...], work_dir: Optional[str], checkpoint: Optional[str],
           trust_checkpoint: bool, subnet: str, rank: int, calib_batches: Optional[int], out: Optional[str],
           name: str, no_eval: bool) -> None:
    """Export a subnet of CONFIG's supernet as a static model (gml checkpoint + TorchScript)."""
    from .commands import resolve_subnet, run_export
    from .session import open_session

    session = open_session(config, cfg_options, work_dir, checkpoint, trust_checkpoint)
    arch = resolve_subnet(session, subnet, rank)
    n = calib_batches if calib_batches is not None else session.config.algorithm.search.calib_batches
    out_dir = Path(out) if out else session.work_dir / "export"
    s = run_export(session, arch, out_dir, name, n, evaluate=not no_eval)
    click.echo(f"exported subnet: {s['checkpoint']} (init_from loads it) and {s['torchscript']}")
    click.echo(f"  FLOPs {s['flops'] / 1e6:.3f}M, params {s['params'] / 1e3:.1f}K")
    if not no_eval:
        click.echo(f"  standalone top-1 {s['accuracy/top1']:.2f}% on the {s['split']} "
                   f"(TorchScript {s['torchscript_top1']:.2f}%)")
