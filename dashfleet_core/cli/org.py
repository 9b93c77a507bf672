"""`dashfleet org create NAME` and `dashfleet org list`: organisations from the server's shell.

Creating one prints its id and its first key (scope admin, named "admin") once, as `POST
/api/orgs` answers; only the key's hash is stored, so it cannot be shown again (make another with
`dashfleet key create`)."""

from __future__ import annotations

import click

from ..text import visible
from . import config_option
from ._account_store import audited_change, cli_actor, open_accounts, table, when


@click.group("org")
def org_group() -> None:
    """Organisations: each has its own machines, keys and users."""


@org_group.command("create")
@click.argument("name")
@config_option
def create(name: str, config_path: str | None) -> None:
    """Create the organisation NAME (its id is a slug of the name) and print its admin key once."""
    with open_accounts(config_path) as accounts:
        with audited_change(accounts, "org.create") as change:
            change.params["name"] = visible(name)[:100]
            org = accounts.orgs.create(name)
            change.org = change.params["org"] = org.id
            key, secret = accounts.keys.create(org.id, name="admin", scopes=["admin"], by=cli_actor())
            change.params["key_id"] = key.id
    click.echo(f"Organisation {org.id!r} ({visible(org.name)}) created.")
    click.echo("Its admin key, shown this once (only its hash is stored):")
    click.echo(secret)


@org_group.command("list")
@config_option
def list_orgs(config_path: str | None) -> None:
    """Every organisation: id, name, when it was created, how many keys it has."""
    with open_accounts(config_path) as accounts:
        rows = [[org.id, visible(org.name), when(org.created_at), str(len(accounts.keys.list(org.id)))]
                for org in accounts.orgs.list()]
    table(["ID", "NAME", "CREATED (UTC)", "KEYS"], rows)


def add_commands(cli: click.Group) -> None:
    cli.add_command(org_group)
