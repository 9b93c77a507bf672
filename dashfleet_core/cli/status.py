"""`dashfleet status`, `dashfleet plugins` and `dashfleet config check`: look at this machine and
at what config enables."""

from __future__ import annotations

import json

import click

from ..storage import redact_url
from ..text import visible
from . import _context, config_option


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout, nothing else.")
@config_option
def status(as_json: bool, config_path: str | None) -> None:
    """One snapshot of this machine, with its health."""
    from ..engine import Engine

    ctx = _context.load(config_path)
    engine = Engine(ctx.settings, ctx.pm)
    doc = engine.snapshot()
    if as_json:
        click.echo(doc.model_dump_json())
        return
    from .watch import render, unit_table

    click.echo(render(doc, unit_table(engine.collectors.values())))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@config_option
def plugins(as_json: bool, config_path: str | None) -> None:
    """The plugins DashFleet knows: name, version, hooks, enabled."""
    from ..plugins import plugin_infos

    ctx = _context.load(config_path)
    infos = plugin_infos(ctx.pm)
    if as_json:
        click.echo(json.dumps([vars(i) for i in infos], indent=2))
        return
    for i in infos:
        mark = "on " if i.enabled else "off"
        click.echo(f"{mark} {visible(i.name):<16} {visible(i.kind):<11} {visible(i.version):<8} "
                   f"{visible(', '.join(i.hooks) or i.error)}")


@click.group()
def config() -> None:
    """Check the configuration."""


@config.command("check")
@config_option
def config_check(config_path: str | None) -> None:
    """Validate the config file, load every enabled plugin and call every registration hook;
    list what each kind registers; exit 2 naming each problem (a host would log and go on)."""
    from ..plugin_check import check_plugins

    ctx = _context.load(config_path)
    found = check_plugins(ctx.settings, ctx.pm, ctx.command_failures)
    counts = {kind: len(names) for kind, names in found.kinds.items()}
    state = "ok" if not found.problems else f"{len(found.problems)} problem(s)"
    click.echo(
        f"{ctx.settings.source}: {state}; {counts['collectors']} collectors, "
        f"{counts['health checks']} health checks, storage {redact_url(ctx.settings.storage.url)}"
    )
    for kind, names in found.kinds.items():
        click.echo(f"  {kind} ({len(names)}): {visible(', '.join(names)) or '-'}")
    for problem in found.problems:
        click.echo(f"dashfleet: {visible(problem)}", err=True)
    if found.problems:
        raise click.exceptions.Exit(2)


def add_commands(cli: click.Group) -> None:
    cli.add_command(status)
    cli.add_command(plugins)
    cli.add_command(config)
