"""`dashfleet link create|list|revoke`: one-time agent download links from the server's shell (the
same as `POST /api/agent/link`, `GET /api/agent/links`, `DELETE /api/agent/links/<id>` with the
ACTION_TOKEN). Run it where the server runs: `[server] downloads_dir` is relative to the working
folder. Every creation and revocation is audited in the link's organisation."""

from __future__ import annotations

import getpass

import click

from . import _context, config_option


@click.group("link")
def link_group() -> None:
    """One-time download links for the agent."""


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli"


def _audit(storage, org: str, action: str, params: dict, outcome: str, details: dict | None = None) -> None:
    from ..models import AuditEntry

    storage.add_audit(AuditEntry(org=org, actor=_actor(), action=action, params=params, outcome=outcome,
                                 details=details or {}))


@link_group.command("create")
@click.option("--path", "path", required=True, help="The file to hand out, relative to [server] downloads_dir.")
@click.option("--ttl", type=int, default=3600, show_default=True, help="Seconds the link stays valid (60..604800).")
@click.option("--org", default="default", show_default=True, help="The organisation the link belongs to.")
@click.option("--enroll", is_flag=True,
              help="Hand out a zip with dashfleet-agent.toml (server address and a report key of the "
                   "organisation, minted at download); needs [server] public_url.")
@config_option
def create(path: str, ttl: int, org: str, enroll: bool, config_path: str | None) -> None:
    """Make a link; prints it once (the full URL when [server] public_url is set)."""
    from ..accounts import AccountError, Accounts
    from ..storage import open_storage

    ctx = _context.load(config_path)
    with open_storage(ctx.settings, ctx.pm) as storage:
        links = Accounts(storage, ctx.settings).links
        params = {"path": path[:200], "ttl": ttl, "enroll": enroll}
        try:
            token, link = links.create(org, path, ttl, enroll=enroll, by=_actor())
        except AccountError as exc:
            if exc.status != 404 or "organisation" not in exc.message:
                _audit(storage, org, "agent_link.create", params, "refused",
                       {"status": exc.status, "error": exc.message})
            raise click.ClickException(exc.message) from None
        _audit(storage, org, "agent_link.create", {**params, "link": link.id}, "ok")
    click.echo(links.url(token) or links.address(token))
    click.echo(f"Link {link.id} for {link.path} in organisation {link.org}: works once, until "
               f"{link.expires_at:%Y-%m-%d %H:%M} UTC." + ("" if links.url(token) else
                                                          " Prefix it with the server's address "
                                                          "(set [server] public_url to get the full URL)."),
               err=True)


@link_group.command("list")
@click.option("--org", default="default", show_default=True, help="The organisation whose links to list.")
@config_option
def list_links(org: str, config_path: str | None) -> None:
    """The organisation's live links (never their tokens)."""
    from ..accounts import Accounts
    from ..storage import open_storage
    from ..text import visible

    ctx = _context.load(config_path)
    with open_storage(ctx.settings, ctx.pm) as storage:
        accounts = Accounts(storage, ctx.settings)
        if accounts.orgs.get(org) is None:
            raise click.ClickException(f"no organisation {org[:64]!r}; see dashfleet org list")
        links = accounts.links.list(org)
    if not links:
        click.echo(f"No live links in organisation {org}.")
        return
    click.echo(f"{'ID':<12}  {'EXPIRES (UTC)':<16}  {'ENROL':<5}  {'BY':<24}  PATH")
    for link in links:
        click.echo(f"{link.id:<12}  {link.expires_at:%Y-%m-%d %H:%M}  {'yes' if link.enroll else 'no':<5}  "
                   f"{visible(link.created_by)[:24]:<24}  {visible(link.path)}")


@link_group.command("revoke")
@click.argument("link_id")
@config_option
def revoke(link_id: str, config_path: str | None) -> None:
    """End a live link now: it answers 410 from then on."""
    from ..accounts import AccountError, Accounts
    from ..storage import open_storage

    ctx = _context.load(config_path)
    with open_storage(ctx.settings, ctx.pm) as storage:
        links = Accounts(storage, ctx.settings).links
        link = links.get(link_id)
        if link is None:
            raise click.ClickException(f"no link {link_id[:40]!r}; dashfleet link list --org ORG shows the live ones")
        try:
            links.revoke(link.org, link.id, by=_actor())
        except AccountError as exc:
            _audit(storage, link.org, "agent_link.revoke", {"link": link.id}, "refused",
                   {"status": exc.status, "error": exc.message})
            raise click.ClickException(f"link {link.id} is no longer live (used, revoked or expired)") from None
        _audit(storage, link.org, "agent_link.revoke", {"link": link.id}, "ok")
    click.echo(f"Link {link.id} ({link.path}, organisation {link.org}) is revoked.")


def add_commands(cli: click.Group) -> None:
    cli.add_command(link_group)
