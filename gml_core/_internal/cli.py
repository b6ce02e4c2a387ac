"""The ``gml`` command line. Imports stay light: torch loads only for ``run``."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from .errors import GmlUserError


class GmlGroup(click.Group):
    """Turns user errors into one line on stderr and exit code 2; hints at plugins for unknown commands."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GmlUserError as exc:
            if os.environ.get("GML_DEBUG", "") not in ("", "0"):
                raise
            click.echo(f"error: {exc}" if "\n" not in str(exc) else f"error:\n{exc}", err=True)
            sys.exit(2)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        from .install_hints import install_hint

        if args and args[0] not in self.commands and not args[0].startswith("-"):
            hint = install_hint("command", args[0])
            if hint:
                ctx.fail(f"No such command '{args[0]}': {hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=GmlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gml-core", prog_name="gml")
@click.option("--debug", is_flag=True, help="Show the traceback of user errors too (also GML_DEBUG=1).")
def cli(debug: bool) -> None:
    """gml: distill, search, prune and quantize PyTorch models."""
    if debug:
        os.environ["GML_DEBUG"] = "1"


def _overrides(cfg_options: tuple[str, ...], extra: tuple[str, ...]) -> list[str]:
    bad = [e for e in extra if "=" not in e]
    if bad:
        raise GmlUserError(f"unexpected argument '{bad[0]}'; overrides look like key.path=value")
    return [*cfg_options, *extra]


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE",
              help="Override a config key (typed like TOML); more KEY=VALUE may follow.")
@click.option("--work-dir", default=None, help="Output folder (default: work_dirs/<config name>).")
@click.option("--resume", is_flag=True, default=None, help="Resume from the latest checkpoint in the work dir.")
@click.option("--load-from", default=None, help="Initialise weights from a checkpoint.")
@click.option("--seed", type=int, default=None, help="Random seed.")
@click.option("--launcher", type=click.Choice(["none", "pytorch", "slurm"]), default=None,
              help="Distributed launcher (use torchrun for 'pytorch').")
@click.option("--trust-checkpoint", is_flag=True, default=None,
              help="Allow checkpoints that need unsafe pickle globals (they can run code).")
@click.option("-v", "--verbose", is_flag=True, help="Also show mmengine's full log (always in the work dir's log file).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
def run(config: str, overrides: tuple[str, ...], cfg_options: tuple[str, ...], work_dir: str | None,
        resume: bool | None, load_from: str | None, seed: int | None, launcher: str | None,
        trust_checkpoint: bool | None, verbose: bool, quiet: bool) -> None:
    """Train CONFIG (TOML or mmengine-style Python) and print a summary."""
    from .config.loader import load_config

    if verbose and quiet:
        raise GmlUserError("--verbose and --quiet exclude each other; pass one of them")
    console = "verbose" if verbose else "quiet" if quiet else None
    cfg = load_config(config, _overrides(cfg_options, overrides), work_dir=work_dir, resume=resume,
                      load_from=load_from, seed=seed, launcher=launcher, trust_checkpoint=trust_checkpoint,
                      console=console)
    from .summary import print_summary
    from .training.runner import run as run_training

    result = run_training(cfg)
    if result is not None:
        print_summary(result)


@cli.group()
def config() -> None:
    """Validate or print configs."""


@config.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE")
def config_check(path: str, cfg_options: tuple[str, ...]) -> None:
    """Validate a config as `gml run` does before its first step: every problem, with its key path."""
    from .config.loader import load_config
    from .validate import dry_build

    dry_build(load_config(path, cfg_options))
    click.echo(f"{path}: ok")


@config.command("show")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE")
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default="toml")
def config_show(path: str, cfg_options: tuple[str, ...], fmt: str) -> None:
    """Print the fully resolved config (defaults filled in)."""
    from .config.loader import config_to_dict, load_config

    data = config_to_dict(load_config(path, cfg_options))
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        import tomli_w

        click.echo(tomli_w.dumps(_drop_none(data)))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins, what each provides, and broken ones."""
    from .plugins import get_host

    host = get_host()
    clashes = host.clashes()  # builds the registries first: a crashing registrar shows as broken
    rows = []
    for info in host.plugins:
        rows.append({"name": info.name, "distribution": info.distribution, "version": info.version,
                     "status": "broken" if info.broken else "ok", "error": info.error,
                     "provides": {} if info.broken else host.provides(info.name),
                     "clashes": host.clashes(info.name)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if row["status"] == "ok":
            click.echo(f"{row['name']}  ({row['distribution']} {row['version']})")
            for kind, names in row["provides"].items():
                click.echo(f"    {kind}: {', '.join(names)}")
    broken = [r for r in rows if r["status"] == "broken"]
    if broken:
        click.echo("broken:")
        for row in broken:
            click.echo(f"    {row['name']}  ({row['distribution']} {row['version']}): {row['error']}")
    if clashes:
        click.echo("clashes (configs using these names fail; everything else works):")
        for line in clashes:
            click.echo(f"    {line}")


def _add_plugin_commands() -> None:
    from .plugins import get_host

    try:
        host = get_host()
        for impl in host.hook.gml_register_commands.get_hookimpls():
            host.call_safely(impl, cli=cli)
    except GmlUserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    _add_plugin_commands()
    return cli.main(args=argv, prog_name="gml")
