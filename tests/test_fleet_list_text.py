"""`GET /api/fleet` is written from each machine's cached entry (web/fleetview.py
`fleet_list_text`): the body must be exactly what `jsonify(fleet_json(...))` writes, whatever
changed between two reads (a new report, the clock, maintenance windows)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Finding, Health, Report, utcnow
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_web import fleetview
from dashfleet_web.app import create_app

TOKEN = "s3cret-token"


@pytest.fixture
def fleet_app(settings_factory):
    settings = settings_factory({"server.token": TOKEN, "server.report_self": False, "server.ttl_seconds": 600})
    fleet = Fleet(settings, make_plugin_manager(settings))
    app = create_app(fleet=fleet, start=False)
    yield fleet, app
    fleet.stop()


def save(fleet, machine_id, seq, *, received_at, hostname=None, health=None, **metrics):
    r = Report(machine_id=machine_id, seq=seq, hostname=hostname if hostname is not None else f"{machine_id}.lan",
               os="Linux", collected_at=received_at, metrics=metrics or {"cpu.percent": 10.0},
               facts={"site": "HQ"})
    fleet.storage.save_report(r, health or Health(score=100, status="ok"), received_at=received_at)


def expected_body(app, fleet, now) -> str:
    """What the endpoint wrote before: the app's JSON provider on `fleet_json` at `now`."""
    with app.app_context():
        return app.json.response(fleetview.fleet_json(fleet)).get_data(as_text=True)


def test_fleet_list_text_is_byte_for_byte_the_jsonify_document(fleet_app, monkeypatch):
    fleet, app = fleet_app
    now = utcnow().replace(microsecond=123456)
    monkeypatch.setattr(fleetview, "utcnow", lambda: now)
    hot = Health(score=20, status="critical", findings=[
        Finding(metric="cpu.percent", value=99.5, threshold=90, severity="warn", message="cpu"),
        Finding(metric="disk.percent", value=99.0, threshold=95, severity="critical", message="disk \u00e9\u2603")])
    save(fleet, "fresh", 1, received_at=now - timedelta(seconds=12.34), **{"cpu.percent": 1 / 3, "uptime.seconds": 5.0})
    save(fleet, "old", 1, received_at=now - timedelta(seconds=601), hostname="Zeta \u00c9cole <b>", health=hot)
    save(fleet, "future", 1, received_at=now + timedelta(seconds=5), hostname="")
    save(fleet, "edge", 1, received_at=now - timedelta(seconds=600))  # exactly the TTL: not expired
    odd = Health(score=99, status="warn", findings=[Finding(severity="warn", message="no metric", source="x")])
    save(fleet, "bare", 1, received_at=now - timedelta(seconds=1), hostname="\u00e9t\u00e9 \"q\" \\ \t",
         health=odd, **{"other.metric": 5.0, "memory.percent": 100.0, "disk.percent": 1e-7})
    until = (now + timedelta(hours=1)).isoformat()
    fleet.storage.kv_put("maintenance", "old", {"until": until, "reason": "patching", "by": "ops"})

    with app.test_client() as client:
        for _ in range(2):  # the second read comes from the cached entries
            r = client.get("/api/fleet")
            assert r.status_code == 200 and r.mimetype == "application/json"
            assert r.get_data(as_text=True) == expected_body(app, fleet, now)
        doc = r.json
        assert [m["machine_id"] for m in doc["machines"]] == ["edge", "fresh", "future", "old", "bare"]
        assert doc["machines"][-1]["metrics"] == {"memory.percent": 100.0, "disk.percent": 1e-7}
        by_id = {m["machine_id"]: m for m in doc["machines"]}
        assert by_id["old"]["expired"] is True and by_id["edge"]["expired"] is False
        assert by_id["future"]["age_seconds"] == 0.0 and by_id["fresh"]["age_seconds"] == 12.3
        assert by_id["old"]["maintenance_until"] is not None and by_id["fresh"]["maintenance_until"] is None
        assert by_id["old"]["top_reason"]["severity"] == "critical"

        # the clock moves, a machine reports, the fleet-wide window opens: all of it shows
        later = now + timedelta(seconds=30)
        monkeypatch.setattr(fleetview, "utcnow", lambda: later)
        save(fleet, "fresh", 2, received_at=later - timedelta(seconds=1), **{"cpu.percent": 88.0})
        fleet.storage.kv_put("maintenance", "*", {"until": (later + timedelta(hours=2)).isoformat(),
                                                  "reason": "move", "by": "ops"})
        r = client.get("/api/fleet")
        assert r.get_data(as_text=True) == expected_body(app, fleet, later)
        by_id = {m["machine_id"]: m for m in r.json["machines"]}
        assert by_id["fresh"]["metrics"] == {"cpu.percent": 88.0} and by_id["fresh"]["age_seconds"] == 1.0
        assert r.json["maintenance_all_until"] is not None
        assert all(m["maintenance_until"] is not None for m in r.json["machines"])


def test_fleet_list_text_with_no_machines(fleet_app):
    fleet, app = fleet_app
    with app.test_client() as client:
        r = client.get("/api/fleet")
    assert r.status_code == 200
    assert r.json["count"] == 0 and r.json["machines"] == [] and r.json["maintenance_all_until"] is None
