"""POST /api/action and GET /api/audit through the real app factory, on a real SQLite file."""

from __future__ import annotations

import os
import time

import pytest

from dashfleet_web.app import create_app

TOKEN = "action-token-for-tests"
OLD = time.time() - 30 * 86400


@pytest.fixture
def make_client(settings_factory):
    apps = []

    def make(overrides=None):
        base = {"actions.token": TOKEN}
        base.update(overrides or {})
        base = {k: v for k, v in base.items() if v is not None}
        app = create_app(settings_factory(base), start=False)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["dashfleet"].storage.close()


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def audit(client):
    response = client.get("/api/audit", headers=auth())
    assert response.status_code == 200
    return response.get_json()


def test_no_token_configured_refuses_everything(make_client):
    client = make_client({"actions.token": None})
    response = client.post("/api/action", json={"action": "flush_dns", "params": {"dry_run": True}},
                           headers=auth("anything"))
    # no ACTION_TOKEN: whatever is presented as one is a wrong token, and the answer says why
    assert response.status_code == 401
    assert "no ACTION_TOKEN configured" in response.get_json()["error"]
    assert "set it and restart" in response.get_json()["error"]
    assert client.get("/api/audit", headers=auth("anything")).status_code == 401


def test_missing_and_wrong_tokens_are_401(make_client):
    client = make_client()
    missing = client.post("/api/action", json={"action": "flush_dns"})
    assert missing.status_code == 401 and "missing token" in missing.get_json()["error"]
    wrong = client.post("/api/action", json={"action": "flush_dns", "token": "nope"})
    assert wrong.status_code == 401 and "wrong token" in wrong.get_json()["error"]
    assert client.get("/api/audit", headers=auth("nope")).status_code == 401
    rows = audit(client)
    assert [r["details"]["status"] for r in rows] == [401, 401]
    assert all(r["outcome"] == "refused" and r["actor"] == "api:127.0.0.1" for r in rows)
    assert "nope" not in str(rows)


def test_a_dry_run_through_the_api(make_client, tmp_path):
    owned = tmp_path / "owned"
    owned.mkdir()
    (owned / "old.tmp").write_text("x" * 10)
    os.utime(owned / "old.tmp", (OLD, OLD))
    client = make_client({"plugins.cleanup_temp.folders": [str(owned)]})
    response = client.post("/api/action", headers=auth(),
                           json={"action": "cleanup_temp", "params": {"dry_run": True, "older_than_days": 3}})
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] and body["dry_run"] and body["action"] == "cleanup_temp"
    assert body["summary"].startswith("would free 10 B in 1 file(s) older than 3 day(s)")
    assert (owned / "old.tmp").exists()
    # the seed's form: the token in the body
    real = client.post("/api/action", json={"action": "cleanup_temp", "token": TOKEN,
                                            "params": {"older_than_days": 3}})
    assert real.status_code == 200 and real.get_json()["details"]["bytes_freed"] == 10
    assert not (owned / "old.tmp").exists()
    rows = audit(client)
    assert [(r["action"], r["outcome"], r["params"]["dry_run"]) for r in rows] == [
        ("cleanup_temp", "ok", False), ("cleanup_temp", "ok", True)]
    assert rows[0]["id"] > rows[1]["id"]  # newest first


def test_unknown_action_is_400_listing_the_available_ones(make_client):
    client = make_client()
    response = client.post("/api/action", headers=auth(), json={"action": "rm_rf", "params": {}})
    assert response.status_code == 400
    body = response.get_json()
    assert "unknown action 'rm_rf'" in body["error"] and "cleanup_temp" in body["available"]
    assert audit(client)[0]["action"] == "rm_rf"


def test_action_outside_the_allow_list_is_403(make_client):
    client = make_client({"actions.allowed": ["collect_logs"]})
    response = client.post("/api/action", headers=auth(),
                           json={"action": "cleanup_temp", "params": {"dry_run": True}})
    assert response.status_code == 403
    body = response.get_json()
    assert "not in the allow-list" in body["error"] and body["allowed"] == ["collect_logs"]
    [row] = audit(client)
    assert row["outcome"] == "refused" and row["details"]["status"] == 403


@pytest.mark.parametrize("params, field", [
    ({"older_than_days": "7"}, "older_than_days"),
    ({"older_than_days": -1}, "older_than_days"),
    ({"olderthan": 7}, "olderthan"),
    ({"dry_run": "true"}, "dry_run"),
])
def test_bad_parameters_are_422_naming_them(make_client, params, field):
    client = make_client()
    response = client.post("/api/action", headers=auth(), json={"action": "cleanup_temp", "params": params})
    assert response.status_code == 422
    body = response.get_json()
    assert field in body["error"] and body["fields"] == [field]
    [row] = audit(client)
    assert row["outcome"] == "refused" and row["details"]["status"] == 422 and row["params"] == params


def test_malformed_bodies_are_clear_errors(make_client):
    client = make_client()
    bad_json = client.post("/api/action", headers=auth(), data="{nope", content_type="application/json")
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.get_json()["error"]
    top_level = client.post("/api/action", headers=auth(), json={"action": "flush_dns", "dry_run": True})
    assert top_level.status_code == 422 and 'go inside "params"' in top_level.get_json()["error"]
    not_object = client.post("/api/action", headers=auth(), json={"action": "flush_dns", "params": [1]})
    assert not_object.status_code == 422 and "'params' must be a JSON object" in not_object.get_json()["error"]
    assert len(audit(client)) == 3


def test_rate_limit_is_429_with_retry_after(make_client):
    client = make_client({"actions.rate_limit_per_minute": 2})
    for _ in range(2):
        assert client.post("/api/action", headers=auth(),
                           json={"action": "restart_spooler", "params": {"dry_run": True}}).status_code == 200
    limited = client.post("/api/action", headers=auth(), json={"action": "restart_spooler", "params": {"dry_run": True}})
    assert limited.status_code == 429 and "at most 2 action calls a minute" in limited.get_json()["error"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert [r["outcome"] for r in audit(client)] == ["refused", "ok", "ok"]


def test_audit_limit(make_client):
    client = make_client()
    for _ in range(3):
        client.post("/api/action", headers=auth(), json={"action": "restart_spooler", "params": {"dry_run": True}})
    assert len(client.get("/api/audit?limit=2", headers=auth()).get_json()) == 2
    bad = client.get("/api/audit?limit=lots", headers=auth())
    assert bad.status_code == 400 and "limit must be a whole number" in bad.get_json()["error"]


def test_catalogue_endpoint(make_client):
    client = make_client({"actions.allowed": ["collect_logs"]})
    assert client.get("/api/actions").status_code == 401
    entries = {e["name"]: e for e in client.get("/api/actions", headers=auth()).get_json()}
    assert entries["collect_logs"]["allowed"] and not entries["cleanup_temp"]["allowed"]
    assert entries["collect_logs"]["params"]["days"]["maximum"] == 30
    assert entries["restart_spooler"]["platforms"] == ["windows", "linux"]
