"""Every page on every screen (Debian's Chromium via Playwright, a live server on 127.0.0.1 with
realistic data): at 390x844, 768x1024 and 1440x900, in the four languages, no page scrolls
sideways and no element sticks out of its container (one JS check, OVERFLOW_JS, that names the
offenders); at 390 px every control is at least 44x44 px. Then the phone layout itself: the fleet
as cards with a sort selector and details that stay open across a refresh, the table at 1440, and
the header folded behind a menu button. Screenshots at 390 px go to docs/screenshots/phone-*.png
with DASHFLEET_SCREENSHOTS=1 (the docs show them), else to a temp folder.

One browser (conftest), one server per module, one browser context per (size, language) that
visits every page in turn: the whole matrix stays near a minute on two shared cores."""

from __future__ import annotations

import math
import os
import re
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pyotp
import pytest

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Event, Finding, Report, utcnow
from dashfleet_web.app import create_app

from conftest import REPO

PASSWORD = "responsive layout passphrase"
LANGS = ("en", "fr", "es", "ru")
SIZES = {"390": (390, 844), "768": (768, 1024), "1440": (1440, 900)}
LONG_ID = "ws-" + "averyveryverylongmachinename" * 4
LONG_HOST = LONG_ID + ".corp.example.internal"
LONG_REASON = "quota-exceeded:" + "C:\\Users\\Administrator\\AppData\\Local\\Temp\\" * 6 + "spool.bin"
SHOTS_MAX = 150_000
# the login of a user in no organisation (403) and the used-up setup link (410) the login steps provoke
EXPECTED_REFUSAL = re.compile(r"^Failed to load resource: .* status of (403 \(FORBIDDEN\)|410 \(GONE\))$")

# For each visible element: its box stays inside its nearest ancestor that clips or scrolls
# sideways, else inside the viewport. Inside a box meant to scroll sideways (overflow-x auto or
# scroll: the wide tables' wrappers) anything goes; the box itself is checked like the rest.
OVERFLOW_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const name = (e) => {
    let s = e.tagName.toLowerCase();
    if (e.id) return s + "#" + e.id;
    if (e.classList.length) s += "." + Array.from(e.classList).join(".");
    const p = e.parentElement;
    return (p && p !== document.body ? name(p) + " > " : "") + s;
  };
  const offenders = [];
  for (const e of document.body.querySelectorAll("*")) {
    if (!e.checkVisibility({ visibilityProperty: true })) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    let box = null, scrolls = false;
    for (let a = e.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o !== "visible") { box = a; scrolls = o === "auto" || o === "scroll"; break; }
    }
    if (scrolls) continue;
    const b = box ? box.getBoundingClientRect() : { left: 0, right: vw };
    if (r.left < b.left - 1 || r.right > b.right + 1) {
      offenders.push(name(e) + " [" + Math.round(r.left) + ", " + Math.round(r.right) + "] outside " +
                     (box ? name(box) : "the viewport") + " [" + Math.round(b.left) + ", " + Math.round(b.right) + "]");
    }
  }
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, offenders };
}"""

# Every visible control at least 44x44 CSS px (a checkbox counts by its label, the real target).
TOUCH_JS = """() => {
  const small = [];
  for (const e of document.querySelectorAll("a[href], button, select, input, summary")) {
    if (e.type === "hidden" || !e.checkVisibility({ visibilityProperty: true })) continue;
    const target = (e.type === "checkbox" || e.type === "radio") && e.closest("label") ? e.closest("label") : e;
    const r = target.getBoundingClientRect();
    if (r.width < 43.5 || r.height < 43.5) {
      small.push((e.id ? "#" + e.id : e.tagName.toLowerCase() + "." + Array.from(e.classList).join(".")) +
                 " " + Math.round(r.width) + "x" + Math.round(r.height) + " '" + (e.textContent || e.name || "").trim().slice(0, 30) + "'");
    }
  }
  return small;
}"""


def _report(fleet: Fleet, machine_id: str, hostname: str, cpu: float, ram: float, disk: float, age: int,
            reason: str | None = None) -> None:
    now = utcnow()
    items = []
    for i in range(60):
        at = now - timedelta(seconds=age + (59 - i) * 60)
        metrics = {"cpu.percent": max(0.0, min(100.0, cpu + math.sin(i / 7) * 5)), "memory.percent": ram,
                   "disk.percent": disk, "uptime.seconds": 86400.0 + i * 60}
        rep = Report(machine_id=machine_id, hostname=hostname, os="Windows 11", agent_version="0.1.0", seq=i,
                     collected_at=at, metrics=metrics,
                     facts={"cpu.model": "Intel(R) Core(TM) i5", "install.path": LONG_REASON})
        extra = [Finding(severity="critical", message=reason, source="spool")] if reason else None
        items.append((rep, fleet.engine.evaluate(metrics, extra)))
    fleet.storage.save_reports(items, received_at=now - timedelta(seconds=age))


def _seed(fleet: Fleet, tmp: Path) -> SimpleNamespace:
    """Machines (one with a very long name and reason), this server's samples, events, maintenance,
    keys, users, links and a second organisation; users for each login step."""
    now = utcnow()
    _report(fleet, "ws-accounting-01", "ws-accounting-01", 23.0, 61.0, 48.0, 4)
    _report(fleet, "ws-design-02", "ws-design-02", 97.5, 72.0, 51.0, 4)
    _report(fleet, "srv-files", "srv-files", 41.0, 93.0, 88.0, 4)
    _report(fleet, LONG_ID, LONG_HOST, 55.0, 81.0, 97.0, 4, reason=LONG_REASON)
    _report(fleet, "laptop-old", "laptop-old", 11.0, 35.0, 66.0, 3600)
    fleet.storage.add_event(Event(machine_id=LONG_ID, kind="status_changed", previous="ok", status="critical",
                                  score=40, message=LONG_REASON, at=now))
    fleet.storage.kv_put("maintenance", "srv-files", {"until": (now + timedelta(hours=2)).isoformat(),
                                                      "reason": "disk replacement", "by": "ops"})
    for i in range(120):
        fleet.ingest([Report(machine_id=fleet.self_machine_id, hostname="dashfleet-server", seq=i,
                             collected_at=now - timedelta(seconds=(119 - i) * 10),
                             metrics={"cpu.percent": 30 + math.sin(i / 15) * 20, "memory.percent": 77.0,
                                      "disk.percent": 93.0})])
    accounts = fleet.accounts
    accounts.orgs.create("Acme with a rather long organisation name")
    root = accounts.users.add("root", PASSWORD, org="default", role="admin", server_admin=True)
    for name in ("tess", "root"):
        if name == "tess":
            accounts.users.add("tess", PASSWORD, org="default", role="viewer")
        secret = accounts.second_factor.begin(name)["secret"]
        accounts.second_factor.confirm(name, pyotp.TOTP(secret).now())
    accounts.users.add("otto", PASSWORD, org="default", role="operator")  # must enrol (require_2fa)
    accounts.users.add("nora", PASSWORD, org=None, role=None)  # in no organisation: refused
    accounts.users.add("operator-with-a-" + "long" * 10 + "-name", PASSWORD, org="default", role="viewer")
    for name in ("agents of the Paris office", "ci-reader-" + "x" * 60):
        accounts.keys.create("default", name=name, scopes=["report", "read"], by="root")
    (tmp / "dist").mkdir()
    (tmp / "dist" / "fleet_agent_setup_with_a_long_file_name.exe").write_bytes(b"MZ agent build " * 64)
    accounts.links.create("default", "fleet_agent_setup_with_a_long_file_name.exe", 3600, by="root")
    sid, _ = accounts.sessions.create(root.username, root.epoch, "default")
    return SimpleNamespace(root_session=sid)


def _serve(fleet: Fleet):
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, create_app(fleet=fleet, start=False), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The data server (reads closed, two factors required of operators and admins) and a fresh
    server with no user yet (the setup form): `.base`, `.fresh`, `.setup_link`, `.root_session`."""
    tmp = tmp_path_factory.mktemp("responsive")
    fresh_tmp = tmp_path_factory.mktemp("responsive-fresh")
    common = {"server.report_self": False, "server.public_read": False, "agent.machine_id": "dashfleet-server"}
    fleet = Fleet(load_settings(None, env={}, overrides={
        **common, "storage.url": f"sqlite:///{tmp}/dashfleet.db", "server.data_dir": str(tmp),
        "server.token": "responsive-test", "server.require_2fa": True, "server.downloads_dir": str(tmp / "dist")}))
    found = _seed(fleet, tmp)
    fresh = Fleet(load_settings(None, env={}, overrides={
        **common, "storage.url": f"sqlite:///{fresh_tmp}/dashfleet.db", "server.data_dir": str(fresh_tmp),
        "server.token": "responsive-fresh"}))
    servers = [_serve(fleet), _serve(fresh)]
    found.base = f"http://127.0.0.1:{servers[0][0].server_port}"
    found.fresh = f"http://127.0.0.1:{servers[1][0].server_port}"
    made = fresh.accounts.setup_links.announce_once()
    assert made, "the fresh server made no setup link"
    found.setup_link = found.fresh + "/setup/" + made[0]
    yield found
    for httpd, thread in servers:
        httpd.shutdown()
        thread.join(5)
    fleet.stop()
    fresh.stop()


@pytest.fixture
def open_context(chromium_browser, site):
    """`open_context(width, height, lang, scheme="light", logged_in=True, touch=False)`: a fresh context and page;
    console errors, dialogs and requests to other hosts fail the test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    contexts, problems = [], []

    def make(width: int, height: int, lang: str = "en", scheme: str = "light", logged_in: bool = True,
             touch: bool = False):
        context = chromium_browser.new_context(viewport={"width": width, "height": height}, locale=lang,
                                               timezone_id="UTC", color_scheme=scheme, has_touch=touch)
        if logged_in:
            context.add_cookies([{"name": "dashfleet_session", "value": site.root_session, "url": site.base,
                                  "httpOnly": True, "sameSite": "Lax"}])
        contexts.append(context)
        pg = context.new_page()
        pg.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}")
              if msg.type == "error" and not EXPECTED_REFUSAL.search(msg.text) else None)
        pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        pg.on("dialog", lambda d: (problems.append(f"dialog opened: {d.message}"), d.dismiss()))
        pg.on("request", lambda req: problems.append(f"external request: {req.url}")
              if not req.url.startswith((site.base, site.fresh, "data:")) else None)
        return pg

    yield make
    for context in contexts:
        context.close()
    assert problems == []


def _login_steps(pg, site):
    """The login pages, each ready: (name, page loaded). A generator so the caller checks each."""
    from playwright.sync_api import expect

    pg.goto(site.base + "/login")
    expect(pg.locator("#login-form")).to_be_visible()
    yield "login"
    for user, form in (("tess", "#code-form"), ("otto", "#enrol-form")):
        pg.fill("#username", user)
        pg.fill("#password", PASSWORD)
        pg.click("#login-submit")
        expect(pg.locator(form)).to_be_visible()
        yield "login " + form
        pg.goto(site.base + "/login")
    pg.fill("#username", "nora")  # the right password, no organisation: an error (and no lockout)
    pg.fill("#password", PASSWORD)
    pg.click("#login-submit")
    expect(pg.locator("#login-error")).to_be_visible()
    yield "login with an error"
    pg.goto(site.setup_link)
    expect(pg.locator("#setup-form")).to_be_visible()
    yield "setup"
    pg.goto(site.base + "/setup/not-a-live-link")
    expect(pg.locator("#setup-gone")).to_be_visible()
    yield "setup link gone"


def _page_steps(pg, site, machine: str = LONG_ID):
    """The logged-in pages, each with its data shown (the machine page of `machine`)."""
    from urllib.parse import quote

    from playwright.sync_api import expect

    pg.goto(site.base + "/")
    expect(pg.locator("#score")).to_have_text(re.compile(r"^\d+$"))
    yield "/"
    pg.goto(site.base + "/history")
    expect(pg.locator("#history-table tbody tr")).to_have_count(20)
    yield "/history"
    pg.goto(site.base + "/fleet")
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(6)
    yield "/fleet"
    pg.goto(site.base + "/fleet/" + quote(machine))
    expect(pg.locator("#facts tbody tr").first).to_be_visible()
    pg.wait_for_function("() => Chart.getChart('m-chart') && Chart.getChart('m-chart').data.datasets.length === 3")
    yield "/fleet/<id>"
    pg.goto(site.base + "/settings")
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#keys-table tbody tr")).to_have_count(2)
    expect(pg.locator("#links-table tbody tr")).to_have_count(1)
    yield "/settings"


def _layout_problems(pg, where: str, touch: bool) -> list[str]:
    found = pg.evaluate(OVERFLOW_JS)
    problems = []
    if found["scrollWidth"] > found["innerWidth"]:
        problems.append(f"{where}: the page is {found['scrollWidth']} px wide in a {found['innerWidth']} px window")
    problems += [f"{where}: {o}" for o in found["offenders"]]
    if touch:
        problems += [f"{where}: control smaller than 44x44: {s}" for s in pg.evaluate(TOUCH_JS)]
    return problems


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("size", list(SIZES))
def test_no_page_is_wider_than_the_screen(open_context, site, size, lang):
    width, height = SIZES[size]
    pg = open_context(width, height, lang, logged_in=False)
    problems = []
    for where in _login_steps(pg, site):
        problems += _layout_problems(pg, where, touch=width < 700)
    pg.context.add_cookies([{"name": "dashfleet_session", "value": site.root_session, "url": site.base,
                             "httpOnly": True, "sameSite": "Lax"}])
    for where in _page_steps(pg, site):
        if width < 700:
            problems += _layout_problems(pg, where, touch=True)
            if where == "/settings":  # the menu open too (the same header on every page, with the org switcher)
                pg.click("#menu-button")
                problems += _layout_problems(pg, where + " (menu open)", touch=True)
        else:
            problems += _layout_problems(pg, where, touch=False)
    assert problems == [], f"{size} px, {lang}:\n" + "\n".join(problems)


def _shown_ids(pg) -> list[str]:
    return pg.locator("#fleet-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.machineId)")


def test_the_fleet_is_cards_on_a_phone_sorted_by_the_selector_with_details_that_stay_open(open_context, site):
    from playwright.sync_api import expect

    pg = open_context(390, 844, touch=True)
    pg.goto(site.base + "/fleet")
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(6)
    expect(pg.locator("#fleet-table thead")).to_be_hidden()
    assert pg.locator("#fleet-table tbody tr").first.evaluate("r => getComputedStyle(r).display") == "grid"
    expect(pg.locator("#sort-key")).to_be_visible()
    pg.select_option("#sort-key", "score")
    pg.select_option("#sort-dir", "asc")
    scores = pg.locator("#fleet-table td.score").all_text_contents()
    assert [int(s) for s in scores] == sorted(int(s) for s in scores)
    expect(pg.locator("#fleet-table th[data-key=score]")).to_have_attribute("aria-sort", "ascending")
    pg.select_option("#sort-dir", "desc")
    scores = [int(s) for s in pg.locator("#fleet-table td.score").all_text_contents()]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    card = pg.locator("#fleet-table tbody tr", has=pg.locator(f"a:text-is('{LONG_HOST}')"))
    expect(card.locator("td.detail").first).to_be_hidden()
    card.locator("button.more").tap()
    expect(card.locator("button.more")).to_have_attribute("aria-expanded", "true")
    expect(card.locator("td.detail")).to_have_count(3)
    for cell in card.locator("td.detail").all():
        expect(cell).to_be_visible()
    assert "CPU %" in card.locator("td.cpu").evaluate("td => getComputedStyle(td, '::before').content")
    before = card.element_handle()
    pg.wait_for_function("row => !row.isConnected", arg=before, timeout=20_000)  # the next auto-refresh rebuilt the rows
    card = pg.locator("#fleet-table tbody tr", has=pg.locator(f"a:text-is('{LONG_HOST}')"))
    expect(card.locator("button.more")).to_have_attribute("aria-expanded", "true")
    expect(card.locator("td.detail").first).to_be_visible()
    assert pg.evaluate("() => document.activeElement.matches('button.more') && "
                       "document.activeElement.closest('tr').dataset.machineId") == LONG_ID
    # the sort chosen on the phone is the table's sort on a wide screen, and the other way round
    pg.set_viewport_size({"width": 1440, "height": 900})
    expect(pg.locator("#fleet-table thead")).to_be_visible()
    expect(pg.locator("#sort-key")).to_be_hidden()
    expect(pg.locator("#fleet-table td.detail").first).to_be_visible()
    expect(pg.locator("#fleet-table button.more").first).to_be_hidden()
    pg.click("#fleet-table th[data-key=hostname] button")
    pg.set_viewport_size({"width": 390, "height": 844})
    expect(pg.locator("#sort-key")).to_have_value("hostname")
    expect(pg.locator("#sort-dir")).to_have_value("asc")


def test_the_fleet_is_a_table_on_a_wide_screen(open_context, site):
    from playwright.sync_api import expect

    pg = open_context(1440, 900)
    pg.goto(site.base + "/fleet")
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(6)
    expect(pg.locator("#fleet-table thead")).to_be_visible()
    assert pg.locator("#fleet-table").evaluate("t => getComputedStyle(t).display") == "table"
    assert pg.locator("#fleet-table th[scope=col]").count() == 8
    assert pg.locator("#fleet-table th[aria-sort]").count() == 1  # ARIA: only the sorting header says so
    expect(pg.locator("#sort-key")).to_be_hidden()
    expect(pg.locator("#menu-button")).to_be_hidden()
    expect(pg.locator("header nav a[href='/settings']")).to_be_visible()


def test_the_header_folds_into_a_menu_on_a_phone(open_context, site):
    from playwright.sync_api import expect

    pg = open_context(390, 844)
    pg.goto(site.base + "/history")
    button = pg.locator("#menu-button")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_have_attribute("aria-controls", "top-menu")
    links = pg.locator("#top-menu a, #top-menu select, #top-menu button")
    assert links.count() >= 7  # live, history, fleet, settings, org, log out, language, theme
    for control in links.all():
        expect(control).to_be_hidden()
    button.focus()
    pg.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    for control in links.all():
        expect(control).to_be_visible()
    box = pg.locator("header.top").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    lang = pg.locator("#lang").bounding_box()
    assert box["y"] <= lang["y"] and lang["y"] + lang["height"] <= box["y"] + box["height"], "language outside the header"
    pg.keyboard.press("Tab")  # into the menu: its first link
    expect(pg.locator("#top-menu a").first).to_be_focused()
    pg.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    button.click()
    pg.click("#top-menu a[href='/fleet']")
    expect(pg).to_have_url(site.base + "/fleet")


def test_without_javascript_the_header_links_stay_reachable(chromium_browser, site):
    from playwright.sync_api import expect

    context = chromium_browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    context.add_cookies([{"name": "dashfleet_session", "value": site.root_session, "url": site.base,
                          "httpOnly": True, "sameSite": "Lax"}])
    try:
        pg = context.new_page()
        pg.goto(site.base + "/fleet")
        expect(pg.locator("#menu-button")).to_be_hidden()
        for link in pg.locator("header nav a").all():
            expect(link).to_be_visible()
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


def _shot(pg, name: str) -> None:
    folder = REPO / "docs" / "screenshots" if os.environ.get("DASHFLEET_SCREENSHOTS") == "1" \
        else Path(tempfile.gettempdir()) / "dashfleet-shots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    # a window as tall as the page: cards out of sight are not drawn (content-visibility: auto), and a
    # full-page screenshot does not scroll to them
    size = pg.viewport_size
    pg.set_viewport_size({"width": size["width"], "height": pg.evaluate("document.documentElement.scrollHeight")})
    pg.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    pg.screenshot(path=str(path), full_page=True, animations="disabled")
    pg.set_viewport_size(size)
    from PIL import Image

    with Image.open(path) as shot:  # 64 colours, no dithering: the text stays sharp, the file small
        shot.convert("RGB").quantize(64, dither=Image.Dither.NONE).save(path, optimize=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < SHOTS_MAX, f"{name} is {path.stat().st_size} bytes"


def test_phone_screenshots(open_context, site):
    """docs/screenshots/phone-*.png: each page at 390 px, light; the fleet also dark."""
    pg = open_context(390, 844, logged_in=False)
    for where in _login_steps(pg, site):
        if where == "login":
            _shot(pg, "phone-login.png")
    pg.context.add_cookies([{"name": "dashfleet_session", "value": site.root_session, "url": site.base,
                             "httpOnly": True, "sameSite": "Lax"}])
    names = {"/": "live", "/history": "history", "/fleet": "fleet", "/fleet/<id>": "machine", "/settings": "settings"}
    for where in _page_steps(pg, site, machine="ws-design-02"):
        if where == "/fleet":
            pg.locator("#fleet-table button.more").nth(1).click()
        _shot(pg, f"phone-{names[where]}.png")
        if where == "/fleet":
            pg.click("#menu-button")
            pg.select_option("#theme", "dark")
            pg.click("#menu-button")
            _shot(pg, "phone-fleet-dark.png")
            pg.click("#menu-button")
            pg.select_option("#theme", "light")
            pg.click("#menu-button")
