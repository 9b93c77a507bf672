"""The dashboard's own session over JSON: who am I (`GET /api/session`), switch organisation,
change my password, and enrol or remove my second factor (the settings page calls these).

Every change needs a dashboard login and its CSRF token (`X-CSRF-Token`); a bearer credential is
answered 403 (it has no session to change). A password change raises the user's epoch (every
session of theirs ends, on every worker) and gives this browser a new session.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, make_response

from dashfleet_core.accounts import AccountError
from dashfleet_core.accounts.orgs import valid_org_id
from dashfleet_core.accounts.passwords import verify_password
from dashfleet_core.accounts.sessions import Session
from dashfleet_core.models import utcnow

from .. import login_throttle
from ..access import READ, SELF, principal, require, requires
from ..account_audit import first_org, record
from ..app import get_fleet
from ..auth import ApiError
from ..client_address import client_address
from ..sessions_web import (account_errors, json_object, needs_second_factor, session_document,
                           set_session_cookie)

bp = Blueprint("session_api", __name__)


def _session_user(body=None):
    """The logged-in user of this request (session + CSRF checked), else 401/403."""
    who = require(READ, body)
    if not who.session_id or not who.user:
        raise ApiError(403, "this needs a dashboard login (log in at /login); a bearer credential has no "
                            "session to change")
    return who, get_fleet().accounts.users.require(who.user)


def _check_password(user, password: object) -> None:
    """The user's current password, throttled like a login (a stolen session cannot guess it)."""
    try:
        attempt = login_throttle.begin(get_fleet().storage, user.username, client_address())
    except login_throttle.LockedOut as exc:
        error = ApiError(429, f"too many wrong passwords for this {exc.what}: try again in "
                              f"{exc.retry_after} s", retry_after=exc.retry_after)
        error.headers = {"Retry-After": str(exc.retry_after)}
        raise error from None
    if not isinstance(password, str) or not verify_password(password, user.password_hash):
        raise ApiError(422, "the current password is wrong", fields=["password"])
    attempt.succeeded()


@bp.get("/api/session")
def session_get():
    return jsonify(session_document(principal()))


@bp.post("/api/session/org")
@requires(SELF)
def session_org():
    body = json_object('send {"org": "<organisation id>"}')
    who, user = _session_user(body)
    org = body.get("org")
    accounts = get_fleet().accounts
    if not isinstance(org, str) or not valid_org_id(org) or not accounts.orgs.exists(org) or not (
            user.server_admin or org in user.roles):
        raise ApiError(404, f"no organisation {str(org)[:64]!r} among yours; GET /api/session lists them")
    session = Session(who.session_id, user.username, user.epoch, who.org, who.csrf_token or "", utcnow())
    accounts.sessions.switch_org(session, org)
    return jsonify(session_document(who.in_org(org)))


@bp.post("/api/session/password")
@requires(SELF)
def session_password():
    body = json_object('send {"current": "<your password>", "new": "<the new one>"}')
    who, user = _session_user(body)
    accounts = get_fleet().accounts
    params = {"username": user.username}
    try:
        try:
            _check_password(user, body.get("current"))
        except ApiError as exc:
            if exc.status == 422:
                raise ApiError(422, "the current password is wrong", fields=["current"]) from None
            raise
        try:
            user = accounts.users.set_password(user.username, body.get("new"))
        except AccountError as exc:
            raise ApiError(exc.status, exc.message, fields=["new"]) from None
    except ApiError as exc:
        record(first_org(user), who.actor, "user.password", "refused", params, error=exc.message)
        raise
    accounts.sessions.delete_user(user.username)
    sid, session = accounts.sessions.create(user.username, user.epoch, who.org)
    record(first_org(user), who.actor, "user.password", "ok", params, sessions="all revoked")
    doc = session_document(who)
    doc["csrf_token"] = session.csrf_token
    return set_session_cookie(make_response(jsonify(doc)), sid)


@bp.post("/api/session/totp")
@requires(SELF)
def totp_begin():
    who, user = _session_user(json_object("send an empty body or {}", optional=True))
    with account_errors():
        begun = get_fleet().accounts.second_factor.begin(user.username)
    return jsonify(begun)


@bp.post("/api/session/totp/confirm")
@requires(SELF)
def totp_confirm():
    body = json_object('send {"code": "<the 6 digits the app shows>"}')
    who, user = _session_user(body)
    try:
        with account_errors():
            codes = get_fleet().accounts.second_factor.confirm(user.username, body.get("code"))
    except ApiError as exc:
        record(first_org(user), who.actor, "totp.enrol", "refused", {"username": user.username}, error=exc.message)
        raise
    record(first_org(user), who.actor, "totp.enrol", "ok", {"username": user.username})
    return jsonify({"recovery_codes": codes})


@bp.delete("/api/session/totp")
@requires(SELF)
def totp_remove():
    body = json_object('send {"password": "<your password>"}')
    who, user = _session_user(body)
    accounts = get_fleet().accounts
    try:
        if not accounts.second_factor.enabled(user) and not (user.totp or {}).get("pending"):
            raise ApiError(409, "no second factor is set up for this user")
        if needs_second_factor(user):
            raise ApiError(409, "this server requires a second factor for operators and admins "
                                "([server] require_2fa): it cannot be removed")
        _check_password(user, body.get("password"))
        accounts.second_factor.disable(user.username)
    except ApiError as exc:
        record(first_org(user), who.actor, "totp.remove", "refused", {"username": user.username}, error=exc.message)
        raise
    record(first_org(user), who.actor, "totp.remove", "ok", {"username": user.username})
    return "", 204
