"""Maintenance windows through the API (issue 12, item 11): every attempt is audited with the
credential as who acted (a client's `by` is only a note), and a window longer than the limit is
refused (422 naming it), never silently cut. Real app, real SQLite file."""

from __future__ import annotations

import pytest

from dashfleet_web.app import create_app

FLEET_TOKEN = "fleet-token-for-maintenance"
ACTION_TOKEN = "action-token-for-maintenance"


@pytest.fixture
def client(settings_factory):
    app = create_app(settings_factory({"server.token": FLEET_TOKEN, "actions.token": ACTION_TOKEN,
                                       "server.report_self": False}), start=False)
    client = app.test_client()
    sent = client.post("/api/fleet/report", json={"machine_id": "web-01", "seq": 1, "metrics": {"cpu.percent": 5.0}},
                       headers=bearer(FLEET_TOKEN))
    assert sent.status_code == 201
    yield client
    app.extensions["dashfleet"].stop()


def bearer(token=ACTION_TOKEN):
    return {"Authorization": f"Bearer {token}"}


def audit(client):
    return client.get("/api/audit?limit=100", headers=bearer()).get_json()


def test_every_maintenance_attempt_is_audited_with_the_credential(client):
    ok = client.post("/api/fleet/web-01/maintenance", json={"minutes": 30, "reason": "patching", "by": "root"},
                     headers=bearer())
    assert ok.status_code == 201
    window = ok.get_json()["maintenance"]
    assert window["by"] == "action-token" and window["note"] == "root"
    wrong = client.post("/api/maintenance", json={"minutes": 5, "by": "admin"}, headers=bearer("wrong-token-guess"))
    assert wrong.status_code == 401
    invalid = client.post("/api/fleet/web-01/maintenance", json={"minutes": -1}, headers=bearer())
    assert invalid.status_code == 400
    ended = client.delete("/api/fleet/web-01/maintenance", headers=bearer())
    assert ended.status_code == 200
    missing = client.delete("/api/fleet/web-02/maintenance", headers=bearer())
    assert missing.status_code == 404

    rows = list(reversed(audit(client)))
    assert [(r["action"], r["actor"], r["outcome"]) for r in rows] == [
        ("maintenance.start", "action-token", "ok"),
        ("maintenance.start", "unauthenticated", "refused"),
        ("maintenance.start", "action-token", "refused"),
        ("maintenance.end", "action-token", "ok"),
        ("maintenance.end", "action-token", "refused"),
    ]
    assert rows[0]["params"] == {"machine_id": "web-01", "minutes": 30, "reason": "patching", "note": "root"}
    assert rows[1]["params"]["note"] == "admin" and rows[1]["details"]["status"] == 401
    assert rows[2]["details"]["status"] == 400 and rows[4]["details"]["status"] == 404
    assert all("token" not in str(r["params"]) for r in rows)


def test_a_window_over_the_limit_is_refused_not_capped(client):
    answer = client.post("/api/fleet/web-01/maintenance", json={"minutes": 100_000_000}, headers=bearer())
    assert answer.status_code == 422
    assert "at most 527040 (366 days)" in answer.get_json()["error"] and answer.get_json()["fields"] == ["minutes"]
    far = client.post("/api/fleet/web-01/maintenance", json={"until": "2999-01-01T00:00:00Z"}, headers=bearer())
    assert far.status_code == 422 and "at most 366 days (527040 minutes)" in far.get_json()["error"]
    assert client.get("/api/maintenance").get_json()["windows"] == {}
    ok = client.post("/api/fleet/web-01/maintenance", json={"minutes": 527040}, headers=bearer())
    assert ok.status_code == 201


def test_a_window_for_a_machine_that_never_reported_here_is_a_404_and_audited(client):
    """Another organisation's machine, or a typo, is refused like every machine path; `*` still works."""
    answer = client.post("/api/fleet/web-99/maintenance", json={"minutes": 30}, headers=bearer())
    assert answer.status_code == 404 and "web-99" in answer.get_json()["error"]
    assert client.get("/api/maintenance").get_json()["windows"] == {}
    assert client.post("/api/maintenance", json={"minutes": 30}, headers=bearer()).status_code == 201
    [row] = [r for r in audit(client) if r["params"].get("machine_id") == "web-99"]
    assert row["outcome"] == "refused" and row["details"]["status"] == 404
