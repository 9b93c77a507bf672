"""Organisations and their API keys over HTTP.

- `POST /api/orgs` `{"name": "Acme"}` (the server operator: ACTION_TOKEN or a server admin) -> 201
  `{"org": {...}, "api_key": "<secret>"}`: the organisation and its first key (scope admin, named
  "admin"), shown this once.
- `GET /api/orgs` -> `{"orgs": [...]}`: every organisation for the server operator, else the
  caller's own, each with the scopes (and, for a login, the role) the caller has there.
- `POST /api/orgs/<org>/keys` `{"name", "scopes", "expires_at"?}` -> 201 `{"key": {...}, "secret"}`;
  `GET /api/orgs/<org>/keys` -> `{"keys": [...]}` (never a secret or hash);
  `DELETE /api/orgs/<org>/keys/<key_id>` -> 204. They need scope admin in `<org>`; an organisation
  the caller has no part in answers 404, as another organisation's machine does.

The organisation of the key paths is the path's, not the request's (`X-DashFleet-Org`), so these
views check the credential themselves (`SELF`). Every creation and revocation, refused attempts
included, leaves one audit row in the organisation it concerns (an attempt by another organisation's
credential: in the caller's own), without the secret.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from dashfleet_core.accounts import Principal
from dashfleet_core.accounts.keys import MAX_NAME
from dashfleet_core.accounts.orgs import valid_org_id
from dashfleet_core.accounts.principal import SERVER_SCOPES
from dashfleet_core.echo import clip

from ..access import ADMIN, SELF, SERVER, check_csrf, principal, require, requires
from ..account_errors import account_errors
from ..app import get_fleet
from ..audit import Attempt, audited
from ..auth import ApiError
from ..jsonbody import parse_json

bp = Blueprint("orgs", __name__)

FIRST_KEY_NAME = "admin"
ORG_FIELDS = frozenset({"name", "token"})
KEY_FIELDS = frozenset({"name", "scopes", "expires_at", "token"})


@bp.post("/api/orgs")
@requires(SELF)
def create_org():
    with audited("org.create") as attempt:
        body = _json_body(ORG_FIELDS, '{"name": "Acme"}')
        attempt.params["name"] = clip(body.get("name"), MAX_NAME) if isinstance(body.get("name"), str) else None
        who = require(SERVER, body)
        attempt.actor = who.actor
        accounts = get_fleet().accounts
        with account_errors():
            org = accounts.orgs.create(body.get("name"))
            attempt.org, attempt.params["org"] = org.id, org.id
            key, secret = accounts.keys.create(org.id, name=FIRST_KEY_NAME, scopes=[ADMIN], by=who.actor)
        attempt.params["key_id"] = key.id
    return jsonify({"org": org.to_json(), "api_key": secret}), 201


@bp.get("/api/orgs")
@requires(SELF)
def list_orgs():
    who = principal()
    if who is None:
        raise ApiError(401, "missing token: log in at /login, or send 'Authorization: Bearer <key>'")
    accounts = get_fleet().accounts
    if who.server:
        orgs = accounts.orgs.list()
    else:
        orgs = [org for org in (accounts.orgs.get(o) for o in who.orgs()) if org is not None]
    user = accounts.users.get(who.user) if who.user else None
    roles = user.roles if user is not None else {}
    return jsonify({"orgs": [{**org.to_json(), "scopes": sorted(SERVER_SCOPES if who.server else who.scopes(org.id)),
                              "role": roles.get(org.id), "current": org.id == who.org} for org in orgs]})


@bp.post("/api/orgs/<org>/keys")
@requires(SELF)
def create_key(org: str):
    with audited("key.create") as attempt:
        _concerns(attempt, org)
        body = _json_body(KEY_FIELDS, '{"name": "agents", "scopes": ["report"], "expires_at": "90d"}')
        attempt.params.update(_shown(body))
        who = _org_admin(attempt, org, body)
        with account_errors():
            key, secret = get_fleet().accounts.keys.create(org, name=body.get("name", ""), scopes=body.get("scopes"),
                                                           expires_at=body.get("expires_at"), by=who.actor)
        attempt.params["key_id"] = key.id
    return jsonify({"key": key.to_json(), "secret": secret}), 201


@bp.get("/api/orgs/<org>/keys")
@requires(SELF)
def list_keys(org: str):
    _org_admin(None, org)
    return jsonify({"keys": [key.to_json() for key in get_fleet().accounts.keys.list(org)]})


@bp.delete("/api/orgs/<org>/keys/<key_id>")
@requires(SELF)
def revoke_key(org: str, key_id: str):
    with audited("key.revoke") as attempt:
        _concerns(attempt, org)
        attempt.params["key_id"] = clip(key_id, 40)
        _org_admin(attempt, org)
        with account_errors():
            get_fleet().accounts.keys.revoke(key_id, org=org)
    return "", 204


def _concerns(attempt: Attempt, org: str) -> None:
    """The audit row belongs to the path's organisation when there is one (never to a made-up id;
    a caller that is no member of it is audited in its own, see `_org_admin`)."""
    if valid_org_id(org) and get_fleet().accounts.orgs.exists(org):
        attempt.org = org
    attempt.params["org"] = clip(org, 64)


def _org_admin(attempt: Attempt | None, org: str, body: Any = None) -> Principal:
    """The caller, if it holds scope admin in `org`: 401 without a credential, 404 for an
    organisation it has no part in (or none of that id), 403 for a member lacking the scope."""
    who = principal(body)
    if who is None or who.actor == "public":
        raise ApiError(401, "missing token: log in at /login, or send 'Authorization: Bearer <key>' with a "
                            "key of scope 'admin' in this organisation")
    if attempt is not None:
        attempt.actor = who.actor
    check_csrf(who)
    if not (valid_org_id(org) and who.member_of(org) and get_fleet().accounts.orgs.exists(org)):
        if attempt is not None and not who.server:  # the row goes to the caller's own organisation:
            attempt.org = who.org                   # nothing of it may show in another's audit
        raise ApiError(404, f"no organisation {clip(org, 64)!r} that this credential belongs to; "
                            "GET /api/orgs lists yours")
    if not who.can(ADMIN, org):
        raise ApiError(403, f"this credential lacks the 'admin' scope in organisation {org!r}; use an admin "
                            "key of it or an admin's login")
    return who.in_org(org)


def _json_body(allowed: frozenset[str], example: str) -> dict:
    raw = request.get_data(cache=True)
    if not raw:
        raise ApiError(400, f"send a JSON body such as {example}")
    body = parse_json(raw, f"send {example}")
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object such as {example}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(422, f"unknown field {clip(unknown[0], 40)!r}: send only "
                            f"{', '.join(sorted(allowed - {'token'}))}", fields=[clip(u, 40) for u in unknown[:10]])
    return body


def _shown(body: dict) -> dict:
    """The body's fields as the audit row keeps them (never the token): text clipped."""
    shown: dict[str, Any] = {}
    if isinstance(body.get("name"), str):
        shown["name"] = clip(body["name"], MAX_NAME)
    scopes = body.get("scopes")
    if isinstance(scopes, list):
        shown["scopes"] = [clip(s, 40) if isinstance(s, str) else clip(repr(s), 40) for s in scopes[:10]]
    if body.get("expires_at") is not None:
        shown["expires_at"] = clip(str(body["expires_at"]), 40)
    return shown
