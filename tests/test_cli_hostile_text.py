"""Hostile text in terminals and CSV (issue 12, item 8): `dashfleet audit`, `status`, `watch` and
`export`, run as the installed command against a real SQLite file (and a real collector plugin)
holding ESC/OSC sequences, NUL, CR/LF and bidi overrides. Human output shows them as visible
stand-ins and never forges a line; --json and JSONL stay exact; CSV cells are escaped and defused."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import textwrap
from datetime import datetime, timezone

import pytest

from conftest import dashfleet_cmd
from dashfleet_core.config import Settings
from dashfleet_core.models import AuditEntry, Finding, Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
RAW = ("\x1b", "\x00", "\r", "\x07", "\u202e", "\x9b")  # none of these may reach a terminal raw
CLEAR_SCREEN = "\x1b[2J\x1b[H"
OSC_TITLE = "\x1b]0;pwned\x07"
FORGED = "\r\n2026-01-05 12:00:00Z admin                flush_dns        ok          {} forged"
AUDIT = AuditEntry(at=T0, actor="cli:" + OSC_TITLE, action="flush_dns" + CLEAR_SCREEN, outcome="ok\x00",
                   params={"note": OSC_TITLE}, details={"summary": "done" + FORGED + " \u202eexe.txt"})
FACTS = {"owner": '=HYPERLINK("https://evil.example","x")', "note": "a" + CLEAR_SCREEN + "b\r\nforged\x00",
         "rtl": "\u202eexe.txt", "c1": "\x9b31mred"}
HOSTNAME = "pc" + OSC_TITLE
FINDING = "disk\x1b[31m full\r\nforged line"


def run(args, cwd, env=None):
    environ = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    environ.update(env or {})
    return subprocess.run(dashfleet_cmd() + list(args), cwd=cwd, env=environ, capture_output=True,
                          timeout=120, text=True, encoding="utf-8", errors="surrogateescape")


def assert_terminal_safe(out: str) -> None:
    found = [c for c in RAW if c in out]
    assert not found, f"raw {found!r} reached stdout: {out!r}"


@pytest.fixture
def store(tmp_path):
    """A real SQLite file holding hostile text, and a config pointing at it."""
    url = f"sqlite:///{tmp_path}/data/dashfleet.db"
    settings = Settings()
    with open_storage(settings, make_plugin_manager(settings), url) as st:
        st.add_audit(AUDIT)
        # model_construct: stored data is hostile whatever ingest accepts today (older rows, imports)
        report = Report.model_construct(machine_id="pc-1", hostname=HOSTNAME, os="Linux", agent_version="1",
                                        seq=1, collected_at=T0, metrics={"cpu.percent": 1.0}, facts=FACTS,
                                        spool_dropped=0)
        st.save_report(report, Health(score=60, status="warn", findings=[
            Finding(severity="warn", message=FINDING, source="x")]))
    config = tmp_path / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n[server]\ndata_dir = "{tmp_path / "data"}"\n')
    return config


def test_audit_shows_controls_visibly_and_forges_no_line(store, tmp_path):
    r = run(["audit", "--config", str(store)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert_terminal_safe(r.stdout)
    assert len(r.stdout.splitlines()) == 1, "one row, one line: the stored CR/LF forged none"
    assert "cli:\u241b]0;pwned\u2407" in r.stdout and "flush_dns\u241b[2J\u241b[H" in r.stdout
    assert "ok\u2400" in r.stdout and "\u240d\u240a2026-01-05" in r.stdout and "<U+202E>exe.txt" in r.stdout


def test_audit_json_stays_exact(store, tmp_path):
    r = run(["audit", "--json", "--config", str(store)], tmp_path)
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert (row["actor"], row["action"], row["outcome"]) == (AUDIT.actor, AUDIT.action, AUDIT.outcome)
    assert row["params"] == AUDIT.params and row["details"] == AUDIT.details


def test_csv_export_escapes_controls_and_defuses_formulas(store, tmp_path):
    r = run(["export", "--format", "csv", "--config", str(store)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert_terminal_safe(r.stdout)
    [row] = list(csv.DictReader(io.StringIO(r.stdout)))
    assert row["fact:owner"] == "'" + FACTS["owner"], "a formula is shown as text"
    assert row["fact:note"] == "a\u241b[2J\u241b[Hb\u240d\u240aforged\u2400"
    assert row["fact:rtl"] == "<U+202E>exe.txt" and row["fact:c1"] == "<U+009B>31mred"
    assert row["health.findings"] == "disk\u241b[31m full\u240d\u240aforged line"


def test_jsonl_export_stays_exact(store, tmp_path):
    r = run(["export", "--format", "jsonl", "--config", str(store)], tmp_path)
    assert r.returncode == 0, r.stderr
    [line] = r.stdout.splitlines()
    record = json.loads(line)
    assert record["facts"] == FACTS and record["hostname"] == HOSTNAME
    assert record["health"]["findings"][0]["message"] == FINDING


@pytest.fixture
def hostile_collector(tmp_path):
    """A real collector plugin (a module listed in config) whose facts and failure are hostile."""
    (tmp_path / "hostile_plugin.py").write_text(textwrap.dedent(f"""
        from dashfleet_core import hookimpl
        from dashfleet_core.collectors import Reading

        class Facts:
            name = "hostile_facts"
            metrics = []
            def collect(self):
                return Reading(facts={FACTS!r})

        class Broken:
            name = "hostile_broken"
            metrics = []
            def collect(self):
                raise RuntimeError({FINDING!r})

        @hookimpl
        def register_collectors(register):
            register(Facts())
            register(Broken())
    """))
    config = tmp_path / "dashfleet.toml"
    config.write_text('[plugins]\nmodules = ["hostile_plugin"]\n')
    return config


def test_status_shows_controls_visibly_and_json_stays_exact(hostile_collector, tmp_path):
    env = {"PYTHONPATH": str(tmp_path)}
    r = run(["status", "--config", str(hostile_collector)], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert_terminal_safe(r.stdout)
    assert "a\u241b[2J\u241b[Hb\u240d\u240aforged\u2400" in r.stdout and "<U+202E>exe.txt" in r.stdout
    assert "disk\u241b[31m full\u240d\u240aforged line" in r.stdout
    assert not any(line.startswith(("forged", "b")) for line in r.stdout.splitlines())
    doc = json.loads(run(["status", "--json", "--config", str(hostile_collector)], tmp_path, env).stdout)
    assert {k: doc["facts"][k] for k in FACTS} == FACTS
    assert any(FINDING in f["message"] for f in doc["health"]["findings"])


def test_watch_and_its_csv_export_escape_controls(hostile_collector, tmp_path):
    env = {"PYTHONPATH": str(tmp_path)}
    out_csv, out_jsonl = tmp_path / "w.csv", tmp_path / "w.jsonl"
    r = run(["watch", "--count", "1", "--plain", "--interval", "0.1", "--export-csv", str(out_csv),
             "--export-jsonl", str(out_jsonl), "--config", str(hostile_collector)], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert_terminal_safe(r.stdout)
    assert "a\u241b[2J\u241b[Hb\u240d\u240aforged\u2400" in r.stdout
    text = out_csv.read_text(encoding="utf-8")
    assert_terminal_safe(text)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["fact:owner"] == "'" + FACTS["owner"] and row["fact:rtl"] == "<U+202E>exe.txt"
    [line] = out_jsonl.read_text(encoding="utf-8").splitlines()
    assert {k: json.loads(line)["facts"][k] for k in FACTS} == FACTS
