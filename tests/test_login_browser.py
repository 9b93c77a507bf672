"""The login in a real browser (Debian's Chromium via Playwright) against a live server on 127.0.0.1
with public reading off: login, wrong password, lockout, logout, the organisation switcher, a viewer
who sees no operate controls (an operator does, and uses them), a form posted without its CSRF
token, the first-admin setup link, and logging in with a TOTP code (pyotp computes it) and with a
recovery code. Every form works by plain posts; the pages log no console error."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta

import pyotp
import pytest

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Report, utcnow
from conftest import serving as serving_fleet

PASSWORD = "correct horse battery"
VIEWPORT = {"width": 1280, "height": 860}
# a page answered 401/403/429 on purpose (wrong password, refused form) is logged by Chromium
EXPECTED_STATUS = "Failed to load resource: the server responded with a status of 4"


@contextmanager
def serving(tmp_path, seed=None):
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp_path}/dashfleet.db", "server.data_dir": str(tmp_path),
        "server.token": "login-browser-token", "server.report_self": False, "server.public_read": False})
    fleet = Fleet(settings)
    if seed:
        seed(fleet)
    with serving_fleet(fleet) as base:
        yield base, fleet


def _report(fleet, machine_id: str, org: str) -> None:
    now = utcnow()
    rep = Report(machine_id=machine_id, hostname=machine_id, os="Linux", agent_version="0.1.0", seq=1,
                 collected_at=now - timedelta(seconds=5), metrics={"cpu.percent": 12.0, "memory.percent": 40.0,
                                                                    "disk.percent": 50.0})
    fleet.storage.save_reports([(rep, fleet.engine.evaluate(rep.metrics))], received_at=now, org=org)


def _seed(fleet) -> None:
    accounts = fleet.accounts
    acme = accounts.orgs.create("Acme").id
    _report(fleet, "ws-default-01", "default")
    _report(fleet, "ws-acme-01", acme)
    accounts.users.add("ada", PASSWORD, org="default", role="admin")
    accounts.users.set_role("ada", acme, "admin")
    accounts.users.add("vic", PASSWORD, org="default", role="viewer")
    accounts.users.add("otto", PASSWORD, org="default", role="operator")
    accounts.users.add("tess", PASSWORD, org="default", role="viewer")
    secret = accounts.second_factor.begin("tess")["secret"]
    codes = accounts.second_factor.confirm("tess", pyotp.TOTP(secret).now())
    fleet.tess = (secret, codes)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("login-browser"), _seed) as found:
        yield found


def _new_page(browser, base):
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    pg = context.new_page()
    problems = []
    pg.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}")
          if msg.type == "error" and EXPECTED_STATUS not in msg.text else None)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("request", lambda req: problems.append(f"external request: {req.url}") if not req.url.startswith(base) else None)
    pg.base = base
    return context, pg, problems


@pytest.fixture
def page(chromium_browser, live):
    context, pg, problems = _new_page(chromium_browser, live[0])
    yield pg
    context.close()
    assert problems == []


def _login(pg, username: str, password: str = PASSWORD, next_path: str = "/fleet") -> None:
    pg.goto(f"{pg.base}/login?next={next_path}")
    pg.fill("#username", username)
    pg.fill("#password", password)
    pg.click("#login-submit")


def test_anonymous_is_sent_to_the_login_and_back_after_it(page):
    from playwright.sync_api import expect

    page.goto(f"{page.base}/fleet/ws-default-01")
    expect(page).to_have_url(f"{page.base}/login?next=/fleet/ws-default-01")
    page.fill("#username", "vic")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(f"{page.base}/fleet/ws-default-01")
    expect(page.locator("#account-user")).to_have_text("vic")
    expect(page.locator("#m-name")).to_have_text("ws-default-01")


def test_a_wrong_password_shows_an_error_and_no_session(page):
    from playwright.sync_api import expect

    _login(page, "vic", "this is not it at all")
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    page.goto(f"{page.base}/fleet")
    expect(page).to_have_url(f"{page.base}/login?next=/fleet")


def test_logout_ends_the_session(page):
    from playwright.sync_api import expect

    _login(page, "vic")
    expect(page).to_have_url(f"{page.base}/fleet")
    page.click("#logout")
    expect(page).to_have_url(f"{page.base}/login")
    page.goto(f"{page.base}/fleet")
    expect(page).to_have_url(f"{page.base}/login?next=/fleet")


def test_the_organisation_switcher_changes_what_the_fleet_shows(page):
    from playwright.sync_api import expect

    _login(page, "ada")
    expect(page.locator("#fleet-table tbody tr")).to_have_count(1)
    expect(page.locator("#fleet-table tbody")).to_contain_text("ws-acme-01")  # acme is ada's first
    page.select_option("#org-switch", "default")
    expect(page.locator("#fleet-table tbody")).to_contain_text("ws-default-01")
    expect(page.locator("#org-switch")).to_have_value("default")
    expect(page.locator("#fleet-table tbody")).not_to_contain_text("ws-acme-01")


def test_a_viewer_sees_no_operate_controls_and_an_operator_uses_them(chromium_browser, live):
    from playwright.sync_api import expect

    base = live[0]
    context, pg, problems = _new_page(chromium_browser, base)
    try:
        _login(pg, "vic", next_path="/fleet/ws-default-01")
        expect(pg.locator("#m-name")).to_have_text("ws-default-01")
        pg.wait_for_load_state("networkidle")
        expect(pg.locator("#m-operate")).to_be_hidden()
        expect(pg.locator("#org-switch")).to_have_count(0)  # one organisation: no switcher
        assert pg.evaluate("fetch('/api/session').then(r => r.json()).then(d => d.role)") == "viewer"
    finally:
        context.close()
    assert problems == []
    context, pg, problems = _new_page(chromium_browser, base)
    try:
        _login(pg, "otto", next_path="/fleet/ws-default-01")
        expect(pg.locator("#m-operate")).to_be_visible()
        pg.click("#m-maint-start")
        expect(pg.locator("#m-maintenance")).to_be_visible()
        pg.click("#m-maint-end")
        expect(pg.locator("#m-maintenance")).to_be_hidden()
    finally:
        context.close()
    assert problems == []


def test_a_form_posted_without_its_csrf_token_is_refused(page):
    from playwright.sync_api import expect

    page.goto(f"{page.base}/login")
    page.fill("#username", "vic")
    page.fill("#password", PASSWORD)
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.click("#login-submit")
    expect(page.locator("body")).to_contain_text("CSRF")
    page.goto(f"{page.base}/fleet")
    expect(page).to_have_url(f"{page.base}/login?next=/fleet")


def test_totp_code_then_a_recovery_code(chromium_browser, live):
    from playwright.sync_api import expect

    base, fleet = live
    secret, codes = fleet.tess
    context, pg, problems = _new_page(chromium_browser, base)
    try:
        _login(pg, "tess", next_path="/history")
        expect(pg.locator("#code")).to_be_visible()
        pg.goto(f"{base}/fleet")  # half a login opens nothing
        expect(pg).to_have_url(f"{base}/login?next=/fleet")
        _login(pg, "tess", next_path="/history")
        pg.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))  # the enrolment used this step's code
        pg.click("#code-submit")
        expect(pg).to_have_url(f"{base}/history")
        expect(pg.locator("#account-user")).to_have_text("tess")
    finally:
        context.close()
    assert problems == []
    context, pg, problems = _new_page(chromium_browser, base)
    try:
        _login(pg, "tess")
        pg.fill("#code", codes[0])
        pg.click("#code-submit")
        expect(pg).to_have_url(f"{base}/fleet")
        expect(pg.locator("#account-user")).to_have_text("tess")
    finally:
        context.close()
    assert problems == []


def test_lockout_after_ten_failures(chromium_browser, tmp_path):
    from playwright.sync_api import expect

    def seed(fleet):
        fleet.accounts.users.add("vic", PASSWORD, org="default", role="viewer")

    with serving(tmp_path, seed) as (base, fleet):
        context, pg, problems = _new_page(chromium_browser, base)
        try:
            for i in range(10):
                _login(pg, "vic", f"wrong guess number {i}")
                expect(pg.locator("#login-error")).to_have_text("Wrong username or password.")
            _login(pg, "vic")  # the right password, too late
            expect(pg.locator("#login-error")).to_contain_text("Too many failed logins")
            page_fr = pg
            page_fr.select_option("#lang", "fr")
            expect(page_fr.locator("#login-error")).to_have_text("Trop d'échecs de connexion : réessayez dans "
                                                                 "quelques minutes.")
            expect(page_fr.locator("#login-submit")).to_have_text("Se connecter")
        finally:
            context.close()
        assert problems == []
        assert any(r.outcome == "locked" for r in fleet.storage.audit(org="default", limit=50))


def test_the_setup_link_creates_the_first_admin_and_lands_on_the_fleet(chromium_browser, tmp_path):
    from playwright.sync_api import expect

    with serving(tmp_path) as (base, fleet):
        from dashfleet_web.first_admin import announce

        link = announce(fleet).replace("http://127.0.0.1:5000", base)
        context, pg, problems = _new_page(chromium_browser, base)
        try:
            pg.goto(f"{base}/login")
            expect(pg.locator("#login-no-users")).to_be_visible()
            pg.goto(link)
            pg.fill("#username", "root")
            pg.fill("#password", PASSWORD)
            pg.fill("#password2", PASSWORD)
            pg.click("#setup-submit")
            expect(pg).to_have_url(f"{base}/fleet")
            expect(pg.locator("#account-user")).to_have_text("root")
            pg.goto(link)
            expect(pg.locator("#setup-gone")).to_be_visible()
        finally:
            context.close()
        assert problems == []
