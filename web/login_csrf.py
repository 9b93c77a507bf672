"""CSRF for the forms shown before there is a session (login, second factor, first admin).

A signed double submit: the browser gets a random nonce in an HttpOnly cookie, and the form a
field holding HMAC(server secret, nonce). A post is accepted only when the field is the HMAC of
the cookie it came with, so another site can neither read the field nor forge it (it would need
the server secret, even if it could plant a cookie). The secret is made once per storage (atomic
`kv_add`) so every worker and server signs alike.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Response, request

from dashfleet_core.accounts.scope import SERVER_SCOPE

from .auth import ApiError

COOKIE = "dashfleet_login_csrf"
FIELD = "csrf_token"
_NAMESPACE = "login_csrf"


def _secret(storage) -> bytes:
    record = storage.kv_get(_NAMESPACE, "secret", org=SERVER_SCOPE)
    if record is None:
        storage.kv_add(_NAMESPACE, "secret", {"value": secrets.token_hex(32)}, org=SERVER_SCOPE)
        record = storage.kv_get(_NAMESPACE, "secret", org=SERVER_SCOPE)
    return bytes.fromhex(record["value"])


def _sign(storage, nonce: str) -> str:
    return hmac.new(_secret(storage), nonce.encode(), hashlib.sha256).hexdigest()


def token_for_form(storage) -> tuple[str, str | None]:
    """(the form's token, a new nonce to set as the cookie or None when the browser has one)."""
    nonce = request.cookies.get(COOKIE, "")
    fresh = None
    if not (20 <= len(nonce) <= 100):
        nonce = fresh = secrets.token_urlsafe(32)
    return _sign(storage, nonce), fresh


def set_cookie(response: Response, nonce: str | None, secure: bool) -> Response:
    if nonce:
        response.set_cookie(COOKIE, nonce, httponly=True, samesite="Lax", secure=secure, path="/")
    return response


def check(storage) -> None:
    """403 unless the form carries the signature of its cookie."""
    nonce = request.cookies.get(COOKIE, "")
    sent = request.form.get(FIELD, "")
    if not nonce or not sent or not hmac.compare_digest(sent.encode(), _sign(storage, nonce).encode()):
        raise ApiError(403, "missing or wrong CSRF token: this form must be sent from the page the server "
                            "showed (cookies on); reload the page and try again")
