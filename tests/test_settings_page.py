"""`/settings` over HTTP, with reads closed as a server is by default: who gets the page, which
sections each role is shown, the CSRF token it carries, the header link, and the CSP it is served
under. The page in a real browser: tests/test_settings_browser.py."""

from __future__ import annotations

import re

import pytest

from dashfleet_core.fleet import Fleet
from dashfleet_web.app import create_app

PASSWORD = "settings page passphrase"
ADMIN_SECTIONS = ('id="keys"', 'id="users"', 'id="links"')


@pytest.fixture
def rig(settings_factory):
    settings = settings_factory({"server.public_read": False, "server.report_self": False,
                                 "actions.token": "action-token-of-the-settings-tests"})
    fleet = Fleet(settings)
    yield fleet, create_app(fleet=fleet, start=False).test_client()
    fleet.stop()


def login(fleet: Fleet, client, username: str, *, org: str = "default", role: str | None = "viewer",
          server_admin: bool = False):
    user = fleet.accounts.users.add(username, PASSWORD, org=org if role else None, role=role,
                                    server_admin=server_admin)
    sid, session = fleet.accounts.sessions.create(user.username, user.epoch, org)
    client.set_cookie("dashfleet_session", sid)
    return session


def test_anonymous_is_sent_to_login(rig):
    _, client = rig
    r = client.get("/settings")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=/settings"


def test_public_read_and_keys_are_not_people_so_they_go_to_login(settings_factory):
    settings = settings_factory({"server.public_read": True, "server.report_self": False})
    fleet = Fleet(settings)
    try:
        client = create_app(fleet=fleet, start=False).test_client()
        assert client.get("/fleet").status_code == 200  # the anonymous reader reads ...
        r = client.get("/settings")                       # ... but has no account to set
        assert r.status_code == 302 and r.headers["Location"] == "/login?next=/settings"
        _, secret = fleet.accounts.keys.create("default", name="admin", scopes=["admin"])
        r = client.get("/settings", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 302 and r.headers["Location"] == "/login?next=/settings"
        assert b'href="/settings"' not in client.get("/fleet").data  # no header link either
    finally:
        fleet.stop()


def test_a_session_waiting_for_its_second_factor_gets_no_settings(rig):
    fleet, client = rig
    user = fleet.accounts.users.add("half", PASSWORD, org="default", role="admin")
    sid, _ = fleet.accounts.sessions.create(user.username, user.epoch, "default", mfa_pending=True)
    client.set_cookie("dashfleet_session", sid)
    assert client.get("/settings").status_code == 302


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_see_only_their_account(rig, role):
    fleet, client = rig
    session = login(fleet, client, "pat", role=role)
    r = client.get("/settings")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="my-account"' in html and 'id="password-form"' in html and 'id="totp-off"' in html
    for section in ADMIN_SECTIONS + ('id="orgs"',):
        assert section not in html, section
    assert f'<meta name="csrf-token" content="{session.csrf_token}">' in html
    assert 'href="/settings"' in html  # the header link


def test_an_admin_sees_keys_users_and_links_but_not_organisations(rig):
    fleet, client = rig
    login(fleet, client, "ada", role="admin")
    html = client.get("/settings").get_data(as_text=True)
    for section in ('id="my-account"',) + ADMIN_SECTIONS:
        assert section in html, section
    assert 'id="orgs"' not in html


def test_a_server_admin_also_sees_organisations(rig):
    fleet, client = rig
    login(fleet, client, "root", role=None, server_admin=True)
    html = client.get("/settings").get_data(as_text=True)
    for section in ('id="my-account"', 'id="orgs"') + ADMIN_SECTIONS:
        assert section in html, section


def test_the_page_is_about_the_sessions_current_organisation(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme <Ltd>")
    login(fleet, client, "amy", org="acme-ltd", role="admin")
    html = client.get("/settings").get_data(as_text=True)
    assert 'data-org="acme-ltd"' in html
    assert "Acme &lt;Ltd&gt;" in html and "<Ltd>" not in html


def test_the_page_has_no_inline_script_or_style_and_is_served_under_the_csp(rig):
    fleet, client = rig
    login(fleet, client, "cass", role="admin")
    r = client.get("/settings")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    html = r.get_data(as_text=True)
    assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no onclick= and the like
    with client.get("/static/settings.js") as script:
        assert script.status_code == 200
