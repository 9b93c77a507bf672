"""What a screen reader and a background tab get, in a real Chromium against a live server: status
changes announced once in the page's polite live region, `<html lang>` following the chosen
language, each chart's text alternative matching the stored data, and the fleet's worst status in
the title and favicon (from the fleet page's own data and from GET /api/summary elsewhere), which a
login that may not read the fleet never asks for."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from dashfleet_core.models import Report, utcnow

from a11y_support import a11y_server, new_context, watch_problems

VIEWPORT = {"width": 1280, "height": 860}
RECORD_ANNOUNCEMENTS = """() => { window.__said = [];
  new MutationObserver(() => { const text = document.getElementById('announcer').textContent;
    if (text) window.__said.push(text); }).observe(document.getElementById('announcer'), {childList: true, characterData: true, subtree: true}); }"""


def report(fleet, machine_id: str, seq: int, cpu: float, *, ago: float = 5, received_ago: float | None = None,
           ram: float = 40.0, disk: float = 50.0) -> None:
    """Store one report (and the health the server's policy gives it) as the ingest path would."""
    now = utcnow()
    rep = Report(machine_id=machine_id, hostname=machine_id, os="Linux", agent_version="0.1.0", seq=seq,
                 collected_at=now - timedelta(seconds=ago),
                 metrics={"cpu.percent": cpu, "memory.percent": ram, "disk.percent": disk})
    received = now - timedelta(seconds=received_ago if received_ago is not None else ago)
    fleet.storage.save_reports([(rep, fleet.engine.evaluate(rep.metrics))], received_at=received)


def small_fleet(fleet) -> None:
    """pc-1..pc-3 fine, pc-7 critical (CPU 99 %), and three samples of this server's machine."""
    for i, name in enumerate(("pc-1", "pc-2", "pc-3")):
        report(fleet, name, 1, 10.0 + i)
    report(fleet, "pc-7", 1, 99.0)
    now = utcnow()
    for seq, (cpu, ram) in enumerate([(12.0, 51.0), (87.0, 55.0), (35.0, 53.0)]):
        fleet.ingest([Report(machine_id=fleet.self_machine_id, hostname="dashfleet-server", seq=seq,
                             collected_at=now - timedelta(seconds=30 - seq * 10),
                             metrics={"cpu.percent": cpu, "memory.percent": ram, "disk.percent": 40.0})])


@pytest.fixture
def world(tmp_path, chromium_browser):
    """`open_as(user, path)` on a fresh server with the small fleet; the fleet is `open_as.fleet`."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    with a11y_server(tmp_path, small_fleet) as (base, fleet):
        opened = []

        def open_as(user, path, **options):
            context = new_context(chromium_browser, base, fleet, user, viewport=VIEWPORT, **options)
            pg = context.new_page()
            pg.problems = watch_problems(pg, base)
            pg.base = base
            pg.summary_requests = []
            pg.on("request", lambda r: pg.summary_requests.append(r.url) if r.url.endswith("/api/summary") else None)
            pg.goto(base + path)
            opened.append((context, pg))
            return pg

        open_as.fleet = fleet
        open_as.base = base
        yield open_as
        for context, pg in opened:
            context.close()
            assert pg.problems == []


def _next_fleet_refresh(pg):
    with pg.expect_response(lambda r: r.url.endswith("/api/fleet"), timeout=20_000):
        pass


# --- the live region --------------------------------------------------------------------------------

def test_a_status_change_between_refreshes_is_announced_once(world):
    from playwright.sync_api import expect

    pg = world("root", "/fleet")
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(5)
    pg.evaluate(RECORD_ANNOUNCEMENTS)
    assert pg.locator("[aria-live]").count() == 1
    expect(pg.locator("#announcer")).to_have_attribute("aria-live", "polite")
    _next_fleet_refresh(pg)  # a refresh that changed nothing says nothing
    pg.wait_for_timeout(300)
    assert pg.evaluate("() => window.__said") == []
    report(world.fleet, "pc-2", 2, 99.0)  # pc-2 turns critical
    expect(pg.locator("#announcer")).to_have_text("pc-2 is now critical")
    _next_fleet_refresh(pg)
    _next_fleet_refresh(pg)
    pg.wait_for_timeout(300)
    assert pg.evaluate("() => window.__said") == ["pc-2 is now critical"]
    # in the reader's language
    pg.select_option("#lang", "fr")
    report(world.fleet, "pc-2", 3, 10.0)
    expect(pg.locator("#announcer")).to_have_text("pc-2 est maintenant « ok »")


def test_machines_going_silent_are_announced_together(chromium_browser, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=45_000)

    def seed(fleet):
        report(fleet, "pc-1", 1, 10.0)
        # pc-8 and pc-9 reported 15 s ago: with a 40 s TTL they go silent while the page is open
        report(fleet, "pc-8", 1, 10.0, ago=15)
        report(fleet, "pc-9", 1, 10.0, ago=15)

    with a11y_server(tmp_path, seed, {"server.ttl_seconds": 40}) as (base, fleet):
        context = new_context(chromium_browser, base, fleet, "root", viewport=VIEWPORT)
        try:
            pg = context.new_page()
            problems = watch_problems(pg, base)
            pg.goto(base + "/fleet")
            expect(pg.locator("#fleet-table tbody tr")).to_have_count(3)
            assert pg.locator("tr.expired").count() == 0, "the machines went silent before the first refresh"
            expect(pg.locator("tr.expired")).to_have_count(2)
            expect(pg.locator("#announcer")).to_have_text("2 machines went silent")
        finally:
            context.close()
    assert problems == []


def test_the_live_page_announces_a_change_of_its_health_status(world):
    from playwright.sync_api import expect

    from dashfleet_core.config import Threshold

    pg = world("root", "/")
    expect(pg.locator("#score")).not_to_be_empty()
    first = pg.locator("#badge").get_attribute("data-i18n").split(".")[1]
    pg.evaluate(RECORD_ANNOUNCEMENTS)
    # the server's own machine is measured live: change the server's health policy instead, so
    # its next measurement scores otherwise (everything critical, or nothing at all)
    thresholds = world.fleet.engine.settings.health.thresholds
    if first != "critical":
        thresholds["uptime.seconds"] = Threshold(warn=1, critical=2)
        other, word = "critical", "critical"
    else:
        for name in list(thresholds):
            thresholds[name] = Threshold(warn=1e12, critical=2e12)
        other, word = "ok", "ok"
    expect(pg.locator("#badge")).to_have_attribute("data-i18n", f"status.{other}")
    expect(pg.locator("#announcer")).to_have_text(f"This machine is now {word}")
    for _ in range(2):  # two more refreshes with the same status say nothing more
        with pg.expect_response(lambda r: r.url.endswith("/api/status")):
            pass
    pg.wait_for_timeout(300)
    assert pg.evaluate("() => window.__said") == [f"This machine is now {word}"]


# --- the page's language ------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "fr", "es", "ru"])
def test_html_lang_follows_the_chosen_language_on_every_page(world, lang):
    from playwright.sync_api import expect

    pg = world("root", "/fleet")
    pg.select_option("#lang", lang)
    for path in ("/", "/history", "/fleet", "/fleet/pc-7", "/settings"):
        pg.goto(pg.base + path)
        expect(pg.locator("html")).to_have_attribute("lang", lang)
        expect(pg.locator("html")).to_have_attribute("dir", "ltr")
    pg.goto(pg.base + "/login")
    expect(pg.locator("html")).to_have_attribute("lang", lang)


# --- charts in words ----------------------------------------------------------------------------------

def test_the_machine_chart_has_a_text_alternative_matching_the_stored_data(world):
    from playwright.sync_api import expect

    fleet = world.fleet
    for seq, (cpu, ram, ago) in enumerate([(4.0, 30.0, 3000), (61.0, 70.0, 1800), (23.0, 45.0, 120)], start=10):
        report(fleet, "pc-chart", seq, cpu, ago=ago, received_ago=ago, ram=ram, disk=50.0)
    pg = world("root", "/fleet/pc-chart")
    canvas = pg.locator("#m-chart")
    expect(canvas).to_have_attribute("role", "img")
    expect(canvas).to_have_attribute("aria-label", "Chart of CPU, memory and disk; its summary in words follows")
    expect(canvas).to_have_attribute("aria-describedby", "m-chart-summary")
    items = pg.locator("#m-chart-summary li")
    expect(items).to_have_text(["CPU: now 23 %, between 4 % and 61 % over the last hour",
                                "Memory: now 45 %, between 30 % and 70 % over the last hour",
                                "Disk: now 50 %, between 50 % and 50 % over the last hour"])
    pg.select_option("#range", "86400")
    expect(items.first).to_have_text("CPU: now 23 %, between 4 % and 61 % over the last 24 hours")
    pg.select_option("#lang", "ru")
    expect(items.first).to_have_text("Процессор: сейчас 23 %, от 4 % до 61 % за последние 24 часа")
    expect(canvas).to_have_attribute("aria-label", "График процессора, памяти и диска; далее его описание словами")


def test_the_history_chart_has_a_text_alternative_matching_the_stored_samples(world):
    from playwright.sync_api import expect

    pg = world("root", "/history")
    expect(pg.locator("#history-chart")).to_have_attribute("aria-describedby", "history-chart-summary")
    expect(pg.locator("#history-chart-summary li")).to_have_text([
        "CPU: now 35 %, between 12 % and 87 % over the last 3 samples",
        "Memory: now 53 %, between 51 % and 55 % over the last 3 samples",
        "Disk: now 40 %, between 40 % and 40 % over the last 3 samples"])
    pg.select_option("#lang", "es")
    expect(pg.locator("#history-chart-summary li").first).to_have_text(
        "CPU: ahora 35 %, entre 12 % y 87 % en las últimas 3 muestras")


# --- the fleet's worst status in the tab ------------------------------------------------------------------

def _icon(pg):
    return pg.locator('link[rel="icon"]')


def test_title_and_favicon_show_the_worst_status_and_follow_the_refresh(world):
    from playwright.sync_api import expect

    pg = world("root", "/fleet")
    expect(pg).to_have_title("1 critical · DashFleet · fleet")
    expect(_icon(pg)).to_have_attribute("data-status", "critical")
    assert _icon(pg).get_attribute("href").startswith("data:image/svg+xml,")
    assert pg.summary_requests == []  # the fleet page counts its own list
    report(world.fleet, "pc-7", 2, 10.0)  # the critical one recovers: all ok
    expect(pg).to_have_title("All OK · DashFleet · fleet")
    expect(_icon(pg)).to_have_attribute("data-status", "ok")
    pg.select_option("#lang", "fr")
    expect(pg).to_have_title("Tout va bien · DashFleet · parc")


def test_other_pages_read_the_worst_status_from_the_summary(world):
    from playwright.sync_api import expect

    for path, title in (("/fleet/pc-1", "1 critical · DashFleet · machine"), ("/", "1 critical · DashFleet · live"),
                        ("/settings", "1 critical · DashFleet · settings")):
        pg = world("vera", path)
        expect(pg).to_have_title(title)
        expect(_icon(pg)).to_have_attribute("data-status", "critical")
        assert pg.summary_requests
    report(world.fleet, "pc-2", 2, 80.0, ram=95.0)  # a warning beside the critical one: still critical
    _, read_key = world.fleet.accounts.keys.create("default", name="a script", scopes=["read"])
    answer = requests.get(world.base + "/api/summary", headers={"Authorization": f"Bearer {read_key}"},
                          timeout=10).json()
    assert {k: answer[k] for k in ("count", "ok", "warn", "critical", "silent", "worst")} == {
        "count": 5, "ok": 3, "warn": 1, "critical": 1, "silent": 0, "worst": "critical"}


def test_who_cannot_read_the_fleet_gets_the_plain_title_and_icon_and_no_counts(world):
    """Every dashboard login reads some organisation's fleet (a user without a role cannot sign in):
    the pages without one are the login's. They keep the plain title and icon and ask for nothing;
    the counts refuse a request without a credential or with one that cannot read."""
    from playwright.sync_api import expect

    pg = world(None, "/login")
    expect(pg.locator("h1")).to_have_text("Log in")
    pg.wait_for_load_state("networkidle")
    expect(pg).to_have_title("DashFleet · log in")
    assert _icon(pg).get_attribute("href") == "/static/favicon.svg"
    assert pg.summary_requests == []
    pg.goto(pg.base + "/fleet")  # a page of the fleet sends the anonymous to the login
    expect(pg).to_have_url(pg.base + "/login?next=/fleet")
    assert requests.get(world.base + "/api/summary", timeout=10).status_code == 401
    _, report_key = world.fleet.accounts.keys.create("default", name="agents", scopes=["report"])
    refused = requests.get(world.base + "/api/summary", headers={"Authorization": f"Bearer {report_key}"}, timeout=10)
    assert refused.status_code == 403 and set(refused.json()) == {"error"}


# --- tables and landmarks ------------------------------------------------------------------------------

TABLES = """() => [...document.querySelectorAll('table')].map((table) => ({
  id: table.id, caption: table.caption ? table.caption.textContent.trim() : '',
  cols: [...table.querySelectorAll('thead th')].map((th) => th.getAttribute('scope')),
  rows: [...table.querySelectorAll('tbody th')].map((th) => th.getAttribute('scope')),
  sorted: [...table.querySelectorAll('th[aria-sort]')].map((th) => th.dataset.key + ' ' + th.getAttribute('aria-sort'))}))"""


def test_every_table_has_a_caption_and_scoped_headers_and_every_page_one_h1_and_its_landmarks(world):
    from playwright.sync_api import expect

    report(world.fleet, "pc-7", 2, 99.0)
    for path, ready in (("/fleet", "#fleet-table tbody tr"), ("/history", "#history-table tbody tr"),
                        ("/fleet/pc-7", "#facts tbody tr"), ("/settings", "#keys-table tbody tr"),
                        ("/", "#findings li")):
        pg = world("root", path)
        pg.locator(ready).first.wait_for()
        expect(pg.locator("h1")).to_have_count(1)
        for landmark in ("header", "nav", "main#main"):
            expect(pg.locator(landmark)).to_have_count(1)
        for table in pg.evaluate(TABLES):
            assert table["caption"], (path, table)
            assert set(table["cols"]) <= {"col"}, (path, table)
            assert set(table["rows"]) <= {"row"}, (path, table)
            if table["id"] == "fleet-table":
                assert table["sorted"] == ["status descending"], table  # the default view: by status
            else:
                assert table["sorted"] == [], table
            if table["id"] == "facts":
                assert len(table["rows"]) >= 5, table
