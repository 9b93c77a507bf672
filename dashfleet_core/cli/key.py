"""`dashfleet key create|list|revoke`: an organisation's API keys from the server's shell.

A key is printed once, when it is made (only its hash is stored). Revoking deletes it from storage:
every server and worker using that storage refuses it from its next request."""

from __future__ import annotations

import click

from ..accounts import SCOPES, AccountError
from ..accounts.keys import parse_expiry
from ..text import visible
from . import config_option
from ._account_store import audited_change, cli_actor, open_accounts, table, when


@click.group("key")
def key_group() -> None:
    """API keys of an organisation (agents report with one of scope report)."""


@key_group.command("create")
@click.option("--org", required=True, help="The organisation's id (dashfleet org list).")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="report (agents), read, operate or admin (implies all); repeat for several.")
@click.option("--name", default="", help="A label shown in key lists.")
@click.option("--expires", default=None, help="When it stops working: a duration (90d, 12h, 30m) or ISO-8601.")
@config_option
def create(org: str, scopes: tuple[str, ...], name: str, expires: str | None, config_path: str | None) -> None:
    """Create a key of ORG and print it once."""
    with open_accounts(config_path) as accounts:
        with audited_change(accounts, "key.create") as change:
            change.params.update(org=visible(org)[:64], name=visible(name)[:100], scopes=list(scopes))
            if expires is not None:
                change.params["expires_at"] = visible(expires)[:40]
            change.org = accounts.orgs.require(org).id
            expiry = _expiry(expires)
            key, secret = accounts.keys.create(org, name=name, scopes=list(scopes),
                                               expires_at=expiry.isoformat() if expiry else None, by=cli_actor())
            change.params["key_id"] = key.id
    expiry = f", expires {when(key.expires_at)} UTC" if key.expires_at else ""
    click.echo(f"Key {key.id} of {org!r} ({', '.join(key.scopes)}{expiry}), shown this once "
               "(only its hash is stored):")
    click.echo(secret)


def _expiry(expires: str | None):
    try:
        return parse_expiry(expires)
    except AccountError as exc:
        raise click.BadParameter(exc.message.replace("expires_at ", "", 1), param_hint="--expires") from None


@key_group.command("list")
@click.option("--org", required=True, help="The organisation's id (dashfleet org list).")
@config_option
def list_keys(org: str, config_path: str | None) -> None:
    """The keys of ORG: id, name, scopes, created, last used, expiry (never a secret)."""
    with open_accounts(config_path) as accounts:
        try:
            accounts.orgs.require(org)
        except AccountError as exc:
            raise click.ClickException(exc.message) from None
        keys = accounts.keys.list(org)
    rows = [[k.id, visible(k.name) or "-", ",".join(k.scopes), when(k.created_at),
             when(k.last_used_at) if k.last_used_at else "never",
             (when(k.expires_at) + (" (expired)" if k.expired() else "")) if k.expires_at else "never"]
            for k in keys]
    table(["ID", "NAME", "SCOPES", "CREATED (UTC)", "LAST USED", "EXPIRES"], rows)


@key_group.command("revoke")
@click.argument("key_id")
@config_option
def revoke(key_id: str, config_path: str | None) -> None:
    """Revoke the key KEY_ID (the 12 hex digits after dfk_): refused from the next request on."""
    with open_accounts(config_path) as accounts:
        with audited_change(accounts, "key.revoke") as change:
            change.params["key_id"] = visible(key_id)[:40]
            found = accounts.keys.get(key_id)
            if found is not None:
                change.org = change.params["org"] = found.org
            key = accounts.keys.revoke(key_id)
    click.echo(f"Key {key.id} of {key.org!r} ({visible(key.name) or 'no name'}) revoked.")


def add_commands(cli: click.Group) -> None:
    cli.add_command(key_group)
