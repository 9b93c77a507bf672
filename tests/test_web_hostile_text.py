"""Hostile text on the pages (issue 12, item 8), in a real browser (Debian's Chromium via Playwright)
against a live server on 127.0.0.1: agent text is isolated (dir="auto" or <bdi>), so a bidi override
cannot reverse what surrounds it, and control and bidi characters show as visible stand-ins."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Event, Finding, Health, Report, utcnow
from test_web_browser import page  # noqa: F401  (the fixture: a fresh context that fails on console errors)
from conftest import serving

HOST = "\u202eexe.txt\x1b[2J"
HOST_SHOWN = "<U+202E>exe.txt\u241b[2J"
FACT = "a\x1b]0;pwned\x07b\r\nc\u2066"
FACT_SHOWN = "a\u241b]0;pwned\u2407b\u240d\u240ac<U+2066>"
FINDING = "disk\x1b[31m \u202efull"
FINDING_SHOWN = "disk\u241b[31m <U+202E>full"
HIDDEN = ["\x1b", "\x00", "\r", "\x07", "\u202e", "\u2066"]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web-hostile")
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp}/dashfleet.db", "server.data_dir": str(tmp),
        "server.token": "browser-test", "server.report_self": False, "server.public_read": True,
        "agent.machine_id": "dashfleet-server"})
    fleet = Fleet(settings)
    now = utcnow()
    health = Health(score=70, status="warn", findings=[Finding(severity="warn", message=FINDING, source="x")])
    # model_construct: what is stored is hostile whatever ingest accepts today (older rows, imports)
    report = Report.model_construct(
        machine_id="hostile", hostname=HOST, os="Linux\u202e 6.1", agent_version="0.1.0", seq=1,
        collected_at=now - timedelta(seconds=5), metrics={"cpu.percent": 10.0, "memory.percent": 20.0,
                                                          "disk.percent": 30.0, "uptime.seconds": 100.0},
        facts={"owner": FACT}, spool_dropped=0)
    fleet.storage.save_reports([(report, health)], received_at=now)
    fleet.storage.add_event(Event(machine_id="hostile", kind="status_changed", previous="ok", status="warn",
                                  score=70, message=FINDING, at=now))
    with serving(fleet) as base:
        yield base


def isolated(locator) -> bool:
    """The element is a <bdi> or has dir=auto: its text cannot reorder what is around it."""
    return locator.evaluate("n => n.tagName === 'BDI' || n.getAttribute('dir') === 'auto'")


def assert_nothing_hidden(page) -> None:
    text = page.evaluate("() => document.querySelector('main').textContent")
    assert not [c for c in HIDDEN if c in text], repr(text)


def test_fleet_page_isolates_and_shows_controls(page):  # noqa: F811
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet")
    name = page.locator('tr[data-machine-id="hostile"] a.host')
    expect(name).to_have_text(HOST_SHOWN)
    assert isolated(name)
    reason = page.locator('tr[data-machine-id="hostile"] td.reason')
    expect(reason).to_have_text(FINDING_SHOWN)
    assert isolated(reason)
    machine_id = page.locator('tr[data-machine-id="hostile"] td div.mono')
    assert isolated(machine_id)
    assert_nothing_hidden(page)


def test_machine_page_isolates_name_facts_findings_and_events(page):  # noqa: F811
    from playwright.sync_api import expect

    page.goto(page.base + "/fleet/hostile")
    name = page.locator("#m-name")
    expect(name).to_have_text(HOST_SHOWN)
    assert isolated(name)
    fact = page.locator("#facts tr", has_text="owner").locator("td")
    expect(fact).to_have_text(FACT_SHOWN)
    assert isolated(fact)
    os_cell = page.locator("#facts tr", has=page.locator('th[data-i18n="machine.os"]')).locator("td")
    expect(os_cell).to_have_text("Linux<U+202E> 6.1")
    assert isolated(os_cell)
    finding = page.locator("#m-findings li span").last
    expect(finding).to_have_text(FINDING_SHOWN)
    assert isolated(finding)
    message = page.locator("#events li.event span.muted")
    expect(message).to_have_text(FINDING_SHOWN)
    assert isolated(message)
    assert_nothing_hidden(page)


def test_live_page_isolates_hostname_and_machine_id(page):  # noqa: F811
    """The live page shows this server's own machine (its real hostname): each name in a <bdi>."""
    from playwright.sync_api import expect

    page.goto(page.base + "/")
    parts = page.locator("#host bdi")
    expect(parts).to_have_count(2)
    expect(parts.last).to_have_text("dashfleet-server")
    expect(page.locator("#host")).to_have_text(parts.first.text_content() + " (dashfleet-server)")
