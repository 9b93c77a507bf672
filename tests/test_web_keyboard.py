"""Keyboard only, in a real Chromium: every step uses `page.keyboard` (Tab, Shift+Tab, Enter, Space,
arrow keys, typing); the test never clicks and never calls focus(). It reads the page only to know
where focus is and to check each step's outcome."""

from __future__ import annotations

import pytest

from a11y_support import a11y_server, new_context, watch_problems

VIEWPORT = {"width": 1440, "height": 900}
FOCUSED = """() => { const e = document.activeElement;
  return e ? (e.id || e.dataset.key || (e.parentElement && e.parentElement.dataset.key) || e.textContent.trim()) : ""; }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with a11y_server(tmp_path_factory.mktemp("keyboard")) as found:
        yield found


@pytest.fixture
def keyboard_page(chromium_browser, server):
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    base, fleet = server
    opened = []

    def open_as(user: str, path: str):
        context = new_context(chromium_browser, base, fleet, user, viewport=VIEWPORT)
        pg = context.new_page()
        pg.problems = watch_problems(pg, base)
        pg.base = base
        pg.goto(base + path)
        opened.append((context, pg))
        return pg

    yield open_as
    for context, pg in opened:
        context.close()
        assert pg.problems == []


def tab_to(pg, matches, key: str = "Tab", limit: int = 60) -> str:
    """Press `key` until the focused element is the one `matches(description)` wants."""
    for _ in range(limit):
        pg.keyboard.press(key)
        where = pg.evaluate(FOCUSED)
        if matches(where):
            return where
    raise AssertionError(f"{key} x{limit} never reached the element; focus is on {pg.evaluate(FOCUSED)!r}")


def _ids(pg):
    return pg.locator("#fleet-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.machineId)")


def test_filter_sort_open_a_machine_change_range_and_language_with_the_keyboard_only(keyboard_page):
    from playwright.sync_api import expect

    pg = keyboard_page("root", "/fleet")
    rows = pg.locator("#fleet-table tbody tr")
    expect(rows).to_have_count(6)

    # 1. reach the filter from the top of the page and type in it
    tab_to(pg, lambda where: where == "filter")
    pg.keyboard.type("ws-")
    expect(rows).to_have_count(2)
    assert sorted(_ids(pg)) == ["ws-accounting-01", "ws-design-02"]

    # 2. sort by score: Enter on its header button sorts ascending, Space then descending
    tab_to(pg, lambda where: where == "score")
    score = pg.locator('th[data-key="score"]')
    expect(score.locator("button")).to_have_attribute("aria-label", "Score: sort ascending")
    pg.keyboard.press("Enter")
    expect(score).to_have_attribute("aria-sort", "ascending")
    assert pg.locator("#fleet-table th[aria-sort]").count() == 1
    assert _ids(pg) == ["ws-design-02", "ws-accounting-01"]
    expect(score.locator("button")).to_have_attribute("aria-label", "Score: sort descending")
    pg.keyboard.press("Space")
    expect(score).to_have_attribute("aria-sort", "descending")
    assert _ids(pg) == ["ws-accounting-01", "ws-design-02"]

    # 3. open the first machine: Tab on to its link, Enter
    tab_to(pg, lambda where: where == "ws-accounting-01")
    pg.keyboard.press("Enter")
    expect(pg).to_have_url(pg.base + "/fleet/ws-accounting-01")
    expect(pg.locator("#m-name")).to_have_text("ws-accounting-01")
    summary = pg.locator("#m-chart-summary li").first
    expect(summary).to_contain_text("over the last hour")

    # 4. change the chart range: the select, then an arrow key
    tab_to(pg, lambda where: where == "range")
    with pg.expect_response(lambda r: "/history?" in r.url):
        pg.keyboard.press("ArrowDown")
    assert pg.input_value("#range") == "21600"
    expect(summary).to_contain_text("over the last 6 hours")

    # 5. change the language: back up to the header's select, arrow down to Français
    tab_to(pg, lambda where: where == "lang", key="Shift+Tab")
    pg.keyboard.press("ArrowDown")
    expect(pg.locator("html")).to_have_attribute("lang", "fr")
    expect(pg.locator('nav a[href="/fleet"]')).to_have_text("Parc")
    expect(summary).to_contain_text("sur les 6 dernières heures")


def test_the_skip_link_comes_first_and_moves_focus_into_main(keyboard_page):
    from playwright.sync_api import expect

    pg = keyboard_page("root", "/fleet")
    expect(pg.locator("#fleet-table tbody tr")).to_have_count(6)
    pg.keyboard.press("Tab")
    skip = pg.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_have_text("Skip to content")
    box = skip.bounding_box()
    assert box and box["y"] >= 0 and box["width"] > 0  # shown when it has focus
    pg.keyboard.press("Enter")
    expect(pg.locator("main#main")).to_be_focused()
    # the next Tab goes on inside main: the filter is the first control there
    tab_to(pg, lambda where: where == "filter", limit=3)


def test_a_settings_dialog_takes_focus_escape_closes_it_and_focus_goes_back(keyboard_page):
    from playwright.sync_api import expect

    pg = keyboard_page("root", "/settings")
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#keys-table tbody tr")).to_have_count(1)
    # each row's button says which key it revokes
    assert pg.get_by_role("button", name="Revoke: agents of the Paris office").count() == 1
    tab_to(pg, lambda where: where == "Revoke", limit=120)
    opener = pg.evaluate("() => document.activeElement.closest('tr').textContent")
    pg.keyboard.press("Enter")
    dialog = pg.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(pg.locator("#confirm-cancel")).to_be_focused()
    assert pg.evaluate("() => document.getElementById('confirm').contains(document.activeElement)")
    pg.keyboard.press("Tab")
    expect(pg.locator("#confirm-ok")).to_be_focused()
    pg.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert pg.evaluate("() => document.activeElement.textContent.trim()") == "Revoke"
    assert pg.evaluate("() => document.activeElement.closest('tr').textContent") == opener
    expect(pg.locator("#keys-table tbody tr")).to_have_count(1)  # Escape revoked nothing
    # Enter on Cancel closes it as well, focus back on the same button
    pg.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    pg.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    assert pg.evaluate("() => document.activeElement.textContent.trim()") == "Revoke"


def test_every_focusable_element_shows_a_visible_focus_ring(keyboard_page):
    pg = keyboard_page("root", "/fleet")
    pg.locator("#fleet-table tbody tr").first.wait_for()
    seen = 0
    for _ in range(25):
        pg.keyboard.press("Tab")
        style = pg.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return [document.activeElement.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        if style[0] == "BODY":
            continue
        assert style[1] != "none" and style[2] >= 2, style
        seen += 1
    assert seen >= 20
