"""`/settings` in a real browser (Debian's Chromium via Playwright) against a live server on
127.0.0.1 whose reads are closed, as a server is by default. People are made with the core
(`accounts.users.add`) and logged in by a session cookie (`accounts.sessions.create`); everything
else goes through the page: an admin creates a key (shown once, then it works as a bearer) and
revokes it (then it is refused), manages users and agent links; a server admin creates an
organisation; a viewer sees only their account; anyone enrols TOTP (pyotp computes the code from
the secret the page shows) and changes their password; the page in French. Console errors,
browser dialogs and requests to other hosts fail the test. A screenshot goes to
docs/screenshots/settings.png when DASHFLEET_SCREENSHOTS=1."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
import requests

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet

from conftest import REPO, serving

PASSWORD = "browser settings passphrase"
VIEWPORT = {"width": 1280, "height": 900}
KEY = re.compile(r"^dfk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server and its fleet: `(base_url, fleet)`."""
    tmp = tmp_path_factory.mktemp("settings-browser")
    (tmp / "dist").mkdir()
    (tmp / "dist" / "fleet_agent.exe").write_bytes(b"MZ agent build " * 64)
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp}/dashfleet.db", "server.data_dir": str(tmp),
        "server.token": "settings-browser-test", "server.report_self": False, "server.public_read": False,
        "server.downloads_dir": str(tmp / "dist"), "agent.machine_id": "dashfleet-server"})
    fleet = Fleet(settings)
    with serving(fleet) as base:
        yield base, fleet


@pytest.fixture
def browse(chromium_browser, server):
    """`browse(username, role=..., server_admin=...)`: a new user, logged in, on /settings in a
    fresh browser context; console errors, dialogs and outside requests fail the test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    base, fleet = server
    contexts, problems = [], []

    def open_as(username: str, *, role: str | None = "admin", server_admin: bool = False, org: str = "default",
                path: str = "/settings"):
        user = fleet.accounts.users.add(username, PASSWORD, org=org if role else None, role=role,
                                        server_admin=server_admin)
        sid, _ = fleet.accounts.sessions.create(user.username, user.epoch, org)
        context = chromium_browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        context.add_cookies([{"name": "dashfleet_session", "value": sid, "url": base,
                              "httpOnly": True, "sameSite": "Lax"}])
        contexts.append(context)
        pg = context.new_page()
        # a refusal the test provokes (422 wrong code, 400 bad path) is logged by Chromium as "Failed
        # to load resource"; the answers themselves are checked instead: a 404 (a call to an API that
        # does not exist) or a 5xx fails the test
        pg.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}")
              if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
        pg.on("response", lambda r: problems.append(f"{r.request.method} {r.url} answered {r.status}")
              if r.status == 404 or r.status >= 500 else None)
        pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        pg.on("dialog", lambda d: (problems.append(f"dialog opened: {d.message}"), d.dismiss()))
        pg.on("request", lambda req: problems.append(f"external request: {req.url}")
              if not req.url.startswith(base) and not req.url.startswith("data:") else None)
        pg.goto(base + path)
        if path == "/settings":
            expect(pg.locator("body")).to_have_attribute("data-ready", "1")
        return pg

    yield open_as
    for context in contexts:
        context.close()
    assert problems == []


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def link_id(url: str) -> str:
    """The public id of a download link: the first part of its token."""
    return url.rsplit("/", 1)[1].split("_", 1)[0]


def shot(pg, name: str) -> None:
    """Into docs/screenshots/ with DASHFLEET_SCREENSHOTS=1, else a temp folder (clean work tree)."""
    folder = REPO / "docs" / "screenshots" if os.environ.get("DASHFLEET_SCREENSHOTS") == "1" \
        else Path(tempfile.gettempdir()) / "dashfleet-shots"
    folder.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(folder / name), full_page=True)


def confirm(pg) -> None:
    """Answer the page's own confirmation dialog (a <dialog>, not the browser's)."""
    from playwright.sync_api import expect

    expect(pg.locator("#confirm")).to_be_visible()
    pg.click("#confirm-ok")
    expect(pg.locator("#confirm")).to_be_hidden()


def test_an_admin_creates_a_key_shown_once_that_works_then_revokes_it(browse, server):
    from playwright.sync_api import expect

    base, fleet = server
    pg = browse("kay", role="admin")
    pg.fill("#key-form input[name=name]", "ci reader")
    pg.check("#key-form input[name=scope][value=read]")
    pg.click("#key-form button[type=submit]")
    expect(pg.locator("#key-once")).to_be_visible()
    secret = pg.locator("#key-secret").text_content()
    assert KEY.match(secret), secret
    row = pg.locator("#keys-table tbody tr", has_text="ci reader")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("read")
    expect(row.locator("td").nth(4)).to_have_text("never")  # not used yet
    pg.click("#key-copy")
    assert pg.evaluate("() => navigator.clipboard.readText()") == secret

    # the key works as a bearer, and reads only its organisation
    r = requests.get(base + "/api/fleet", headers=bearer(secret), timeout=10)
    assert r.status_code == 200
    assert requests.post(base + "/api/maintenance", json={"minutes": 5}, headers=bearer(secret),
                         timeout=10).status_code == 403  # read only

    # shown once: Done wipes it, a reload never shows it again, and the list says it was used
    pg.click("#key-once-done")
    expect(pg.locator("#key-once")).to_be_hidden()
    assert secret not in pg.content()
    pg.reload()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    assert secret not in pg.content()
    row = pg.locator("#keys-table tbody tr", has_text="ci reader")
    expect(row.locator("td").nth(4)).not_to_have_text("never")

    # revoke, after the page's own confirmation; the next request with the key is refused
    key_id = row.get_attribute("data-key-id")
    row.locator("button").click()
    expect(pg.locator("#confirm-text")).to_contain_text("ci reader")
    confirm(pg)
    expect(row).to_have_count(0)
    assert fleet.accounts.keys.get(key_id) is None
    assert requests.get(base + "/api/fleet", headers=bearer(secret), timeout=10).status_code == 401


def test_cancelling_the_confirmation_keeps_the_key(browse, server):
    from playwright.sync_api import expect

    _, fleet = server
    key, _ = fleet.accounts.keys.create("default", name="keep me", scopes=["report"])
    pg = browse("cancelia", role="admin")
    row = pg.locator(f'#keys-table tr[data-key-id="{key.id}"]')
    row.locator("button").click()
    pg.click("#confirm-cancel")
    expect(pg.locator("#confirm")).to_be_hidden()
    expect(row).to_have_count(1)
    assert fleet.accounts.keys.get(key.id) is not None
    fleet.accounts.keys.revoke(key.id)


def test_a_key_needs_a_scope_and_a_refusal_is_shown(browse, server):
    from playwright.sync_api import expect

    pg = browse("scopeless", role="admin")
    pg.fill("#key-form input[name=name]", "nothing")
    pg.click("#key-form button[type=submit]")
    expect(pg.locator("#key-status")).to_have_text("Tick at least one scope.")
    expect(pg.locator("#key-once")).to_be_hidden()


def test_a_viewer_sees_only_their_account(browse):
    from playwright.sync_api import expect

    pg = browse("vera", role="viewer")
    expect(pg.locator("#my-account")).to_be_visible()
    for section in ("#keys", "#users", "#links", "#orgs"):
        assert pg.locator(section).count() == 0, section
    expect(pg.locator('header a[href="/settings"]')).to_have_text("Settings")
    expect(pg.locator("#totp-off")).to_be_visible()


def test_enrolling_totp_shows_the_qr_code_and_ten_recovery_codes_once(browse, server):
    import pyotp
    from playwright.sync_api import expect

    _, fleet = server
    pg = browse("otto", role="operator")
    pg.click("#totp-start")
    expect(pg.locator("#totp-enrol")).to_be_visible()
    qr = pg.locator("#totp-qr")
    assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,")
    pg.wait_for_function("() => document.getElementById('totp-qr').naturalWidth > 0")  # the CSP let it load
    secret = pg.locator("#totp-secret").text_content()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret

    pg.fill("#totp-confirm-form input[name=code]", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    pg.click("#totp-confirm-form button[type=submit]")
    expect(pg.locator("#totp-status")).to_be_visible()  # a wrong code is refused with the server's sentence
    expect(pg.locator("#totp-enrol")).to_be_visible()

    pg.fill("#totp-confirm-form input[name=code]", pyotp.TOTP(secret).now())
    pg.click("#totp-confirm-form button[type=submit]")
    expect(pg.locator("#totp-codes")).to_be_visible()
    codes = pg.locator("#totp-code-list li").all_text_contents()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert secret not in pg.content()  # the pending secret left the page
    expect(pg.locator("#totp-codes-done")).to_be_disabled()
    pg.click("#totp-codes-copy")
    assert pg.evaluate("() => navigator.clipboard.readText()") == "\n".join(codes)
    pg.check("#totp-codes-saved")
    pg.click("#totp-codes-done")
    expect(pg.locator("#totp-on")).to_be_visible()
    assert pg.locator("#totp-code-list li").count() == 0
    assert codes[0] not in pg.content()

    user = fleet.accounts.users.get("otto")
    assert fleet.accounts.second_factor.enabled(user)
    assert fleet.accounts.second_factor.verify("otto", codes[3]) == "recovery"  # the codes shown are real

    pg.reload()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#totp-on")).to_be_visible()
    pg.fill("#totp-remove-form input[name=password]", "not my password at all")
    pg.click("#totp-remove-form button[type=submit]")
    expect(pg.locator("#totp-status")).to_contain_text("password")
    assert fleet.accounts.second_factor.enabled(fleet.accounts.users.get("otto"))
    pg.fill("#totp-remove-form input[name=password]", PASSWORD)
    pg.click("#totp-remove-form button[type=submit]")
    expect(pg.locator("#totp-off")).to_be_visible()
    assert not fleet.accounts.second_factor.enabled(fleet.accounts.users.get("otto"))


def test_changing_the_password_keeps_the_page_working(browse, server):
    from playwright.sync_api import expect

    _, fleet = server
    pg = browse("paul", role="admin")
    form = "#password-form"
    pg.fill(f"{form} input[name=current]", PASSWORD)
    pg.fill(f"{form} input[name=new]", "a brand new passphrase")
    pg.fill(f"{form} input[name=repeat]", "a different passphrase")
    pg.click(f"{form} button[type=submit]")
    expect(pg.locator("#password-status")).to_have_text(re.compile("differ"))
    pg.fill(f"{form} input[name=repeat]", "a brand new passphrase")
    pg.click(f"{form} button[type=submit]")
    expect(pg.locator("#password-status")).to_have_text(re.compile("Password changed"))
    assert fleet.accounts.users.check_password("paul", "a brand new passphrase") is not None
    assert fleet.accounts.users.check_password("paul", PASSWORD) is None
    # the new session and its CSRF token are in use: a change still works
    pg.fill("#key-form input[name=name]", "after the password change")
    pg.check("#key-form input[name=scope][value=report]")
    pg.click("#key-form button[type=submit]")
    expect(pg.locator("#key-once")).to_be_visible()
    created = [k for k in fleet.accounts.keys.list("default") if k.name == "after the password change"]
    assert len(created) == 1
    fleet.accounts.keys.revoke(created[0].id)


def test_an_admin_adds_a_user_changes_the_role_and_removes_them(browse, server):
    from playwright.sync_api import expect

    _, fleet = server
    pg = browse("ursula", role="admin")
    expect(pg.locator('#users-table tr[data-username="ursula"] select')).to_be_disabled()  # not themselves
    pg.fill("#user-form input[name=username]", "newbie")
    pg.fill("#user-form input[name=password]", "newbie's long passphrase")
    pg.select_option("#user-form select[name=role]", "viewer")
    pg.click("#user-form button[type=submit]")
    row = pg.locator('#users-table tr[data-username="newbie"]')
    expect(row).to_have_count(1)
    assert fleet.accounts.users.get("newbie").roles == {"default": "viewer"}
    assert fleet.accounts.users.check_password("newbie", "newbie's long passphrase") is not None

    with pg.expect_response(lambda r: r.request.method == "PATCH" and r.url.endswith("/users/newbie")):
        row.locator("select").select_option("operator")
    expect(pg.locator("#user-status")).to_contain_text("newbie")
    assert fleet.accounts.users.get("newbie").roles == {"default": "operator"}

    pg.fill("#user-form input[name=username]", "newbie")
    pg.fill("#user-form input[name=password]", "short")
    pg.click("#user-form button[type=submit]")
    expect(pg.locator("#user-status")).to_have_class(re.compile("bad"))  # the server's refusal, shown

    row.locator("button").click()
    expect(pg.locator("#confirm-text")).to_contain_text("newbie")
    confirm(pg)
    expect(row).to_have_count(0)
    assert fleet.accounts.users.get("newbie") is None  # in no organisation any more: gone


def test_an_admin_creates_a_one_time_agent_link_and_revokes_another(browse, server):
    from playwright.sync_api import expect

    base, _ = server
    pg = browse("linda", role="admin")
    pg.fill("#link-form input[name=path]", "dist/fleet_agent.exe")
    pg.select_option("#link-form select[name=ttl]", "86400")
    pg.click("#link-form button[type=submit]")
    expect(pg.locator("#link-once")).to_be_visible()
    url = pg.locator("#link-url").text_content()
    assert url.startswith(base + "/download/agent/"), url
    row = pg.locator(f'#links-table tr[data-link-id="{link_id(url)}"]')
    expect(row).to_contain_text("fleet_agent.exe")
    expect(row).to_contain_text("user:linda")
    first = requests.get(url, timeout=10)
    assert first.status_code == 200 and first.content == b"MZ agent build " * 64
    assert requests.get(url, timeout=10).status_code == 410
    pg.click("#link-once-done")
    assert url not in pg.content()

    pg.fill("#link-form input[name=path]", "fleet_agent.exe")
    pg.click("#link-form button[type=submit]")
    expect(pg.locator("#link-once")).to_be_visible()
    second = pg.locator("#link-url").text_content()
    pg.click("#link-once-done")
    pg.reload()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator(f'#links-table tr[data-link-id="{link_id(url)}"]')).to_have_count(0)  # used: not live
    row = pg.locator(f'#links-table tr[data-link-id="{link_id(second)}"]')
    row.locator("button").click()
    expect(pg.locator("#confirm-text")).to_contain_text("fleet_agent.exe")
    confirm(pg)
    expect(row).to_have_count(0)
    assert requests.get(second, timeout=10).status_code == 410

    pg.fill("#link-form input[name=path]", "../etc/passwd")
    pg.click("#link-form button[type=submit]")
    expect(pg.locator("#link-status")).to_have_class(re.compile("bad"))
    expect(pg.locator("#link-once")).to_be_hidden()


def test_a_server_admin_creates_an_organisation_and_its_key_is_shown_once(browse, server):
    from playwright.sync_api import expect

    base, fleet = server
    pg = browse("sam", role=None, server_admin=True)
    expect(pg.locator('#orgs-table tr[data-org-id="default"]')).to_have_count(1)
    pg.fill("#org-form input[name=name]", "Globex <Corp>")
    pg.click("#org-form button[type=submit]")
    expect(pg.locator("#org-once")).to_be_visible()
    secret = pg.locator("#org-key").text_content()
    assert KEY.match(secret), secret
    expect(pg.locator('#orgs-table tr[data-org-id="globex-corp"]')).to_contain_text("Globex <Corp>")
    r = requests.get(base + "/api/fleet", headers=bearer(secret), timeout=10)
    assert r.status_code == 200 and r.json()["machines"] == []
    pg.click("#org-once-done")
    assert secret not in pg.content()
    assert [k.scopes for k in fleet.accounts.keys.list("globex-corp")] == [("admin",)]


def test_the_settings_page_in_french(browse, server):
    from playwright.sync_api import expect

    _, fleet = server
    key, _ = fleet.accounts.keys.create("default", name="agents", scopes=["report"])
    pg = browse("francoise", role="admin", server_admin=True)
    pg.select_option("#lang", "fr")
    expect(pg.locator("h1")).to_have_text("Paramètres")
    expect(pg.locator('header a[href="/settings"]')).to_have_text("Paramètres")
    expect(pg.locator("#keys h2")).to_have_text("Clés d'API")
    expect(pg.locator(f'#keys-table tr[data-key-id="{key.id}"] button')).to_have_text("Révoquer")
    expect(pg.locator('#users-table tr[data-username="francoise"] option[value=admin]')).to_have_text("Administrateur")
    untranslated = pg.evaluate("""() => [...document.querySelectorAll('[data-i18n]')]
          .filter(e => e.textContent === e.dataset.i18n
                    || (e.textContent === I18N.en[e.dataset.i18n] && I18N.en[e.dataset.i18n] !== I18N.fr[e.dataset.i18n]))
          .map(e => e.dataset.i18n)""")
    assert untranslated == []
    pg.reload()  # remembered
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#my-account h2")).to_have_text("Votre compte")
    pg.fill("#key-form input[name=name]", "sans droit")
    pg.click("#key-form button[type=submit]")
    expect(pg.locator("#key-status")).to_have_text("Cochez au moins un droit.")
    fleet.accounts.keys.revoke(key.id)


def test_screenshot_of_the_settings_page(browse, server):
    from playwright.sync_api import expect

    _, fleet = server
    for name, scopes in (("office agents", ["report"]), ("grafana", ["read"])):
        fleet.accounts.keys.create("default", name=name, scopes=scopes, expires_at="365d")
    pg = browse("admin", role="admin", server_admin=True)
    pg.fill("#key-form input[name=name]", "backup script")
    pg.check("#key-form input[name=scope][value=read]")
    pg.click("#key-form button[type=submit]")
    expect(pg.locator("#key-once")).to_be_visible()
    expect(pg.locator("#keys-table tbody tr")).to_have_count(3)
    shot(pg, "settings.png")


def test_a_page_whose_session_ended_sends_its_user_to_login(browse, server):
    """The user's sessions end (password changed elsewhere, removed): the page's next call is
    refused and the page goes to the login, coming back here after it."""
    from playwright.sync_api import expect

    base, fleet = server
    pg = browse("gone", role="admin")
    fleet.accounts.users.revoke_sessions("gone")
    pg.fill("#key-form input[name=name]", "too late")
    pg.check("#key-form input[name=scope][value=read]")
    pg.click("#key-form button[type=submit]")
    expect(pg).to_have_url(re.compile(re.escape(base) + r"/login\?next=(/|%2F)settings$"))
    assert not [k for k in fleet.accounts.keys.list("default") if k.name == "too late"]
