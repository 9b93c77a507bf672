"""What the login pages and the session API share: the session cookie, where to go after a login,
turning the core's AccountError into an ApiError, and reading a JSON body."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

from flask import Response, g, request

from dashfleet_core.accounts import AccountError

from .access import SESSION_COOKIE
from .app import get_fleet
from .auth import ApiError
from .jsonbody import parse_json

PENDING_COOKIE = "dashfleet_login"  # a half-done login (password checked, second factor not yet)
DEFAULT_NEXT = "/fleet"
MAX_NEXT = 2000


def secure_cookies() -> bool:
    """Secure cookies when the server is reached over https (`[server] public_url`)."""
    return (get_fleet().settings.server.public_url or "").lower().startswith("https://")


def set_session_cookie(response: Response, sid: str, name: str = SESSION_COOKIE) -> Response:
    response.set_cookie(name, sid, httponly=True, samesite="Lax", secure=secure_cookies(), path="/")
    return response


def clear_cookie(response: Response, name: str) -> Response:
    response.delete_cookie(name, path="/", httponly=True, samesite="Lax", secure=secure_cookies())
    return response


def safe_next(value: object) -> str:
    """A local path to go to after the login, else /fleet: never another site (`//evil`,
    `https://...`, `/\\evil` which browsers read as `//evil`), never a control character."""
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT:
        return DEFAULT_NEXT
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    if value.startswith(("/login", "/logout", "/setup/")):
        return DEFAULT_NEXT
    return value


@contextmanager
def account_errors() -> Iterator[None]:
    """The core's refusals as the API's errors (same status, sentence and fields)."""
    try:
        yield
    except AccountError as exc:
        raise ApiError(exc.status, exc.message, **exc.extra) from None


def json_object(hint: str, optional: bool = False) -> dict[str, Any]:
    raw = request.get_data()
    if optional and not raw.strip():
        return {}
    body = parse_json(raw, hint)
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object; {hint}")
    return body


def needs_second_factor(user) -> bool:
    """Under `[server] require_2fa`: operators and admins (of any organisation) and server admins."""
    if not get_fleet().settings.server.require_2fa:
        return False
    return user.server_admin or any(role in ("operator", "admin") for role in user.roles.values())


def role_of(who, org: str) -> str:
    """The dashboard role a principal has in `org`: its scopes there read as a role (a user's
    grants are their roles' scopes; a server principal is an admin everywhere)."""
    if who.server:
        return "admin"
    scopes = who.scopes(org)
    return "admin" if "admin" in scopes else "operator" if "operate" in scopes else "viewer"


def session_document(who) -> dict:
    """`GET /api/session`'s answer (and the page header's data), built once per request."""
    cached = g.get("dashfleet_session_document")
    if cached is not None and cached[0] is who:
        return cached[1]
    accounts = get_fleet().accounts
    user = accounts.users.get(who.user) if who.user else None
    if who.server and who.session_id:  # a server admin's login may switch to any organisation
        known = accounts.orgs.list()
    elif who.server:  # the ACTION_TOKEN names its organisation per request: nothing to switch to
        known = [org for org in (accounts.orgs.get(who.org),) if org is not None]
    else:
        known = [org for org in (accounts.orgs.get(org_id) for org_id in sorted(who.grants)) if org is not None]
    doc = {"user": who.user, "org": who.org,
           "orgs": [{"id": org.id, "name": org.name, "role": role_of(who, org.id)} for org in known],
           "server_admin": who.server, "csrf_token": who.csrf_token,
           "totp": bool(user and accounts.second_factor.enabled(user)), "role": role_of(who, who.org)}
    g.dashfleet_session_document = (who, doc)
    return doc


def header_document(who) -> dict:
    """What the page header shows: the user, the CSRF token, and the organisations for the switcher
    only when there is a choice. No storage read for a user of one organisation, so a page with a
    login costs what it costs under public reading, plus the session check."""
    doc = {"user": who.user, "org": who.org, "csrf_token": who.csrf_token, "orgs": []}
    if (who.server and who.session_id) or len(who.grants) > 1:
        doc["orgs"] = session_document(who)["orgs"]
    return doc
