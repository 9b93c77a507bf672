"""`dashfleet plugin new NAME --kind KIND`: start a third-party plugin package from a template."""

from __future__ import annotations

from pathlib import Path

import click

from ..scaffold import KINDS


@click.group("plugin")
def plugin() -> None:
    """Write plugins of your own (see docs/plugin-hooks.md)."""


@plugin.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(list(KINDS)), required=True,
              help="What the plugin adds to DashFleet.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Folder to write the package into (default: ./dashfleet-NAME); must be empty or new.")
def new(name: str, kind: str, directory: str | None) -> None:
    """Write a pip-installable plugin package NAME of KIND, with its settings model and tests.

    Example: dashfleet plugin new disk_age --kind collector
    """
    from ..plugins import builtin_candidates, entrypoint_candidates
    from ..scaffold import ScaffoldError, new_plugin

    taken = {c.name for c in builtin_candidates() + entrypoint_candidates()}
    try:
        names, folder, written = new_plugin(name, kind, Path(directory) if directory else None,
                                            taken=taken)
    except ScaffoldError as exc:
        raise click.UsageError(str(exc)) from None
    for path in written:
        click.echo(f"  {path.relative_to(folder)}")
    click.echo(f"wrote the {kind} plugin {names.name!r} to {folder}\n"
               f"next: pip install -e '{folder}[test]' && pytest {folder}   "
               f"then `dashfleet plugins` lists it; edit {names.module}/plugin.py")


def add_commands(cli: click.Group) -> None:
    cli.add_command(plugin)
