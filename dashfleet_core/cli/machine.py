"""`dashfleet machine reset-key ID`: unbind a machine's key after its workstation was reinstalled,
from the server's shell (the same as `DELETE /api/fleet/<ID>/key` with the ACTION_TOKEN)."""

from __future__ import annotations

import getpass

import click

from . import _context, config_option


@click.group("machine")
def machine_group() -> None:
    """Manage the machines of the fleet."""


@machine_group.command("reset-key")
@click.argument("machine_id")
@config_option
def reset_key(machine_id: str, config_path: str | None) -> None:
    """Unbind MACHINE_ID's machine key: the next key its agent sends is bound instead (audited)."""
    from ..machine_keys import MachineKeys
    from ..storage import open_storage

    ctx = _context.load(config_path)
    with open_storage(ctx.settings, ctx.pm) as storage:
        done = MachineKeys(storage).reset(machine_id, by=f"cli:{getpass.getuser()}")
    if not done:
        raise click.ClickException(f"machine {machine_id!r} has no machine key bound: nothing to reset")
    click.echo(f"The machine key of {machine_id!r} was reset: the next key its agent sends is bound to it.")


def add_commands(cli: click.Group) -> None:
    cli.add_command(machine_group)
