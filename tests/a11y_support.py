"""What the accessibility browser tests share: a live server on 127.0.0.1 with the fleet of
tests/test_web_browser.py (five machines, one critical, one silent, a hostile hostname, history of
this server's machine), reads closed as by default, and people to sign in as: a server admin, a
viewer, and a viewer with two-factor authentication (for the login's second step)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pyotp

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet

from test_web_browser import _seed
from conftest import serving

PASSWORD = "accessibility test passphrase"
SESSION_COOKIE = "dashfleet_session"


@contextmanager
def a11y_server(folder: Path, seed=_seed, overrides: dict | None = None):
    """`(base_url, fleet)` of a live server whose fleet `seed` filled, with its people: root (server
    admin), vera (viewer) and tess (viewer with two-factor)."""
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{folder}/dashfleet.db", "server.data_dir": str(folder),
        "server.token": "a11y-test-token", "server.report_self": False, "server.public_read": False,
        "agent.machine_id": "dashfleet-server", **(overrides or {})})
    fleet = Fleet(settings)
    seed(fleet)
    accounts = fleet.accounts
    accounts.users.add("root", PASSWORD, server_admin=True, org="default", role="admin")
    accounts.users.add("vera", PASSWORD, org="default", role="viewer")
    accounts.users.add("tess", PASSWORD, org="default", role="viewer")
    secret = accounts.second_factor.begin("tess")["secret"]
    accounts.second_factor.confirm("tess", pyotp.TOTP(secret).now())
    accounts.keys.create("default", name="agents of the Paris office", scopes=["report"])
    with serving(fleet) as base:
        yield base, fleet


def new_context(browser, base: str, fleet, user: str | None, **options):
    """A fresh browser context, signed in as `user` (a session cookie) unless None."""
    context = browser.new_context(locale="en-GB", timezone_id="UTC", **options)
    if user:
        found = fleet.accounts.users.get(user)
        sid, _ = fleet.accounts.sessions.create(found.username, found.epoch, "default")
        context.add_cookies([{"name": SESSION_COOKIE, "value": sid, "url": base, "httpOnly": True, "sameSite": "Lax"}])
    return context


def watch_problems(pg, base: str) -> list[str]:
    """Console errors, page errors and requests to other hosts, collected for the test to assert."""
    problems: list[str] = []
    pg.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("request", lambda req: problems.append(f"external request: {req.url}")
          if not req.url.startswith(base) and not req.url.startswith("data:") else None)
    return problems
