"""`dashfleet export` and `dashfleet migrate`, run as the installed command against real files and
a real PostgreSQL schema."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from dashfleet_core.config import Settings
from dashfleet_core.models import AuditEntry, Event, Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage
from tests.conftest import dashfleet_cmd
from tests.test_storage_json import SEED

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
OK = Health(score=100, status="ok")


def run(args, cwd, env=None):
    proc = subprocess.run([*dashfleet_cmd(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})
    return proc


def opened(url):
    settings = Settings()
    return open_storage(settings, make_plugin_manager(settings), url)


@pytest.fixture
def filled(tmp_path):
    url = f"sqlite:///{tmp_path}/data/dashfleet.db"
    with opened(url) as st:
        st.save_report(Report(machine_id="pc-2", seq=1, collected_at=T0 + timedelta(minutes=1),
                              metrics={"cpu.percent": 2.0, "gpu.temp": 50.0}, facts={"os": "=cmd"}), OK)
        st.save_report(Report(machine_id="pc-1", seq=1, collected_at=T0,
                              metrics={"cpu.percent": 1.0}, facts={"site": "HQ"}), OK)
        st.save_report(Report(machine_id="pc-1", seq=2, collected_at=T0 + timedelta(minutes=2),
                              metrics={"cpu.percent": 3.0}), Health(score=60, status="warn"))
    return url


def test_export_jsonl_to_stdout_oldest_first_logs_on_stderr(filled, tmp_path):
    proc = run(["export", "--format", "jsonl", "--storage", filled], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["machine_id"], r["seq"]) for r in lines] == [("pc-1", 1), ("pc-2", 1), ("pc-1", 2)]
    first = lines[0]
    assert first["collected_at"] == T0.isoformat() and first["metrics"] == {"cpu.percent": 1.0}
    assert first["facts"] == {"site": "HQ"} and lines[2]["health"]["status"] == "warn"
    assert "exported 3 report(s)" in proc.stderr


def test_export_filters_by_machine_and_time(filled, tmp_path):
    proc = run(["export", "--format", "jsonl", "--storage", filled, "--machine", "pc-1",
                "--since", (T0 + timedelta(minutes=1)).isoformat()], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["seq"] for x in proc.stdout.splitlines()] == [2]
    proc = run(["export", "--format", "jsonl", "--storage", filled, "--until", "2026-01-05T12:01:00"],
               tmp_path)
    assert [json.loads(x)["machine_id"] for x in proc.stdout.splitlines()] == ["pc-1", "pc-2"]


def test_export_csv_to_a_file_has_every_column(filled, tmp_path):
    out = tmp_path / "export.csv"
    proc = run(["export", "--format", "csv", "--storage", filled, "--output", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["machine_id"] for r in rows] == ["pc-1", "pc-2", "pc-1"]
    assert rows[1]["gpu.temp"] == "50.0" and rows[0]["gpu.temp"] == ""
    assert rows[1]["fact:os"] == "'=cmd" and rows[0]["fact:site"] == "HQ"


def test_export_creates_the_missing_folders_of_its_output(filled, tmp_path):
    out = tmp_path / "reports" / "2026" / "export.jsonl"
    proc = run(["export", "--format", "jsonl", "--storage", filled, "--output", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 3
    (tmp_path / "a-file").write_text("not a folder")
    proc = run(["export", "--format", "jsonl", "--storage", filled, "--output",
                str(tmp_path / "a-file" / "x.jsonl")], tmp_path)
    assert proc.returncode == 1 and f"cannot write {tmp_path / 'a-file' / 'x.jsonl'}" in proc.stderr
    assert "choose a writable path" in proc.stderr and "Traceback" not in proc.stderr


def test_export_bad_input_is_a_clear_error(filled, tmp_path):
    proc = run(["export", "--format", "xml", "--storage", filled], tmp_path)
    assert proc.returncode == 2 and "csv" in proc.stderr and "jsonl" in proc.stderr
    proc = run(["export", "--format", "jsonl", "--storage", filled, "--since", "yesterday"], tmp_path)
    assert proc.returncode == 2 and "ISO-8601" in proc.stderr


def test_export_uses_the_configured_storage_url(filled, tmp_path):
    proc = run(["export", "--format", "jsonl"], tmp_path, env={"DASHFLEET_STORAGE": filled})
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3


def _snapshot(url):
    with opened(url) as st:
        reports = [(s.org, s.report, s.health, s.received_at) for s in st.iter_reports()]
        machines = {m.machine_id: m for m in st.machines()}
        events = [(e.model_copy(update={"id": None}), n) for e, n in st.iter_events()]
        audit = [a.model_copy(update={"id": None}) for a in st.iter_audit()]
        kv = list(st.iter_kv())
    return reports, machines, events, audit, kv


def test_migrate_seed_json_to_sqlite_loses_nothing_and_is_idempotent(tmp_path):
    seed = tmp_path / "logs" / "fleet_state.json"
    seed.parent.mkdir()
    seed.write_text(json.dumps(SEED))
    source = f"json:///{seed}"
    target = f"sqlite:///{tmp_path}/data/dashfleet.db"
    proc = run(["migrate", source, target], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "reports: 4 copied, 0 already there" in proc.stderr
    src, dst = _snapshot(source), _snapshot(target)
    assert dst[0] == src[0] and len(dst[0]) == 4
    assert {k: (m.metrics, m.health, m.hostname, m.collected_at) for k, m in dst[1].items()} == \
        {k: (m.metrics, m.health, m.hostname, m.collected_at) for k, m in src[1].items()}
    assert json.loads(seed.read_text()) == SEED  # the source is only read
    again = run(["migrate", source, target], tmp_path)
    assert again.returncode == 0 and "reports: 0 copied, 4 already there" in again.stderr
    assert _snapshot(target)[0] == src[0]


def test_migrate_sqlite_to_postgresql_copies_everything(filled, pg_url, tmp_path):
    with opened(filled) as st:
        ev = st.add_event(Event(machine_id="pc-1", kind="status_changed", at=T0, status="warn"))
        st.add_event(Event(machine_id="pc-2", kind="silent", at=T0 + timedelta(minutes=3)))
        st.mark_notified([ev.id])
        st.add_audit(AuditEntry(actor="alice", action="flush_dns", outcome="ok", at=T0))
        st.kv_put("maintenance", "*", {"until": "2030-01-01T00:00:00Z", "reason": "x", "by": "me"})
        st.save_report(Report(machine_id="pc-3", seq=None, collected_at=T0), OK, org="acme")
    proc = run(["migrate", filled, pg_url], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "reports: 4 copied" in proc.stderr and "events: 2 copied" in proc.stderr
    assert _snapshot(pg_url) == _snapshot(filled)
    with opened(pg_url) as pg:
        assert [e.kind for e in pg.pending_notifications()] == ["silent"]
        assert pg.machines(org="acme")[0].machine_id == "pc-3"
    again = run(["migrate", filled, pg_url], tmp_path)
    assert again.returncode == 0, again.stderr
    for line in ("reports: 0 copied, 4", "events: 0 copied, 2", "audit: 0 copied, 1", "kv: 0 copied, 1"):
        assert line in again.stderr
    assert _snapshot(pg_url) == _snapshot(filled)


def test_migrate_refuses_a_broken_source_and_the_same_url(tmp_path):
    bad = tmp_path / "fleet_state.json"
    bad.write_text("{oops")
    proc = run(["migrate", f"json:///{bad}", f"sqlite:///{tmp_path}/x.db"], tmp_path)
    assert proc.returncode == 1 and str(bad) in proc.stderr and bad.read_text() == "{oops"
    proc = run(["migrate", f"sqlite:///{tmp_path}/x.db", f"sqlite:///{tmp_path}/x.db"], tmp_path)
    assert proc.returncode == 2 and "same storage" in proc.stderr


def test_a_storage_url_is_shown_without_its_password():
    from dashfleet_core.storage import redact_url

    assert redact_url("postgresql://fleet:s3cret@db/fleet") == "postgresql://fleet:***@db/fleet"
    assert redact_url("postgresql://db/fleet?sslmode=require&password=s3cret") == \
        "postgresql://db/fleet?sslmode=require&password=***"
    assert redact_url("sqlite:///data/dashfleet.db") == "sqlite:///data/dashfleet.db"
