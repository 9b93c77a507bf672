"""`dashfleet actions`, `dashfleet action run` and `dashfleet audit`: the action catalogue from the
command line. Runs go through the same checks and audit log as `POST /api/action`; the caller is
recorded as `cli:<os user>`."""

from __future__ import annotations

import json
import sys

import click

from ..text import visible
from . import _context, config_option


@click.command("actions")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@config_option
def actions_cmd(as_json: bool, config_path: str | None) -> None:
    """The action catalogue: name, platforms, parameters, allowed here."""
    from ..actions import ActionService

    ctx = _context.load(config_path)
    service = ActionService(ctx.settings, ctx.pm, storage=None)
    entries = service.catalogue()
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    width = max((len(e.name) for e in entries), default=0) + 2
    for e in entries:
        flags = []
        if not e.allowed:
            flags.append("not allowed")
        if not e.supported:
            flags.append(f"not supported on {service.platform}")
        if not e.changes_machine:
            flags.append("read-only")
        params = ", ".join(f"{k}={v.get('default')!r}" if "default" in v else k for k, v in e.params.items())
        click.echo(f"{visible(e.name):<{width}}{visible(e.description)}")
        click.echo(f"{'':<{width}}platforms: {visible(', '.join(e.platforms))}; params: {visible(params or 'none')}; "
                   f"plugin: {visible(e.plugin)}" + (f"; {'; '.join(flags)}" if flags else ""))
    for name, problem in service.rejected.items():
        click.echo(f"dashfleet: action {name!r} left out: {visible(problem)}", err=True)


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: write NAME=VALUE, e.g. older_than_days=7", param_hint="--param")
    try:
        value = json.loads(raw)  # 7 -> int, true -> bool, "x" -> str
    except ValueError:
        value = raw
    return key, value


@click.group("action")
def action_group() -> None:
    """Run an action from the catalogue on this machine."""


@action_group.command("run")
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter; VALUE is read as JSON when it parses (7, true), else as text. Repeatable.")
@click.option("--dry-run", is_flag=True, help="Say what the action would do, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@config_option
def action_run(name: str, params: tuple[str, ...], dry_run: bool, as_json: bool, config_path: str | None) -> None:
    """Run action NAME (exit 0 ok, 1 it failed, 2 refused)."""
    from ..actions import ActionRefused, ActionService, cli_actor
    from ..storage import open_storage

    values = dict(_parse_param(p) for p in params)
    if dry_run:
        values["dry_run"] = True
    ctx = _context.load(config_path)
    with open_storage(ctx.settings, ctx.pm) as storage:
        service = ActionService(ctx.settings, ctx.pm, storage)
        try:
            result = service.run(name, values, actor=cli_actor())
        except ActionRefused as refused:
            if as_json:
                click.echo(json.dumps({"status": refused.status, **refused.to_json()}))
            else:
                click.echo(f"dashfleet: refused: {visible(refused.message)}", err=True)
            sys.exit(2)
    if as_json:
        click.echo(result.model_dump_json())
    else:
        mark = "ok" if result.ok else "FAILED"
        click.echo(f"{visible(result.action)}: {mark}{' (dry run)' if result.dry_run else ''}: "
                   f"{visible(result.summary)}")
        path = result.details.get("path")
        if path:
            click.echo(f"  path: {visible(path)}")
    if not result.ok:
        sys.exit(1)


@click.command("audit")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, newest first.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000), help="Rows to show.")
@click.option("--org", default="default", show_default=True, help="The organisation whose audit log to show.")
@config_option
def audit_cmd(as_json: bool, limit: int, org: str, config_path: str | None) -> None:
    """The audit log: every action attempt, refused ones included, newest first.

    Control and bidi characters in stored text are shown as visible stand-ins (ESC as U+241B),
    so a stored value cannot forge a line or drive the terminal; --json prints the data exactly."""
    from ..storage import open_storage

    ctx = _context.load(config_path)
    with open_storage(ctx.settings, ctx.pm) as storage:
        rows = storage.audit(org=org, limit=limit)
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for r in rows:
        detail = r.details.get("summary") or r.details.get("error") or ""
        click.echo(f"{r.at:%Y-%m-%d %H:%M:%S}Z {visible(r.actor):<20} {visible(r.action):<16} "
                   f"{visible(r.outcome):<11} {visible(json.dumps(r.params))} {visible(detail)}")


def add_commands(cli: click.Group) -> None:
    cli.add_command(actions_cmd)
    cli.add_command(action_group)
    cli.add_command(audit_cmd)
