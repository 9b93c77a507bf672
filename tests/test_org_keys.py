"""Organisations and API keys over HTTP (web/blueprints/orgs.py), with reads closed as a server is
by default: who may create organisations and keys, what each refusal answers, what is audited, and
that a secret is shown once and nowhere else. The real app on a real SQLite file."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from dashfleet_core.accounts.keys import NAMESPACE as KEYS_NAMESPACE
from dashfleet_core.accounts.scope import SERVER_SCOPE, digest
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import utcnow
from dashfleet_web import schemas
from dashfleet_web.app import create_app

FLEET_TOKEN = "fleet-token-of-the-org-key-tests"
ACTION_TOKEN = "action-token-of-the-org-key-tests"
KEY_FIELDS = {"id", "org", "name", "scopes", "created_at", "last_used_at", "expires_at"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


OPERATOR = bearer(ACTION_TOKEN)


@pytest.fixture
def rig(settings_factory):
    settings = settings_factory({"server.public_read": False, "server.token": FLEET_TOKEN,
                                 "actions.token": ACTION_TOKEN, "server.report_self": False})
    fleet = Fleet(settings)
    app = create_app(fleet=fleet, start=False)
    yield fleet, app.test_client()
    fleet.stop()


def new_org(client, name: str = "Acme") -> tuple[str, str]:
    """(org id, its admin key), made by the operator."""
    r = client.post("/api/orgs", json={"name": name}, headers=OPERATOR)
    assert r.status_code == 201, r.json
    return r.json["org"]["id"], r.json["api_key"]


def login(fleet: Fleet, client, username: str, *, org: str = "default", role: str | None = "viewer",
          server_admin: bool = False) -> str:
    """A dashboard session for a new user (cookie set on the client); returns its CSRF token."""
    user = fleet.accounts.users.add(username, f"passphrase of {username} here", org=org if role else None,
                                    role=role, server_admin=server_admin)
    sid, session = fleet.accounts.sessions.create(user.username, user.epoch, org)
    client.set_cookie("dashfleet_session", sid)
    return session.csrf_token


def audit_text(fleet: Fleet, *orgs: str) -> str:
    return json.dumps([row.model_dump(mode="json") for org in orgs for row in fleet.storage.audit(org=org, limit=1000)])


# --- organisations -----------------------------------------------------------------------------------


def test_the_operator_creates_an_organisation_and_gets_its_admin_key_once(rig):
    fleet, client = rig
    r = client.post("/api/orgs", json={"name": "Acme Ltd."}, headers=OPERATOR)
    assert r.status_code == 201
    schemas.OrgCreated.model_validate(r.json)
    assert r.json["org"]["id"] == "acme-ltd" and r.json["org"]["name"] == "Acme Ltd."
    assert r.json["org"]["created_at"]
    secret = r.json["api_key"]
    assert secret.startswith("dfk_")
    # the key is that organisation's admin key, named "admin"
    keys = client.get("/api/orgs/acme-ltd/keys", headers=bearer(secret))
    assert keys.status_code == 200
    [key] = keys.json["keys"]
    assert key["name"] == "admin" and key["scopes"] == ["admin"] and key["org"] == "acme-ltd"
    assert secret not in keys.get_data(as_text=True) and digest(secret) not in keys.get_data(as_text=True)
    # the operator's body token (the seed's form) works too
    assert client.post("/api/orgs", json={"name": "Beta", "token": ACTION_TOKEN}).status_code == 201


def test_a_duplicate_organisation_is_409_and_a_bad_name_422(rig):
    fleet, client = rig
    new_org(client, "Acme")
    for name in ("Acme", "ACME", "acme!"):  # the same id
        r = client.post("/api/orgs", json={"name": name}, headers=OPERATOR)
        assert r.status_code == 409 and "exists already" in r.json["error"], name
    for body in ({"name": ""}, {"name": "   "}, {"name": "!!!"}, {"name": "x" * 101}, {"name": 7}, {},
                 {"name": "Default"}):
        r = client.post("/api/orgs", json=body, headers=OPERATOR)
        assert r.status_code in (409, 422), body
        assert r.json["error"]
    assert client.post("/api/orgs", json={"name": "Ok", "colour": "red"}, headers=OPERATOR).json["fields"] == ["colour"]
    assert client.post("/api/orgs", data="{nope", headers=OPERATOR, content_type="application/json").status_code == 400
    assert client.post("/api/orgs", json=["Acme"], headers=OPERATOR).status_code == 400
    assert [o.id for o in fleet.accounts.orgs.list()] == ["default", "acme"]


def test_creating_an_organisation_needs_the_server_operator(rig):
    fleet, client = rig
    org, admin_key = new_org(client)
    assert client.post("/api/orgs", json={"name": "Nope"}).status_code == 401
    r = client.post("/api/orgs", json={"name": "Nope"}, headers=bearer("not-a-token"))
    assert r.status_code == 401 and "wrong token" in r.json["error"]
    r = client.post("/api/orgs", json={"name": "Nope"}, headers=bearer(admin_key[:-3] + "xyz"))
    assert r.status_code == 401
    for credential in (admin_key, FLEET_TOKEN):  # valid, but not the operator's
        r = client.post("/api/orgs", json={"name": "Nope"}, headers=bearer(credential))
        assert r.status_code == 403 and "server operator" in r.json["error"]
    assert not fleet.accounts.orgs.exists("nope")


def test_a_server_admins_login_creates_organisations_with_the_csrf_token(rig):
    fleet, client = rig
    csrf = login(fleet, client, "root", role=None, server_admin=True)
    r = client.post("/api/orgs", json={"name": "Acme"})
    assert r.status_code == 403 and "CSRF" in r.json["error"]
    r = client.post("/api/orgs", json={"name": "Acme"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    assert fleet.storage.audit(org="acme")[0].actor == "user:root"
    # an organisation admin's login is no server admin
    csrf = login(fleet, client, "ada", org="acme", role="admin")
    r = client.post("/api/orgs", json={"name": "Other"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and "server operator" in r.json["error"]


def test_listing_organisations_shows_the_operator_all_and_others_their_own(rig):
    fleet, client = rig
    acme, acme_key = new_org(client, "Acme")
    beta, _ = new_org(client, "Beta")
    r = client.get("/api/orgs", headers=OPERATOR)
    schemas.OrgList.model_validate(r.json)
    assert [o["id"] for o in r.json["orgs"]] == ["default", "acme", "beta"]
    r = client.get("/api/orgs", headers=bearer(acme_key))
    assert r.json["orgs"] == [{"id": "acme", "name": "Acme", "created_at": r.json["orgs"][0]["created_at"],
                               "scopes": ["admin", "operate", "read", "report"], "role": None, "current": True}]
    report_key = fleet.accounts.keys.create("beta", scopes=["report"])[1]
    assert [(o["id"], o["scopes"]) for o in client.get("/api/orgs", headers=bearer(report_key)).json["orgs"]] == \
        [("beta", ["report"])]
    # a login in two organisations sees both, with its role there
    user = fleet.accounts.users.add("olga", "olga's long passphrase", org="acme", role="operator")
    fleet.accounts.users.set_role("olga", "beta", "viewer")
    sid, _ = fleet.accounts.sessions.create("olga", user.epoch + 1, "beta")
    client.set_cookie("dashfleet_session", sid)
    orgs = client.get("/api/orgs").json["orgs"]
    assert [(o["id"], o["role"], o["current"]) for o in orgs] == [("acme", "operator", False), ("beta", "viewer", True)]
    client.delete_cookie("dashfleet_session")
    assert client.get("/api/orgs").status_code == 401
    assert acme and beta


# --- keys ------------------------------------------------------------------------------------------


def test_an_admin_key_creates_lists_and_revokes_keys_and_a_revoked_key_is_refused_next(rig):
    fleet, client = rig
    org, admin = new_org(client)
    r = client.post(f"/api/orgs/{org}/keys", json={"name": "reader", "scopes": ["read"], "expires_at": "90d"},
                    headers=bearer(admin))
    assert r.status_code == 201
    schemas.KeyCreated.model_validate(r.json)
    assert set(r.json) == {"key", "secret"} and set(r.json["key"]) == KEY_FIELDS
    key, secret = r.json["key"], r.json["secret"]
    assert key["scopes"] == ["read"] and key["name"] == "reader" and key["last_used_at"] is None
    expires = key["expires_at"]
    assert timedelta(days=89) < (utcnow().fromisoformat(expires) - utcnow()) <= timedelta(days=90)
    assert client.get("/api/fleet", headers=bearer(secret)).status_code == 200
    listed = client.get(f"/api/orgs/{org}/keys", headers=bearer(admin))
    schemas.KeyList.model_validate(listed.json)
    text = listed.get_data(as_text=True)
    assert secret not in text and admin not in text and digest(secret) not in text and "hash" not in text
    by_id = {k["id"]: k for k in listed.json["keys"]}
    assert by_id[key["id"]]["last_used_at"] is not None  # it has read the fleet
    assert client.delete(f"/api/orgs/{org}/keys/{key['id']}", headers=bearer(admin)).status_code == 204
    r = client.get("/api/fleet", headers=bearer(secret))
    assert r.status_code == 401 and "revoked" in r.json["error"]
    assert key["id"] not in {k["id"] for k in client.get(f"/api/orgs/{org}/keys", headers=bearer(admin)).json["keys"]}
    r = client.delete(f"/api/orgs/{org}/keys/{key['id']}", headers=bearer(admin))
    assert r.status_code == 404 and "list the keys" in r.json["error"]


def test_a_report_key_minted_over_the_api_reports_into_its_organisation(rig):
    fleet, client = rig
    org, admin = new_org(client)
    secret = client.post(f"/api/orgs/{org}/keys", json={"name": "agents", "scopes": ["report"]},
                         headers=bearer(admin)).json["secret"]
    r = client.post("/api/fleet/report", json={"machine_id": "pc-1", "seq": 1}, headers=bearer(secret))
    assert r.status_code == 201
    assert fleet.storage.machine("pc-1", org=org) is not None and fleet.storage.machine("pc-1") is None
    assert client.get("/api/fleet", headers=bearer(secret)).status_code == 403  # a report key cannot read


def test_keys_need_scope_admin_in_the_paths_organisation(rig):
    fleet, client = rig
    org, admin = new_org(client)
    weaker = {scope: fleet.accounts.keys.create(org, scopes=[scope])[1] for scope in ("report", "read", "operate")}
    some = fleet.accounts.keys.create(org, name="victim", scopes=["read"])[0]
    for scope, secret in weaker.items():
        for method, path, body in (("get", f"/api/orgs/{org}/keys", None),
                                   ("post", f"/api/orgs/{org}/keys", {"scopes": ["read"]}),
                                   ("delete", f"/api/orgs/{org}/keys/{some.id}", None)):
            r = getattr(client, method)(path, json=body, headers=bearer(secret))
            assert r.status_code == 403 and "'admin' scope" in r.json["error"], (scope, method)
    for method, path in (("get", f"/api/orgs/{org}/keys"), ("post", f"/api/orgs/{org}/keys"),
                         ("delete", f"/api/orgs/{org}/keys/{some.id}")):
        r = getattr(client, method)(path, json={"scopes": ["read"]})
        assert r.status_code == 401 and "missing token" in r.json["error"], method
        r = getattr(client, method)(path, json={"scopes": ["read"]}, headers=bearer("dfk_000000000000_" + "A" * 43))
        assert r.status_code == 401 and "wrong token" in r.json["error"], method
    assert fleet.accounts.keys.get(some.id) is not None


def test_another_organisations_keys_answer_404_and_stay_untouched(rig):
    fleet, client = rig
    acme, acme_admin = new_org(client, "Acme")
    beta, beta_admin = new_org(client, "Beta")
    beta_key = client.post(f"/api/orgs/{beta}/keys", json={"scopes": ["read"]}, headers=bearer(beta_admin)).json
    for method, path, body in (("get", f"/api/orgs/{beta}/keys", None),
                               ("post", f"/api/orgs/{beta}/keys", {"scopes": ["admin"]}),
                               ("delete", f"/api/orgs/{beta}/keys/{beta_key['key']['id']}", None),
                               ("get", "/api/orgs/default/keys", None),
                               ("get", "/api/orgs/nowhere/keys", None),
                               ("get", "/api/orgs/NOT_AN_ID/keys", None)):
        r = getattr(client, method)(path, json=body, headers=bearer(acme_admin))
        assert r.status_code == 404 and "GET /api/orgs" in r.json["error"], path
    # a key of beta revoked through acme's path: not found there, and it keeps working
    r = client.delete(f"/api/orgs/{acme}/keys/{beta_key['key']['id']}", headers=bearer(acme_admin))
    assert r.status_code == 404
    assert client.get("/api/fleet", headers=bearer(beta_key["secret"])).status_code == 200
    assert len(fleet.accounts.keys.list(beta)) == 2
    # the operator manages any organisation's keys, and gets 404 for one that does not exist
    assert client.get(f"/api/orgs/{beta}/keys", headers=OPERATOR).status_code == 200
    r = client.post(f"/api/orgs/{beta}/keys", json={"name": "ops", "scopes": ["operate"]}, headers=OPERATOR)
    assert r.status_code == 201 and r.json["key"]["org"] == beta
    assert client.get("/api/orgs/nowhere/keys", headers=OPERATOR).status_code == 404
    assert client.delete(f"/api/orgs/{beta}/keys/{beta_key['key']['id']}", headers=OPERATOR).status_code == 204
    assert client.get("/api/fleet", headers=bearer(beta_key["secret"])).status_code == 401


def test_bad_key_requests_say_what_to_send(rig):
    fleet, client = rig
    org, admin = new_org(client)
    cases = [({"scopes": []}, 422, "scopes"), ({"scopes": ["root"]}, 422, "unknown scope"),
             ({"scopes": "read"}, 422, "scopes"), ({"name": "x"}, 422, "scopes"),
             ({"scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, 422, "in the past"),
             ({"scopes": ["read"], "expires_at": "soon"}, 422, "not a time"),
             ({"scopes": ["read"], "name": 5}, 422, "name must be text"),
             ({"scopes": ["read"], "secret": "mine"}, 422, "unknown field")]
    for body, status, words in cases:
        r = client.post(f"/api/orgs/{org}/keys", json=body, headers=bearer(admin))
        assert r.status_code == status and words in r.json["error"], (body, r.json)
    assert client.post(f"/api/orgs/{org}/keys", headers=bearer(admin)).status_code == 400
    assert client.post(f"/api/orgs/{org}/keys", data="[", headers=bearer(admin),
                       content_type="application/json").status_code == 400
    assert client.delete(f"/api/orgs/{org}/keys/not-an-id", headers=bearer(admin)).status_code == 404
    assert len(fleet.accounts.keys.list(org)) == 1  # only the admin key


def test_an_expired_key_is_refused(rig):
    fleet, client = rig
    org, _ = new_org(client)
    key, secret = fleet.accounts.keys.create(org, scopes=["read"], expires_at="1m")
    assert client.get("/api/fleet", headers=bearer(secret)).status_code == 200
    record = fleet.storage.kv_get(KEYS_NAMESPACE, key.id, org=SERVER_SCOPE)
    fleet.storage.kv_put(KEYS_NAMESPACE, key.id, {**record, "expires_at": (utcnow() - timedelta(seconds=1)).isoformat()},
                         org=SERVER_SCOPE)
    assert client.get("/api/fleet", headers=bearer(secret)).status_code == 401


def test_logins_manage_keys_by_role_with_the_csrf_token(rig):
    fleet, client = rig
    org, _ = new_org(client)
    csrf = login(fleet, client, "ada", org=org, role="admin")
    r = client.post(f"/api/orgs/{org}/keys", json={"name": "agents", "scopes": ["report"]})
    assert r.status_code == 403 and "CSRF" in r.json["error"]
    r = client.post(f"/api/orgs/{org}/keys", json={"name": "agents", "scopes": ["report"]},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    key_id = r.json["key"]["id"]
    assert client.get(f"/api/orgs/{org}/keys").status_code == 200  # reading needs no CSRF token
    assert client.delete(f"/api/orgs/{org}/keys/{key_id}").status_code == 403
    assert client.delete(f"/api/orgs/{org}/keys/{key_id}", headers={"X-CSRF-Token": csrf}).status_code == 204
    for role in ("viewer", "operator"):
        csrf = login(fleet, client, f"{role}-user", org=org, role=role)
        r = client.post(f"/api/orgs/{org}/keys", json={"scopes": ["read"]}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403, role
        assert client.get(f"/api/orgs/{org}/keys").status_code == 403, role


def test_every_key_change_and_refusal_is_audited_in_its_organisation_without_the_secret(rig, caplog):
    caplog.set_level(logging.DEBUG)
    fleet, client = rig
    org, admin = new_org(client)
    other, other_admin = new_org(client, "Other")
    created = client.post(f"/api/orgs/{org}/keys", json={"name": "agents", "scopes": ["report"]},
                          headers=bearer(admin)).json
    client.post(f"/api/orgs/{org}/keys", json={"scopes": ["root"]}, headers=bearer(admin))  # 422
    client.post(f"/api/orgs/{org}/keys", json={"scopes": ["read"]})  # 401
    client.post(f"/api/orgs/{org}/keys", json={"scopes": ["read"]}, headers=bearer(other_admin))  # 404
    client.delete(f"/api/orgs/{org}/keys/{created['key']['id']}", headers=bearer(admin))
    client.delete(f"/api/orgs/nowhere/keys/{created['key']['id']}", headers=OPERATOR)  # 404, no such org
    rows = [(r.action, r.actor, r.outcome, r.details.get("status")) for r in reversed(fleet.storage.audit(org=org))]
    admin_actor = f"key:{admin[4:16]}"
    assert rows == [("org.create", "action-token", "ok", None),
                    ("key.create", admin_actor, "ok", None),
                    ("key.create", admin_actor, "refused", 422),
                    ("key.create", "unauthenticated", "refused", 401),
                    ("key.revoke", admin_actor, "ok", None)]
    # another organisation's attempt is audited in its own organisation, not in the one it tried
    assert [(r.action, r.actor, r.outcome, r.params["org"]) for r in fleet.storage.audit(org=other)][0] == \
        ("key.create", f"key:{other_admin[4:16]}", "refused", org)
    made = fleet.storage.audit(org=org)[-2]
    assert made.params == {"org": org, "name": "agents", "scopes": ["report"], "key_id": created["key"]["id"]}
    # a made-up organisation gets no rows: the attempt is in the caller's own
    assert [r.params.get("org") for r in fleet.storage.audit(org="default")] == ["nowhere"]
    text = audit_text(fleet, org, other, "default") + caplog.text
    for secret in (admin, other_admin, created["secret"], ACTION_TOKEN):
        assert secret not in text and digest(secret) not in text
