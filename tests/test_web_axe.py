"""axe-core (vendored: tests/vendor/axe.min.js, nothing loaded from the internet) on every page, in
a real Chromium, with realistic data: `/`, `/history`, `/fleet`, `/fleet/<id>`, `/login`, the
login's second step and `/settings` as a server admin and as a viewer; light and dark
(`prefers-color-scheme` emulated), at 1440x900 and 390x844. Each must have no serious or critical
violation, colour contrast included; no rule is turned off. A failure lists each violation's rule,
impact and the elements it found."""

from __future__ import annotations

import pytest

from a11y_support import PASSWORD, a11y_server, new_context, watch_problems
from conftest import REPO

AXE = REPO / "tests" / "vendor" / "axe.min.js"
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(" ")).slice(0, 8),
                   summary: v.nodes.length ? v.nodes[0].failureSummary : "" }));
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with a11y_server(tmp_path_factory.mktemp("axe")) as found:
        yield found


def _ready_fleet(pg):
    from playwright.sync_api import expect
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(6)


def _ready_machine(pg):
    from playwright.sync_api import expect
    expect(pg.locator("#m-chart-summary li")).to_have_count(3)
    expect(pg.locator("#events li")).not_to_have_count(0)


def _ready_history(pg):
    from playwright.sync_api import expect
    expect(pg.locator("#history-table tbody tr")).to_have_count(20)
    expect(pg.locator("#history-chart-summary li")).to_have_count(3)


def _ready_live(pg):
    from playwright.sync_api import expect
    expect(pg.locator("#findings li")).not_to_have_count(0)


def _ready_settings(pg):
    from playwright.sync_api import expect
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")


# (name, who is signed in, path, wait until the page shows its data)
PAGES = [
    ("live", "root", "/", _ready_live),
    ("history", "root", "/history", _ready_history),
    ("fleet", "root", "/fleet", _ready_fleet),
    ("machine", "root", "/fleet/ws-design-02", _ready_machine),
    ("settings as server admin", "root", "/settings", _ready_settings),
    ("settings as viewer", "vera", "/settings", _ready_settings),
    ("login", None, "/login", None),
]


def _axe(pg) -> list[dict]:
    pg.add_script_tag(path=str(AXE))
    return pg.evaluate(RUN_AXE)


def _second_step(pg, base):
    """The login's second step: tess has two-factor authentication, so her password leads there."""
    from playwright.sync_api import expect
    pg.goto(base + "/login?next=/fleet")
    pg.fill("#username", "tess")
    pg.fill("#password", PASSWORD)
    pg.click("#login-submit")
    expect(pg.locator("#code")).to_be_visible()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_serious_or_critical_axe_violation_on_any_page(chromium_browser, server, theme, viewport):
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    base, fleet = server
    found: list[str] = []
    problems: list[str] = []
    checked = []
    for name, user, path, ready in PAGES + [("login second step", None, None, None)]:
        # bypass_csp: the pages' CSP (script-src 'self') would refuse the injected axe script
        context = new_context(chromium_browser, base, fleet, user, viewport=VIEWPORTS[viewport],
                              color_scheme=theme, bypass_csp=True)
        try:
            pg = context.new_page()
            problems += watch_problems(pg, base)
            if path is None:
                _second_step(pg, base)
            else:
                pg.goto(base + path)
                if ready:
                    ready(pg)
            checked.append(name)
            for v in _axe(pg):
                found.append(f"{name} ({theme}, {viewport}): {v['id']} [{v['impact']}] on {v['targets']}: "
                             f"{v['summary'][:300]}")
        finally:
            context.close()
    assert len(checked) == 8
    assert not found, "axe-core violations:\n" + "\n".join(found)
    assert problems == []
