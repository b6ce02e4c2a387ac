"""``gml search init|run|ctl``: the search commands as a lazily loaded click group."""

from __future__ import annotations

import importlib

import click

#: subcommand -> "module:attribute" of its click command
_COMMANDS = {
    "init": "gml_hpo.cli.init_cmd:init_command",
    "run": "gml_hpo.cli.run_cmd:run_command",
    "ctl": "gml_hpo.cli.ctl_cmd:ctl",
}


class LazySearchGroup(click.Group):
    """Imports a subcommand only when it is invoked (keeps ``gml --help`` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(f"gml search {name} is unavailable: {exc}") from None


def add_search_commands(cli: click.Group) -> None:
    """Add ``search`` to the ``gml`` group (same commands as search-init/-run/-ctl)."""
    if "search" in getattr(cli, "commands", {}):
        return
    cli.add_command(LazySearchGroup("search", help="Hyper-parameter search (same as search-init, search-run, search-ctl)."))
