"""Who is asking, and may they: every request passes here before its view runs.

A view declares what it needs with `@requires(LEVEL)`; a view that declares nothing needs `read`,
so a new endpoint (a plugin's route included) is never open by accident. The levels:

- `OPEN`: no credential (`/healthz`, `/login`, static files, a one-time download link);
- `SELF`: the view checks the credential itself with `require()`, after it has set up its audit
  row (actions, maintenance) or read the seed's token from the body (reports);
- `report`, `read`, `operate`, `admin`: that scope in the request's organisation;
- `SERVER`: the server operator (ACTION_TOKEN) or a server admin.

A request's credential is, in this order: `Authorization: Bearer` with the ACTION_TOKEN, an
organisation key (`dfk_...`) or the FLEET_TOKEN; a dashboard session cookie; and, when `[server]
public_read` is on, the anonymous reader of the `default` organisation. The organisation a request
is about is the key's, the session's current one, or for a server-wide credential the one named by
the `X-DashFleet-Org` header or `?org=` (default: `default`). A request never sees any other: its
machine paths answer 404, its lists leave the rest out.

Requests that authenticate with the session cookie and change something must carry the session's
CSRF token (`X-CSRF-Token` header or a `csrf_token` form field); bearer requests need none (a
browser never adds an Authorization header by itself).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Callable
from urllib.parse import quote

from flask import Flask, current_app, g, redirect, request

from dashfleet_core.accounts import Principal
from dashfleet_core.accounts.keys import looks_like_key
from dashfleet_core.accounts.orgs import valid_org_id
from dashfleet_core.accounts.principal import expand_scopes, scopes_of_role
from dashfleet_core.models import DEFAULT_ORG

from .auth import ApiError, check_blocked, count_refusal, presented_token, tokens_match

log = logging.getLogger(__name__)

OPEN, SELF, SERVER = "open", "self", "server"
REPORT, READ, OPERATE, ADMIN = "report", "read", "operate", "admin"
LEVEL_ATTR = "_dashfleet_access"
SESSION_COOKIE = "dashfleet_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
ORG_HEADER = "X-DashFleet-Org"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNSET = object()


def requires(level: str) -> Callable:
    """Declare what a view needs (see the module's docstring)."""
    def mark(view: Callable) -> Callable:
        setattr(view, LEVEL_ATTR, level)
        return view
    return mark


def level_of(view: Callable | None) -> str:
    return getattr(view, LEVEL_ATTR, READ) if view is not None else OPEN


def _fleet():
    return current_app.extensions["dashfleet"]


def _is_page() -> bool:
    path = request.path
    return not (path.startswith("/api/") or path in ("/metrics", "/healthz")
                or request.accept_mimetypes.best == "application/json")


# --- who is asking --------------------------------------------------------------------------------

def principal(body: Any = None) -> Principal | None:
    """The request's principal (None: no credential and no public reading). A presented credential
    that is wrong raises 401 (counted against the client address; 429 once it is blocked)."""
    cached = g.get("dashfleet_principal", _UNSET)
    if cached is not _UNSET and (cached is not None or body is None):
        return cached
    found = _resolve(body)
    g.dashfleet_principal = found
    return found


def _resolve(body: Any) -> Principal | None:
    given = presented_token(body)
    if given is not None:
        return _from_token(given)
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        found = _from_session(sid)
        if found is not None:
            return found
    if _fleet().settings.server.public_read:
        return Principal(actor="public", org=DEFAULT_ORG, grants={DEFAULT_ORG: frozenset({READ})})
    return None


def _from_token(given: str) -> Principal:
    fleet = _fleet()
    check_blocked()
    action_token = fleet.settings.actions.token
    if action_token and tokens_match(given, action_token):
        return Principal(actor="action-token", org=_requested_org(), server=True)
    if looks_like_key(given):
        key = fleet.accounts.keys.verify(given)
        if key is not None:
            return Principal(actor=f"key:{key.id}", org=key.org, key_id=key.id,
                             grants={key.org: expand_scopes(key.scopes)})
    fleet_token = current_app.config.get("FLEET_TOKEN")
    if fleet_token and tokens_match(given, fleet_token):
        return Principal(actor="fleet-token", org=DEFAULT_ORG, grants={DEFAULT_ORG: frozenset({REPORT})})
    count_refusal()
    unset = "" if action_token else " (this server has no ACTION_TOKEN configured: set it and restart to use one)"
    raise ApiError(401, "wrong token: it is not this server's ACTION_TOKEN or FLEET_TOKEN, nor a live "
                        f"organisation key (unknown, revoked or expired); check the one this client uses{unset}")


def _requested_org() -> str:
    """The organisation a server-wide credential names for this request (default `default`)."""
    org = request.headers.get(ORG_HEADER) or request.args.get("org") or DEFAULT_ORG
    if org != DEFAULT_ORG and not (valid_org_id(org) and _fleet().accounts.orgs.exists(org)):
        raise ApiError(404, f"no organisation {org[:64]!r}; GET /api/orgs lists them")
    return org


def _from_session(sid: str) -> Principal | None:
    accounts = _fleet().accounts
    session = accounts.sessions.get(sid)
    if session is None or session.mfa_pending:
        return None
    user = accounts.users.get(session.username)
    if user is None or user.epoch != session.epoch:
        return None
    if _fleet().settings.server.require_2fa and not (user.totp or {}).get("secret") and (
            user.server_admin or any(role != "viewer" for role in user.roles.values())):
        return None  # [server] require_2fa: this user must enrol (at /login) before using the dashboard
    org = session.org
    if not user.server_admin and org not in user.roles:
        if not user.roles:
            return None
        org = sorted(user.roles)[0]
    elif user.server_admin and not accounts.orgs.exists(org):
        org = DEFAULT_ORG
    grants = {o: scopes_of_role(role) for o, role in user.roles.items()}
    return Principal(actor=f"user:{user.username}", org=org, grants=grants, server=user.server_admin,
                     user=user.username, session_id=session.key, csrf_token=session.csrf_token)


# --- may they --------------------------------------------------------------------------------------

def require(level: str, body: Any = None) -> Principal:
    """The request's principal if it may act at `level` in its organisation; else ApiError
    (401 without a credential, 403 with one that lacks the scope)."""
    found = principal(body)
    if found is None or (found.actor == "public" and level != READ):
        raise ApiError(401, _missing(level))
    if level == SERVER:
        if not found.server:
            raise ApiError(403, "this needs the server operator: the ACTION_TOKEN or a server admin's login")
    elif not found.can(level):
        raise ApiError(403, f"this credential lacks the {level!r} scope in organisation {found.org!r}; "
                            f"use a key or a login with it")
    check_csrf(found)
    return found


def _missing(level: str) -> str:
    if level == REPORT:
        return "missing token: send 'Authorization: Bearer <FLEET_TOKEN or a report key>'"
    if level == SERVER:
        return "missing token: send 'Authorization: Bearer <ACTION_TOKEN>' or log in as a server admin"
    return (f"missing token: log in at /login, or send 'Authorization: Bearer <key>' with a key of "
            f"scope {level!r}")


def check_csrf(found: Principal) -> None:
    """A state change by session cookie must carry the session's CSRF token."""
    if found.session_id is None or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = request.form.get(CSRF_FIELD)
    if not sent or not found.csrf_token or not hmac.compare_digest(sent.encode(), found.csrf_token.encode()):
        raise ApiError(403, f"missing or wrong CSRF token: a change made with the dashboard's login must send "
                            f"the page's token ({CSRF_HEADER} header or {CSRF_FIELD} field); reload the page")


def current_org() -> str:
    found = g.get("dashfleet_principal")
    return found.org if found is not None else DEFAULT_ORG


def init_app(app: Flask) -> None:
    @app.before_request
    def _check_access():
        if request.endpoint in (None, "static"):  # 404s and CSS/JS/images: nothing to protect
            return None
        level = level_of(app.view_functions.get(request.endpoint))
        if level in (OPEN, SELF):
            return None
        try:
            require(level)
        except ApiError as exc:
            if exc.status == 401 and _is_page():
                target = request.full_path if request.query_string else request.path
                return redirect(f"/login?next={quote(target, safe='/')}", code=302)
            raise
        return None
