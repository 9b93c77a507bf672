"""docs/migrating.md stays true: every `dashfleet` command and flag it names exists (asked of the
installed command's --help), every endpoint is a route of the app, every environment variable is
one the config reads, every file of the project it names is there, and every original name the
issue lists has a row.
"""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache

import pytest

from conftest import REPO, dashfleet_cmd

DOC = REPO / "docs" / "migrating.md"
TEXT = DOC.read_text(encoding="utf-8")

# The original's surface as issue 15 lists it: each must appear in the doc's first column.
ORIGINAL = [
    "python main.py", "--interval S", "--export-csv PATH", "--export-jsonl PATH", "python main.py --web",
    "--host H", "--port P", "python desktop_app.py", "python fleet_agent.py", "pip install -r requirements.txt",
    "pyinstaller --onefile", "dist/main.exe --web", "scripts/migrate_fleet_to_sqlite.py",
    "scripts/install_systemd.sh", "deploy/systemd/dashfleet.service", "scripts/install_windows_agent.ps1",
    "scripts/install_windows_agent_multi.ps1 -Targets", "packaging/chocolatey/", "packaging/wix/DashFleet.wxs",
    "Render", "FLEET_TOKEN", "FLEET_TTL_SECONDS", "ACTION_TOKEN", "WEBHOOK_URL", "WEBHOOK_MIN_SECONDS",
    "HOST", "PORT", "logs/metrics.csv", "logs/metrics.jsonl", "logs/fleet_state.json", "/", "/history",
    "/fleet", "/api/stats", "/api/status", "/api/history?limit=", "/api/fleet/report", "/api/fleet",
    "/api/action", "/api/agent/link", "/download/agent/<token>", "/api/orgs",
]


def rows() -> list[list[str]]:
    """Every table row of the doc as its cells (header and separator rows left out)."""
    found = []
    for line in TEXT.splitlines():
        if not line.startswith("| ") or line.startswith("| ---") or line.startswith("| original |"):
            continue
        found.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return found


FENCED = re.compile(r"```\w*\n(.*?)```", re.S)


def spans(text: str) -> list[str]:
    """Inline code spans (fenced blocks left out)."""
    return re.findall(r"`([^`\n]+)`", FENCED.sub("", text))


def dashfleet_invocations() -> list[str]:
    """Every `dashfleet ...` command the doc gives, inline or in its code blocks."""
    candidates = spans(TEXT) + [line for block in FENCED.findall(TEXT) for line in block.splitlines()]
    found = []
    for text in candidates:
        match = re.search(r"(?:^|[\s/\\])dashfleet(?:\.exe)? ([a-z].*)$", text)
        if match:
            found.append("dashfleet " + match[1].split("  #")[0].strip())
    return sorted(set(found))


@lru_cache(maxsize=None)
def help_of(words: tuple[str, ...]) -> tuple[int, str]:
    done = subprocess.run(dashfleet_cmd() + list(words) + ["--help"], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_every_original_name_has_a_row():
    first = " ".join(cells[0] for cells in rows())
    missing = [name for name in ORIGINAL if name not in first]
    assert not missing, f"docs/migrating.md has no row for {missing}"
    assert all(len(cells) == 3 and all(cells) for cells in rows()), "every row: original, DashFleet, why"


@pytest.mark.parametrize("line", dashfleet_invocations())
def test_every_dashfleet_command_and_flag_exists(line):
    words = line.split()[1:]
    path = []
    for word in words:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        code, out = help_of(tuple(path + [word]))
        if code != 0:
            break
        path.append(word)
    if not path:
        top = words[0]
        raise AssertionError(f"`{line}`: `dashfleet {top}` is no command")
    _, out = help_of(tuple(path))
    flags = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line)
    missing = [flag for flag in flags if not re.search(rf"(?m)^\s+(?:-\w, )?{re.escape(flag)}\b", out)]
    assert not missing, f"`{line}`: `dashfleet {' '.join(path)}` has no {missing}"


def _endpoint_cells() -> list[str]:
    section = TEXT[TEXT.index("## Endpoints"):]
    return [cells[1] for cells in rows() if f"| {cells[0]} | {cells[1]} |" in section]


def test_every_endpoint_is_a_route_of_the_app(settings_factory):
    from dashfleet_web.app import create_app

    app = create_app(settings_factory({"server.report_self": False}), start=False)
    try:
        rules = {re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule) for rule in app.url_map.iter_rules()}
    finally:
        app.extensions["dashfleet"].stop()
    named = set()
    for cell in _endpoint_cells():
        for span in spans(cell):
            match = re.fullmatch(r"(?:(?:GET|POST|DELETE|PUT) )?(/[^\s?]*)(?:\?.*)?", span)
            if match:
                named.add(match[1])
    assert {"/", "/api/stats", "/api/fleet/report", "/download/agent/<token>"} <= named
    missing = sorted(named - rules)
    assert not missing, f"docs/migrating.md names endpoints the app does not have: {missing}"


def _section_rows(title: str, next_title: str) -> list[list[str]]:
    section = TEXT[TEXT.index(title):TEXT.index(next_title)]
    return [cells for cells in rows() if f"| {cells[0]} | {cells[1]} |" in section]


def test_every_environment_variable_is_read_by_the_config():
    from dashfleet_core.config import CONFIG_ENV, ENV_OVERRIDES

    named = {word for cells in _section_rows("## Environment variables", "## Files")
             for span in spans(cells[1]) for word in re.findall(r"\b[A-Z][A-Z_]{2,}\b", span.split("=")[0])}
    assert {"FLEET_TOKEN", "FLEET_TTL_SECONDS", "ACTION_TOKEN", "WEBHOOK_URL", "WEBHOOK_MIN_SECONDS", "HOST",
            "PORT"} <= named
    assert named <= set(ENV_OVERRIDES) | {CONFIG_ENV}, named - set(ENV_OVERRIDES) - {CONFIG_ENV}


def test_every_project_file_named_exists():
    named = set()
    for cells in rows():
        for span in spans(cells[1]):
            for word in span.split():
                if re.fullmatch(r"(?:scripts|deploy|packaging|docs|tools)/[\w./-]+|render\.yaml", word):
                    named.add(word)
    assert "scripts/install_systemd.sh" in named and "deploy/systemd/dashfleet-server.service" in named
    missing = sorted(name for name in named
                     if not (REPO / name).exists() and not (REPO / "packaging" / "chocolatey" / name).exists())
    assert not missing, f"docs/migrating.md names files the project does not have: {missing}"
