"""The pages in a real browser (Debian's Chromium via Playwright) against a live server on
127.0.0.1 with data: they render, sort, filter, keep both across refreshes, switch language and
remember it, show agent data as text, and log no console error. Screenshots of each page are
written to docs/screenshots/ when DASHFLEET_SCREENSHOTS=1."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path

import pytest

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Event, Report, utcnow

from conftest import REPO, serving

XSS = "<img src=x onerror=alert(1)>"
SHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}


def _seed(fleet: Fleet) -> None:
    now = utcnow()
    machines = [
        ("ws-accounting-01", "ws-accounting-01", 23.0, 61.0, 48.0, 4),
        ("ws-design-02", "ws-design-02", 97.5, 72.0, 51.0, 4),
        ("srv-files", "srv-files", 41.0, 93.0, 88.0, 4),
        ("evil", XSS, 5.0, 20.0, 30.0, 4),
        ("laptop-old", "laptop-old", 11.0, 35.0, 66.0, 3600),
    ]
    for machine_id, hostname, cpu, ram, disk, age in machines:
        items = []
        for i in range(120):
            at = now - timedelta(seconds=age + (119 - i) * 30)
            wave = math.sin(i / 9.0) * 6
            rep = Report(machine_id=machine_id, hostname=hostname, os="Linux 6.1" if "srv" in machine_id else "Windows 11",
                         agent_version="0.1.0", seq=i, collected_at=at,
                         metrics={"cpu.percent": max(0.0, min(100.0, cpu + wave)), "memory.percent": ram,
                                  "disk.percent": disk, "uptime.seconds": 86400 * 3 + i * 30},
                         facts={"os.release": "22H2", "cpu.model": "Intel(R) Core(TM) i5", "owner": XSS})
            items.append((rep, fleet.engine.evaluate(rep.metrics)))
        fleet.storage.save_reports(items, received_at=now - timedelta(seconds=age))
    fleet.storage.add_event(Event(machine_id="ws-design-02", kind="status_changed", previous="ok",
                                  status="critical", score=50, message="cpu.percent is 97.5", at=now))
    # a silent event carries the status tracked before the machine went quiet (ok here)
    fleet.storage.add_event(Event(machine_id="laptop-old", kind="silent", previous="ok", status="ok",
                                  message="no report for 60 minutes", at=now - timedelta(minutes=5)))
    fleet.storage.kv_put("maintenance", "srv-files", {"until": (now + timedelta(hours=2)).isoformat(),
                                                      "reason": "disk replacement", "by": "ops"})
    for i in range(300):
        rep = Report(machine_id=fleet.self_machine_id, hostname="dashfleet-server", seq=i,
                     collected_at=now - timedelta(seconds=(299 - i) * 10),
                     metrics={"cpu.percent": 30 + math.sin(i / 15) * 20, "memory.percent": 55 + math.cos(i / 40) * 5,
                              "disk.percent": 40.0})
        fleet.ingest([rep])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web-browser")
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp}/dashfleet.db", "server.data_dir": str(tmp),
        "server.token": "browser-test", "server.report_self": False, "server.public_read": True,
        "agent.machine_id": "dashfleet-server"})
    fleet = Fleet(settings)
    _seed(fleet)
    with serving(fleet) as base:
        yield base


@pytest.fixture
def page(chromium_browser, live_server):
    """A fresh browser context (empty localStorage) whose console errors fail the test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)  # a loaded CI machine is slow, not wrong
    context = chromium_browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    pg = context.new_page()
    problems = []
    pg.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog opened: {d.message}"), d.dismiss()))
    pg.on("request", lambda req: problems.append(f"external request: {req.url}")
          if not req.url.startswith(live_server) else None)
    pg.base = live_server
    yield pg
    context.close()
    assert problems == []


def _shot(pg, name):
    """Screenshot the page: into docs/screenshots/ with DASHFLEET_SCREENSHOTS=1 (to refresh the
    committed ones), else into a temp folder so a test run leaves the work tree clean."""
    import os
    import tempfile

    folder = SHOTS if os.environ.get("DASHFLEET_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "dashfleet-shots"
    folder.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(folder / name), full_page=True)
    assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _ids(pg):
    return pg.locator("#fleet-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.machineId)")


def test_live_page_shows_this_machine_and_refreshes(page):
    from playwright.sync_api import expect

    page.goto(page.base + "/")
    expect(page.locator("#score")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#badge")).to_have_class(re.compile(r"badge (ok|warn|critical)"))
    expect(page.locator("#cpu")).to_contain_text("%")
    expect(page.locator("#uptime")).not_to_have_text("–")
    first = page.locator("#updated").text_content()
    with page.expect_response(lambda r: r.url.endswith("/api/status")):
        pass  # the next 2.5 s refresh
    expect(page.locator("#updated")).to_be_visible()
    assert first
    _shot(page, "live.png")


def test_history_page_charts_and_last_20_rows(page):
    from playwright.sync_api import expect

    page.goto(page.base + "/history")
    expect(page.locator("#history-table tbody tr")).to_have_count(20)
    expect(page.locator("#history-count")).to_have_text("300 samples")
    assert page.evaluate("() => Chart.getChart('history-chart').data.datasets.map(d => d.data.length)") == [300, 300, 300]
    _shot(page, "history.png")


def test_fleet_page_lists_marks_sorts_and_escapes(page):
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet")
    rows = page.locator("#fleet-table tbody tr")
    expect(rows).to_have_count(6)
    evil = page.locator('tr[data-machine-id="evil"] a.host')
    expect(evil).to_have_text(XSS)
    assert page.locator("#fleet-table img").count() == 0
    expect(page.locator('tr[data-machine-id="laptop-old"] .tag.expired')).to_have_text("Silent")
    expect(page.locator('tr[data-machine-id="laptop-old"]')).to_have_class("expired")
    expect(page.locator('tr[data-machine-id="srv-files"] .maint')).to_contain_text("maintenance until")
    expect(page.locator('tr[data-machine-id="ws-design-02"] td.reason')).to_contain_text("at or above the critical level 95")

    page.click('th[data-key="cpu"] button')
    expect(page.locator('th[data-key="cpu"]')).to_have_attribute("aria-sort", "ascending")
    cpu_values = page.locator("#fleet-table tbody tr td:nth-child(5)").all_text_contents()
    numbers = [float(v) for v in cpu_values]
    assert numbers == sorted(numbers)
    page.click('th[data-key="cpu"] button')
    expect(page.locator('th[data-key="cpu"]')).to_have_attribute("aria-sort", "descending")
    assert _ids(page)[0] == "ws-design-02"
    page.click('th[data-key="hostname"] button')
    assert _ids(page) == ["evil", "dashfleet-server", "laptop-old", "srv-files", "ws-accounting-01", "ws-design-02"]
    page.click('th[data-key="hostname"] button')
    assert _ids(page) == ["ws-design-02", "ws-accounting-01", "srv-files", "laptop-old", "dashfleet-server", "evil"]
    _shot(page, "fleet.png")


def test_fleet_filter_and_sort_survive_auto_refresh_and_reload(page):
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet")
    rows = page.locator("#fleet-table tbody tr")
    expect(rows).to_have_count(6)
    page.fill("#filter", "ws-")
    expect(rows).to_have_count(2)
    page.select_option("#status-filter", "critical")
    expect(rows).to_have_count(1)
    assert _ids(page) == ["ws-design-02"]
    page.select_option("#status-filter", "")
    page.click('th[data-key="score"] button')
    expected = _ids(page)
    assert expected == ["ws-design-02", "ws-accounting-01"]
    with page.expect_response(lambda r: r.url.endswith("/api/fleet"), timeout=15000):
        pass  # the 5 s auto-refresh
    page.wait_for_timeout(200)
    assert _ids(page) == expected
    assert page.input_value("#filter") == "ws-"
    page.select_option("#status-filter", "expired")
    expect(rows).to_have_count(0)
    page.fill("#filter", "")
    expect(rows).to_have_count(1)
    assert _ids(page) == ["laptop-old"]
    page.reload()
    expect(rows).to_have_count(1)
    assert page.input_value("#status-filter") == "expired"


def test_machine_page_facts_findings_chart_events(page):
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet")
    page.click('tr[data-machine-id="ws-design-02"] a.host')
    expect(page).to_have_url(page.base + "/fleet/ws-design-02")
    expect(page.locator("#m-name")).to_have_text("ws-design-02")
    expect(page.locator("#m-badge")).to_have_text("Critical")
    expect(page.locator("#facts")).to_contain_text("Intel(R) Core(TM) i5")
    expect(page.locator("#facts")).to_contain_text(XSS)
    expect(page.locator("#m-findings li")).to_have_count(1)
    expect(page.locator("#events li.event")).to_have_count(1)
    expect(page.locator("#events")).to_contain_text("Status changed")
    page.wait_for_function("() => Chart.getChart('m-chart') && Chart.getChart('m-chart').data.datasets.length === 3")
    points = page.evaluate("() => Chart.getChart('m-chart').data.datasets[0].data.length")
    assert points > 50
    _shot(page, "machine.png")
    with page.expect_response(lambda r: "/history?" in r.url):
        page.select_option("#range", "604800")
    expect(page.locator("#m-chart-empty")).to_be_hidden()


def test_machine_page_shows_no_status_badge_on_a_silent_event(page):
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet/laptop-old")
    event = page.locator("#events li.event")
    expect(event).to_have_count(1)
    expect(event).to_contain_text("Went silent")
    expect(event).to_contain_text("no report for 60 minutes")
    assert event.locator(".badge").count() == 0  # not "Went silent OK"


def test_machine_page_of_a_hostile_hostname_shows_it_as_text(page):
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet/evil")
    expect(page.locator("#m-name")).to_have_text(XSS)
    assert page.locator("main img").count() == 0


@pytest.mark.parametrize("lang,fleet_word,status_word", [("fr", "Parc", "Critique"), ("es", "Flota", "Crítico"),
                                                          ("ru", "Парк", "Критично")])
def test_language_switch_translates_every_page_and_is_remembered(page, lang, fleet_word, status_word):
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet")
    expect(page.locator("#fleet-table tbody tr")).to_have_count(6)
    page.select_option("#lang", lang)
    expect(page.locator('nav a[href="/fleet"]')).to_have_text(fleet_word)
    expect(page.locator('tr[data-machine-id="ws-design-02"] .badge').first).to_have_text(status_word)
    assert page.evaluate("() => document.documentElement.lang") == lang
    for path in ("/", "/history", "/fleet", "/fleet/ws-design-02"):
        page.goto(page.base + path)
        expect(page.locator('nav a[href="/fleet"]')).to_have_text(fleet_word)
        assert page.input_value("#lang") == lang
        untranslated = page.evaluate("""() => [...document.querySelectorAll('[data-i18n]')]
              .filter(e => e.textContent === e.dataset.i18n || (document.documentElement.lang !== 'en'
                        && e.textContent === (I18N.en[e.dataset.i18n]) && I18N.en[e.dataset.i18n] !== I18N[document.documentElement.lang][e.dataset.i18n]))
              .map(e => e.dataset.i18n)""")
        assert untranslated == [], (path, untranslated)
    if lang == "fr":
        page.goto(page.base + "/fleet")
        expect(page.locator("#fleet-table tbody tr")).to_have_count(6)
        _shot(page, "fleet-fr.png")
