"""Upgrading to organisations keeps a data folder working: every machine the previous release stored
is in the `default` organisation, the operator reads it with the ACTION_TOKEN, the seed's agents
keep reporting with the FLEET_TOKEN, and a new organisation sees none of it.

SQLite and JSON: the data folders in tests/data/previous_release were written by the release before
organisations (commit 74a7619, `make_data.py` there says how) and are served here, as copies, by the
current code on a real server on 127.0.0.1. PostgreSQL: the same kind of data written through the
storage contract's calls as that release made them (no organisation named anywhere).
"""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Report, utcnow
from dashfleet_web.app import create_app

DATA = Path(__file__).parent / "data" / "previous_release"
FLEET_TOKEN = "upgrade-fleet-token-0123456789"  # the tokens make_data.py's server had
ACTION_TOKEN = "upgrade-action-token-0123456789"
MACHINES = ("old-pc-1", "old-pc-2", "old-srv-1")


def _write_like_the_previous_release(url: str, tmp: Path) -> None:
    """What make_data.py stores, through the storage calls the previous release made (its code
    named no organisation: every row took the default)."""
    settings = load_settings(None, env={}, overrides={"storage.url": url, "server.data_dir": str(tmp),
                                                       "server.report_self": False})
    fleet = Fleet(settings)
    try:
        for n, machine in enumerate(MACHINES):
            for seq in range(1, 5):
                cpu = 99.0 if machine == "old-srv-1" else 10.0 + n + seq
                fleet.ingest([Report(machine_id=machine, hostname=f"{machine}.lan", seq=seq,
                                     metrics={"cpu.percent": cpu, "memory.percent": 40.0, "disk.percent": 55.0})])
        fleet.alerting.start_maintenance("old-pc-2", utcnow() + timedelta(days=365), reason="old window",
                                         by="action-token")
    finally:
        fleet.stop()


@pytest.fixture(params=["sqlite", "json", "postgresql"])
def old_data(request, tmp_path):
    """A storage URL holding the previous release's data."""
    if request.param == "sqlite":
        shutil.copy(DATA / "dashfleet.db", tmp_path / "dashfleet.db")
        return f"sqlite:///{tmp_path}/dashfleet.db"
    if request.param == "json":
        shutil.copy(DATA / "fleet_state.json", tmp_path / "fleet_state.json")
        return f"json:///{tmp_path}/fleet_state.json"
    url = request.getfixturevalue("pg_url")
    _write_like_the_previous_release(url, tmp_path)
    return url


@pytest.fixture
def served(old_data, tmp_path):
    """The current code serving the old data, reads closed (the new default)."""
    settings = load_settings(None, env={"FLEET_TOKEN": FLEET_TOKEN, "ACTION_TOKEN": ACTION_TOKEN}, overrides={
        "storage.url": old_data, "server.data_dir": str(tmp_path / "state"), "server.report_self": False,
        "server.list_hide_days": 100_000})  # the committed data ages; it stays listed
    fleet = Fleet(settings)
    app = create_app(fleet=fleet, start=False)
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fleet, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        fleet.stop()


def _get(base: str, path: str, token: str | None = ACTION_TOKEN, **headers: str) -> requests.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(base + path, headers=headers, timeout=30, allow_redirects=False)


def test_every_old_machine_is_in_default_and_the_operator_reads_it(served):
    fleet, base = served
    assert [org.id for org in fleet.accounts.orgs.list()] == ["default"]
    listed = _get(base, "/api/fleet").json()
    assert sorted(m["machine_id"] for m in listed["machines"]) == list(MACHINES)
    assert _get(base, "/api/fleet", **{"X-DashFleet-Org": "default"}).json()["count"] == 3
    for machine in MACHINES:
        one = _get(base, f"/api/fleet/{machine}").json()
        assert one["last_seq"] == 4 and one["hostname"] == f"{machine}.lan"
        history = _get(base, f"/api/fleet/{machine}/history?since=2026-01-01T00:00:00Z").json()
        assert sum(b["count"] for b in history["buckets"]) == 4, machine
    assert one["status"] == "critical"  # old-srv-1: its health came along
    events = _get(base, "/api/fleet/old-srv-1/events").json()["events"]
    assert "status_changed" in [e["kind"] for e in events]
    assert "maintenance_started" in [e["kind"] for e in _get(base, "/api/fleet/old-pc-2/events").json()["events"]]
    # reads are closed now: no credential, no fleet
    assert _get(base, "/api/fleet", token=None).status_code == 401


def test_the_seeds_fleet_token_keeps_reporting_into_default(served):
    fleet, base = served
    report = {"machine_id": "old-pc-1", "hostname": "old-pc-1.lan", "seq": 5, "metrics": {"cpu.percent": 21.0}}
    in_body = requests.post(base + "/api/fleet/report", json={**report, "token": FLEET_TOKEN}, timeout=30)
    assert in_body.status_code == 201, in_body.text
    in_header = requests.post(base + "/api/fleet/report", json={**report, "seq": 6},
                              headers={"Authorization": f"Bearer {FLEET_TOKEN}"}, timeout=30)
    assert in_header.status_code == 201, in_header.text
    assert _get(base, "/api/fleet/old-pc-1").json()["last_seq"] == 6
    assert fleet.storage.machine("old-pc-1", org="default").last_seq == 6
    # the FLEET_TOKEN still reports only: it reads nothing
    assert _get(base, "/api/fleet", token=FLEET_TOKEN).status_code == 403


def test_a_new_organisation_sees_none_of_the_old_fleet(served):
    fleet, base = served
    fleet.accounts.orgs.create("Acme")
    _, secret = fleet.accounts.keys.create("acme", name="reader", scopes=["read"])
    assert _get(base, "/api/fleet", token=secret).json()["machines"] == []
    assert _get(base, "/api/fleet/old-pc-1", token=secret).status_code == 404
    assert _get(base, "/api/fleet", **{"X-DashFleet-Org": "acme"}).json()["count"] == 0
