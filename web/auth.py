"""Tokens for the API: fail closed, compare in constant time, say what to do when refused.

`ApiError` is turned into a JSON `{"error": ...}` response by the app's error handler.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import request


class ApiError(Exception):
    """An error the client can act on: HTTP status, a sentence, optional extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an unset expected token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def presented_token(body: Any = None) -> str | None:
    """`Authorization: Bearer <token>`, else a JSON body field `token` (the seed's form)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if isinstance(body, dict) and isinstance(body.get("token"), str):
        return body["token"]
    return None


def require_token(expected: str | None, *, name: str, body: Any = None) -> None:
    """Refuse unless the request presents `expected`.

    Unset `expected` -> 403 saying how to set it (fail closed); missing or wrong token -> 401.
    """
    if not expected:
        raise ApiError(
            403,
            f"{name} is not configured on the server, so this endpoint refuses every call; "
            f"set the {name} environment variable (or its key in dashfleet.toml) and restart",
        )
    given = presented_token(body)
    if given is None:
        raise ApiError(401, f"missing token: send 'Authorization: Bearer <{name}>'")
    if not tokens_match(given, expected):
        raise ApiError(401, f"wrong token: check the {name} this client uses")
