"""What the account commands (`dashfleet org`, `dashfleet key`) share: the accounts over the
configured storage, opened and closed around one command, and one audit row per change attempted
from the shell (actor `cli:<os user>`), refused ones included.

They work on storage directly, as a running server does, so no server is needed; a server using
the same storage sees every change at its next request (a revoked key is refused there at once).
"""

from __future__ import annotations

import getpass
from contextlib import contextmanager
from typing import Any, Iterator

import click

from ..accounts import AccountError, Accounts
from ..models import AuditEntry
from . import _context


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment (a bare container)
        return "cli:unknown"


@contextmanager
def open_accounts(config_path: str | None) -> Iterator[Accounts]:
    """The accounts of the configured storage; a storage problem is a clean error (exit 1)."""
    from ..storage import StorageError, open_storage

    ctx = _context.load(config_path)
    try:
        storage = open_storage(ctx.settings, ctx.pm)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield Accounts(storage, ctx.settings)
    finally:
        storage.close()


class Change:
    """What one audited command learns as it goes: the organisation the row belongs to (once it is
    known to exist) and the parameters (never a secret)."""

    def __init__(self, org: str) -> None:
        self.org = org
        self.params: dict[str, Any] = {}


@contextmanager
def audited_change(accounts: Accounts, action: str, org: str = "default") -> Iterator[Change]:
    """Run one change; exactly one audit row is written when it ends. An AccountError becomes a
    click error (exit 1) with its sentence."""
    change = Change(org)
    outcome, details = "error", {}
    try:
        yield change
        outcome = "ok"
    except AccountError as exc:
        outcome, details = "refused", {"status": exc.status, "error": exc.message}
        raise click.ClickException(exc.message) from None
    except click.ClickException as exc:
        outcome, details = "refused", {"error": exc.message}
        raise
    except Exception as exc:
        details = {"error": f"the command failed ({type(exc).__name__})"}
        raise
    finally:
        accounts.storage.add_audit(AuditEntry(org=change.org, actor=cli_actor(), action=action,
                                              params=change.params, outcome=outcome, details=details))


def when(value) -> str:
    """A time for a table: UTC to the minute."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for line in [headers] + rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
