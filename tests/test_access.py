"""The access layer (web/access.py) with reads closed, as a server is by default: who may read,
report, operate, in which organisation, and what happens without a credential."""

from __future__ import annotations

import pytest

from dashfleet_core.fleet import Fleet
from dashfleet_web.app import create_app

FLEET_TOKEN = "fleet-token-of-the-access-tests"
ACTION_TOKEN = "action-token-of-the-access-tests"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def report(machine_id: str, seq: int = 1, cpu: float = 10.0) -> dict:
    return {"machine_id": machine_id, "hostname": machine_id, "seq": seq, "metrics": {"cpu.percent": cpu}}


@pytest.fixture
def rig(settings_factory):
    settings = settings_factory({"server.public_read": False, "server.token": FLEET_TOKEN,
                                 "actions.token": ACTION_TOKEN, "server.report_self": False})
    fleet = Fleet(settings)
    app = create_app(fleet=fleet, start=False)
    yield fleet, app.test_client()
    fleet.stop()


def key(fleet: Fleet, org: str, *scopes: str) -> str:
    return fleet.accounts.keys.create(org, name="test", scopes=list(scopes))[1]


def test_reads_need_a_credential_api_401_and_pages_go_to_login(rig):
    fleet, client = rig
    for path in ("/api/fleet", "/api/stats", "/api/maintenance", "/metrics", "/api/openapi.json"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert "missing token" in r.json["error"] and "/login" in r.json["error"]
    for path in ("/", "/fleet", "/history", "/fleet/pc-1?x=1"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/"), path
    assert client.get("/fleet/pc-1?x=1").headers["Location"] == "/login?next=/fleet/pc-1%3Fx%3D1"
    assert client.get("/healthz").status_code == 200
    with client.get("/static/style.css") as css:  # CSS and scripts hold no data: open
        assert css.status_code == 200


def test_fleet_token_reports_into_default_and_cannot_read(rig):
    fleet, client = rig
    assert client.post("/api/fleet/report", json=report("pc-1"), headers=bearer(FLEET_TOKEN)).status_code == 201
    assert fleet.storage.machine("pc-1") is not None
    assert client.get("/api/fleet", headers=bearer(FLEET_TOKEN)).status_code == 403


def test_a_report_key_reports_into_its_organisation_only(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme")
    acme_report = key(fleet, "acme", "report")
    r = client.post("/api/fleet/report", json=report("pc-1"), headers=bearer(acme_report))
    assert r.status_code == 201
    assert fleet.storage.machine("pc-1", org="acme") is not None
    assert fleet.storage.machine("pc-1") is None  # not in default
    # the seed's body token works for keys too
    assert client.post("/api/fleet/report", json={**report("pc-2"), "token": acme_report}).status_code == 201
    assert fleet.storage.machine("pc-2", org="acme") is not None
    # a report key cannot read, a read key cannot report
    assert client.get("/api/fleet", headers=bearer(acme_report)).status_code == 403
    acme_read = key(fleet, "acme", "read")
    assert client.post("/api/fleet/report", json=report("pc-3"), headers=bearer(acme_read)).status_code == 403


def test_the_same_machine_id_in_two_organisations_is_two_machines(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme")
    client.post("/api/fleet/report", json=report("pc-1", cpu=11.0), headers=bearer(FLEET_TOKEN))
    client.post("/api/fleet/report", json=report("pc-1", cpu=77.0), headers=bearer(key(fleet, "acme", "report")))
    default_view = client.get("/api/fleet/pc-1", headers=bearer(key(fleet, "default", "read"))).json
    acme_view = client.get("/api/fleet/pc-1", headers=bearer(key(fleet, "acme", "read"))).json
    assert default_view["metrics"]["cpu.percent"] == 11.0 and acme_view["metrics"]["cpu.percent"] == 77.0


def test_a_read_key_sees_its_organisation_only_and_others_machines_are_404(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme")
    client.post("/api/fleet/report", json=report("default-pc"), headers=bearer(FLEET_TOKEN))
    client.post("/api/fleet/report", json=report("acme-pc"), headers=bearer(key(fleet, "acme", "report")))
    acme = bearer(key(fleet, "acme", "read"))
    assert [m["machine_id"] for m in client.get("/api/fleet", headers=acme).json["machines"]] == ["acme-pc"]
    for path in ("/api/fleet/default-pc", "/api/fleet/default-pc/history", "/api/fleet/default-pc/events"):
        assert client.get(path, headers=acme).status_code == 404, path
    assert client.get("/fleet/default-pc", headers=acme).status_code == 404
    assert client.get("/api/fleet/acme-pc", headers=acme).status_code == 200
    # the server's own machine (live view) belongs to default
    assert client.get("/api/stats", headers=acme).status_code == 404
    assert client.get("/", headers=acme).headers["Location"] == "/fleet"
    # asking for another organisation by header changes nothing for an organisation's key
    assert [m["machine_id"] for m in client.get(
        "/api/fleet", headers={**acme, "X-DashFleet-Org": "default"}).json["machines"]] == ["acme-pc"]


def test_the_operator_names_the_organisation_and_sees_each(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme")
    client.post("/api/fleet/report", json=report("default-pc"), headers=bearer(FLEET_TOKEN))
    client.post("/api/fleet/report", json=report("acme-pc"), headers=bearer(key(fleet, "acme", "report")))
    op = bearer(ACTION_TOKEN)
    ids = lambda h: [m["machine_id"] for m in client.get("/api/fleet", headers=h).json["machines"]]  # noqa: E731
    assert ids(op) == ["default-pc"]
    assert ids({**op, "X-DashFleet-Org": "acme"}) == ["acme-pc"]
    assert client.get("/api/fleet?org=acme", headers=op).json["machines"][0]["machine_id"] == "acme-pc"
    r = client.get("/api/fleet", headers={**op, "X-DashFleet-Org": "nobody"})
    assert r.status_code == 404 and "no organisation" in r.json["error"]


def test_operate_needs_the_scope_and_acts_in_the_keys_organisation(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme")
    client.post("/api/fleet/report", json=report("acme-pc"), headers=bearer(key(fleet, "acme", "report")))
    reader, operator = bearer(key(fleet, "acme", "read")), bearer(key(fleet, "acme", "operate"))
    assert client.post("/api/fleet/acme-pc/maintenance", json={"minutes": 5}, headers=reader).status_code == 403
    r = client.post("/api/fleet/acme-pc/maintenance", json={"minutes": 5}, headers=operator)
    assert r.status_code == 201
    assert "acme-pc" in fleet.alerting.storage.kv_list("maintenance", org="acme")
    assert fleet.storage.kv_list("maintenance") == {}
    rows = client.get("/api/audit", headers=operator).json
    assert [(r["action"], r["outcome"]) for r in rows] == [("maintenance.start", "ok"), ("maintenance.start", "refused")]
    assert rows[0]["actor"].startswith("key:") and all(r["org"] == "acme" for r in rows)
    assert client.get("/api/audit", headers=bearer(ACTION_TOKEN)).json == []  # default's audit: nothing
    # running an action on the server's own machine is the operator's alone
    assert client.post("/api/action", json={"action": "flush_dns"}, headers=operator).status_code == 403


def test_a_revoked_or_expired_key_is_refused_by_the_next_request(rig):
    fleet, client = rig
    made, secret = fleet.accounts.keys.create("default", name="ci", scopes=["read"])
    assert client.get("/api/fleet", headers=bearer(secret)).status_code == 200
    fleet.accounts.keys.revoke(made.id)
    r = client.get("/api/fleet", headers=bearer(secret))
    assert r.status_code == 401 and "revoked" in r.json["error"]
    soon, late = fleet.accounts.keys.create("default", name="x", scopes=["read"], expires_at="1m")
    assert client.get("/api/fleet", headers=bearer(late)).status_code == 200
    record = fleet.storage.kv_get("api_keys", soon.id, org="~server")
    fleet.storage.kv_put("api_keys", soon.id, {**record, "expires_at": "2000-01-01T00:00:00+00:00"}, org="~server")
    assert client.get("/api/fleet", headers=bearer(late)).status_code == 401


def test_a_key_of_the_right_shape_but_wrong_secret_is_refused(rig):
    fleet, client = rig
    _, secret = fleet.accounts.keys.create("default", scopes=["read"])
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert client.get("/api/fleet", headers=bearer(forged)).status_code == 401


def test_session_changes_need_the_csrf_token(rig):
    fleet, client = rig
    fleet.accounts.users.add("alice", "a long enough passphrase", org="default", role="operator")
    sid, session = fleet.accounts.sessions.create("alice", 0, "default")
    client.set_cookie("dashfleet_session", sid)
    assert client.get("/api/fleet").status_code == 200
    r = client.post("/api/maintenance", json={"minutes": 5})
    assert r.status_code == 403 and "CSRF" in r.json["error"]
    r = client.post("/api/maintenance", json={"minutes": 5}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = client.post("/api/maintenance", json={"minutes": 5}, headers={"X-CSRF-Token": session.csrf_token})
    assert r.status_code == 201
    assert client.get("/api/audit").json[0]["actor"] == "user:alice"


def test_a_user_whose_sessions_were_revoked_is_refused_by_the_next_request(rig):
    fleet, client = rig
    user = fleet.accounts.users.add("bob", "another long passphrase", org="default", role="viewer")
    sid, _ = fleet.accounts.sessions.create("bob", user.epoch, "default")
    client.set_cookie("dashfleet_session", sid)
    assert client.get("/api/fleet").status_code == 200
    fleet.accounts.users.set_password("bob", "a brand new passphrase")
    assert client.get("/api/fleet").status_code == 401
    sid, _ = fleet.accounts.sessions.create("bob", user.epoch + 1, "default")
    client.set_cookie("dashfleet_session", sid)
    assert client.get("/api/fleet").status_code == 200
    fleet.accounts.users.remove("bob")
    assert client.get("/api/fleet").status_code == 401


def test_a_viewer_cannot_operate(rig):
    fleet, client = rig
    fleet.accounts.users.add("vic", "viewer passphrase here", org="default", role="viewer")
    sid, session = fleet.accounts.sessions.create("vic", 0, "default")
    client.set_cookie("dashfleet_session", sid)
    r = client.post("/api/maintenance", json={"minutes": 5}, headers={"X-CSRF-Token": session.csrf_token})
    assert r.status_code == 403 and "operate" in r.json["error"]


def test_public_read_opens_default_for_reading_only(settings_factory, caplog):
    settings = settings_factory({"server.public_read": True, "server.token": FLEET_TOKEN,
                                 "actions.token": ACTION_TOKEN, "server.report_self": False})
    fleet = Fleet(settings)
    client = create_app(fleet=fleet, start=False).test_client()
    assert "public_read is on" in caplog.text and "trusted LAN" in caplog.text
    try:
        assert client.get("/api/fleet").status_code == 200
        assert client.get("/fleet").status_code == 200
        assert client.post("/api/maintenance", json={"minutes": 5}).status_code == 401
        assert client.post("/api/fleet/report", json=report("x")).status_code == 401
        assert client.get("/api/fleet", headers=bearer("wrong")).status_code == 401
    finally:
        fleet.stop()


def test_a_route_that_declares_nothing_needs_read(settings_factory, caplog):
    """Fail closed: a plugin's route is not open by accident."""
    settings = settings_factory({"server.public_read": False, "server.report_self": False})
    fleet = Fleet(settings)
    app = create_app(fleet=fleet, start=False)
    assert "public_read" not in caplog.text
    app.add_url_rule("/plugin/page", "plugin_page", lambda: "secret")
    try:
        assert app.test_client().get("/plugin/page").status_code == 302
    finally:
        fleet.stop()
