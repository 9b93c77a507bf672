"""`dashfleet user ...`: dashboard users from the server's shell, on storage directly (no server
needed): add, list, remove, passwd, and setup-link (a fresh one-time link for the first admin).

Passwords are read without echo (twice) or, with `--password-stdin`, as the first line of stdin;
never from an argument (it would sit in the shell history and the process list). Every change is
audited with the actor `cli:<os user>`; a password change or removal ends the user's sessions.
"""

from __future__ import annotations

import getpass
import sys

import click

from . import _context, config_option

ROLES = ("viewer", "operator", "admin")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _accounts(config_path: str | None):
    """(Accounts, storage) over the configured storage; the caller closes the storage."""
    from ..accounts import Accounts
    from ..storage import open_storage

    ctx = _context.load(config_path)
    storage = open_storage(ctx.settings, ctx.pm)
    return Accounts(storage, ctx.settings), storage


def _audit(storage, org: str, action: str, params: dict) -> None:
    from ..models import AuditEntry

    storage.add_audit(AuditEntry(org=org, actor=_actor(), action=action, params=params, outcome="ok"))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = click.prompt("Password", hide_input=True, err=True)
    second = click.prompt("Password again", hide_input=True, err=True)
    if first != second:
        raise click.ClickException("the two passwords differ; run the command again")
    return first


def _fail(exc) -> click.ClickException:
    return click.ClickException(getattr(exc, "message", str(exc)))


@click.group("user")
def user_group() -> None:
    """Manage dashboard users (logins, roles, server admins)."""


@user_group.command("add")
@click.argument("username")
@click.option("--org", default="default", show_default=True, help="Organisation the user joins.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--server-admin", is_flag=True, help="Also a server admin: every organisation, and organisations themselves.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@config_option
def add(username: str, org: str, role: str, server_admin: bool, password_stdin: bool, config_path: str | None) -> None:
    """Add USERNAME with a ROLE in ORG (prompts for the password twice, without echo)."""
    from ..accounts import AccountError

    password = _read_password(password_stdin)
    accounts, storage = _accounts(config_path)
    try:
        user = accounts.users.add(username, password, org=org, role=role, server_admin=server_admin)
        _audit(storage, org, "user.add", {"username": user.username, "role": role, "server_admin": server_admin})
    except AccountError as exc:
        raise _fail(exc) from None
    finally:
        storage.close()
    extra = " and server admin" if server_admin else ""
    click.echo(f"User {user.username!r} added: {role} of {org!r}{extra}. They log in at /login.")


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (for scripts).")
@config_option
def list_users(as_json: bool, config_path: str | None) -> None:
    """Every user: organisations and roles, server admin, second factor."""
    import json

    from ..text import visible

    accounts, storage = _accounts(config_path)
    try:
        users = accounts.users.list()
        rows = [{"username": u.username, "roles": u.roles, "server_admin": u.server_admin,
                 "totp": accounts.second_factor.enabled(u),
                 "created_at": u.created_at.isoformat() if u.created_at else None} for u in users]
    finally:
        storage.close()
    if as_json:
        click.echo(json.dumps({"users": rows}))
        return
    if not rows:
        click.echo("No user yet: dashfleet user add NAME --org default --role admin --server-admin")
        return
    click.echo(f"{'USERNAME':24} {'ROLES':40} {'SERVER ADMIN':12} 2FA")
    for row in rows:
        roles = ", ".join(f"{org}:{role}" for org, role in sorted(row["roles"].items())) or "-"
        click.echo(f"{visible(row['username']):24} {visible(roles):40} {'yes' if row['server_admin'] else 'no':12} "
                   f"{'yes' if row['totp'] else 'no'}")


@user_group.command("remove")
@click.argument("username")
@config_option
def remove(username: str, config_path: str | None) -> None:
    """Remove USERNAME from every organisation, and their sessions (at once, on every worker)."""
    from ..accounts import AccountError

    accounts, storage = _accounts(config_path)
    try:
        user = accounts.users.remove(username)
        accounts.sessions.delete_user(user.username)
        for org in sorted(user.roles) or ["default"]:
            _audit(storage, org, "user.remove", {"username": user.username})
    except AccountError as exc:
        raise _fail(exc) from None
    finally:
        storage.close()
    click.echo(f"User {user.username!r} removed; their sessions are ended.")


@user_group.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@config_option
def passwd(username: str, password_stdin: bool, config_path: str | None) -> None:
    """Set USERNAME's password (their sessions end)."""
    from ..accounts import AccountError

    accounts, storage = _accounts(config_path)
    try:
        accounts.users.require(username)
        password = _read_password(password_stdin)
        user = accounts.users.set_password(username, password)
        accounts.sessions.delete_user(user.username)
        _audit(storage, sorted(user.roles)[0] if user.roles else "default", "user.password",
               {"username": user.username})
    except AccountError as exc:
        raise _fail(exc) from None
    finally:
        storage.close()
    click.echo(f"Password of {user.username!r} changed; their sessions are ended.")


@user_group.command("setup-link")
@click.option("--if-needed", is_flag=True, help="Print nothing (exit 0) when a user exists already.")
@click.option("--port", type=int, default=None, help="Port the server listens on, for the link (default: [server] port).")
@config_option
def setup_link(if_needed: bool, port: int | None, config_path: str | None) -> None:
    """A fresh one-time link (60 minutes) that creates the first server admin in the browser."""
    from ..accounts.setup import base_url

    accounts, storage = _accounts(config_path)
    try:
        if accounts.users.any():
            if if_needed:
                return
            raise click.ClickException("users exist already: log in, or add one with dashfleet user add")
        token, expires = accounts.setup_links.create()
        settings = accounts.settings
    finally:
        storage.close()
    link = f"{base_url(settings, port)}/setup/{token}"
    bar = "=" * 78
    click.echo(f"{bar}\nNo user exists yet. Open this link within 60 minutes (until {expires:%H:%M} UTC) to create\n"
               f"the first server admin (it works once):\n\n    {link}\n{bar}")


def add_commands(cli: click.Group) -> None:
    cli.add_command(user_group)
