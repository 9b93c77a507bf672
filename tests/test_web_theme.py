"""Dark mode in a real browser (Debian's Chromium via Playwright, a live server on 127.0.0.1): the
pages follow the system's prefers-color-scheme, the header's switch overrides it and is remembered
across a reload, the remembered theme is on <html> before the page's body exists (no flash), status
colours keep 4.5:1 contrast on their backgrounds in both themes, and the charts take the theme's
colours and follow the width of the page."""

from __future__ import annotations

import math
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Report, utcnow
from dashfleet_web.app import create_app

# text colour / background pairs that carry meaning (style.css): status badges and words, the
# maintenance note, links, buttons, muted text, the header, the one-time panels
PAIRS = [
    ("--ok", "--ok-bg"), ("--warn", "--warn-bg"), ("--crit", "--crit-bg"), ("--gone", "--gone-bg"),
    ("--ok", "--panel"), ("--warn", "--panel"), ("--crit", "--panel"), ("--maint", "--panel"), ("--maint", "--bg"),
    ("--ink", "--bg"), ("--ink", "--panel"), ("--muted", "--bg"), ("--muted", "--panel"), ("--muted", "--th-bg"),
    ("--accent", "--panel"), ("--accent", "--bg"), ("--on-accent", "--accent"), ("--head-ink", "--head-bg"),
    ("--head-strong", "--head-bg"),
]


def _seed(fleet: Fleet) -> None:
    now = utcnow()
    for machine_id, cpu, ram in (("ws-ok", 10.0, 20.0), ("ws-warn", 80.0, 20.0), ("ws-crit", 99.0, 20.0)):
        rep = Report(machine_id=machine_id, hostname=machine_id, seq=1, collected_at=now,
                     metrics={"cpu.percent": cpu, "memory.percent": ram, "disk.percent": 40.0})
        fleet.storage.save_reports([(rep, fleet.engine.evaluate(rep.metrics))], received_at=now)
    for i in range(60):
        fleet.ingest([Report(machine_id=fleet.self_machine_id, hostname="dashfleet-server", seq=i,
                             collected_at=now - timedelta(seconds=(59 - i) * 10),
                             metrics={"cpu.percent": 30 + math.sin(i / 9) * 20, "memory.percent": 50.0,
                                      "disk.percent": 40.0})])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from werkzeug.serving import make_server

    tmp = tmp_path_factory.mktemp("theme")
    fleet = Fleet(load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp}/dashfleet.db", "server.data_dir": str(tmp), "server.token": "theme-test",
        "server.report_self": False, "server.public_read": True, "agent.machine_id": "dashfleet-server"}))
    _seed(fleet)
    httpd = make_server("127.0.0.1", 0, create_app(fleet=fleet, start=False), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)
    fleet.stop()


@pytest.fixture
def browse(chromium_browser, base):
    """`browse(scheme, path, width=1280)`: a fresh context emulating that color scheme, on `path`."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    contexts, problems = [], []

    def open_page(scheme: str, path: str, width: int = 1280):
        context = chromium_browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme,
                                               locale="en-GB", timezone_id="UTC")
        contexts.append(context)
        pg = context.new_page()
        pg.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
        pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        pg.goto(base + path)
        return pg

    yield open_page
    for context in contexts:
        context.close()
    assert problems == []


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", css)[:3])


def _luminance(css: str) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in _rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _background(pg) -> float:
    return _luminance(pg.evaluate("getComputedStyle(document.body).backgroundColor"))


@pytest.mark.parametrize("system, other", [("dark", "light"), ("light", "dark")])
def test_the_page_follows_the_system_and_the_switch_overrides_it_across_a_reload(browse, system, other):
    from playwright.sync_api import expect

    dark = {"dark": lambda lum: lum < 0.1, "light": lambda lum: lum > 0.8}
    pg = browse(system, "/fleet")
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(4)  # and this server
    expect(pg.locator("#theme")).to_have_value("auto")
    assert dark[system](_background(pg))
    pg.select_option("#theme", other)
    assert dark[other](_background(pg))
    pg.reload()
    expect(pg.locator("#theme")).to_have_value(other)
    assert dark[other](_background(pg))
    pg.select_option("#theme", "auto")  # back to following the system
    assert dark[system](_background(pg))
    pg.reload()
    expect(pg.locator("#theme")).to_have_value("auto")
    assert dark[system](_background(pg))


def test_the_remembered_theme_is_set_before_the_body_is_parsed(browse):
    pg = browse("light", "/")
    pg.select_option("#theme", "dark")
    # record <html data-theme> at the moment <body> is inserted, before anything of it can paint
    pg.add_init_script("""new MutationObserver((changes, observer) => {
      if (document.body) { window.themeAtBody = document.documentElement.dataset.theme || "none"; observer.disconnect(); }
    }).observe(document, { childList: true, subtree: true });""")
    for path in ("/", "/login"):
        pg.goto(pg.url.split("/", 3)[0] + "//" + pg.url.split("/", 3)[2] + path)
        assert pg.evaluate("window.themeAtBody") == "dark", path


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_status_colours_reach_aa_contrast_in_both_themes(browse, scheme):
    from playwright.sync_api import expect

    pg = browse(scheme, "/fleet")
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(4)  # and this server
    low = []
    for ink, paper in PAIRS:
        colours = pg.evaluate("([a, b]) => [themeColor(a), themeColor(b)]", [ink, paper])
        ratio = _contrast(*colours)
        if ratio < 4.5:
            low.append(f"{ink} on {paper}: {ratio:.2f}")
    # and as drawn: each status badge, in its word, on its own background
    for badge in pg.locator("#fleet-table .badge").all():
        fg, bg = badge.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
        if _contrast(fg, bg) < 4.5:
            low.append(f"badge {badge.text_content()}: {_contrast(fg, bg):.2f}")
        assert badge.text_content().strip(), "a badge without its word"
    assert low == [], f"{scheme}: " + "; ".join(low)


def test_charts_take_the_theme_colours_and_follow_the_page_width(browse):
    from playwright.sync_api import expect

    pg = browse("light", "/history", width=1440)
    pg.wait_for_function("() => Chart.getChart('history-chart') && Chart.getChart('history-chart').data.datasets.length === 3")
    colours = "() => { const c = Chart.getChart('history-chart'); return [c.options.scales.y.ticks.color, c.data.datasets[0].borderColor]; }"
    light = pg.evaluate(colours)
    assert light == pg.evaluate("() => [themeColor('--muted'), themeColor('--series-cpu')]")
    pg.select_option("#theme", "dark")
    pg.wait_for_function(f"() => ({colours})()[0] !== {light[0]!r}")
    dark = pg.evaluate(colours)
    assert dark == pg.evaluate("() => [themeColor('--muted'), themeColor('--series-cpu')]")
    assert dark[0] != light[0] and dark[1] != light[1]
    wide = pg.evaluate("() => Chart.getChart('history-chart').width")
    assert wide > 1000
    pg.set_viewport_size({"width": 390, "height": 844})
    pg.wait_for_function("() => Chart.getChart('history-chart').width < 390")
    expect(pg.locator("#history-chart")).to_be_visible()


def test_browsers_without_light_dark_get_the_light_value_of_every_colour():
    """The `@supports not (color: light-dark(...))` block of style.css names every colour of the
    palette with the light value of its pair: one missing or out of step would leave an old browser
    (Safari before 17.5) with an invalid colour, e.g. no background under the header's white text."""
    css = (Path(__file__).resolve().parent.parent / "web" / "static" / "style.css").read_text()
    palette = css[css.index(":root {"):css.index("}", css.index(":root {"))]
    light = dict((name, first) for name, first, _dark in
                 re.findall(r"(--[\w-]+): light-dark\((#[0-9a-fA-F]+), (#[0-9a-fA-F]+)\)", palette))
    start = css.index("@supports not (color: light-dark(")
    fallback = css[start:css.index("}", start)]
    assert light and dict(re.findall(r"(--[\w-]+): (#[0-9a-fA-F]+);", fallback)) == light
