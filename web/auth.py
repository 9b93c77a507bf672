"""Tokens for the API: fail closed, compare in constant time, say what to do when refused, and
throttle guessing.

Refused credentials are counted per client address (`client_address`, which honours `[server]
trusted_proxies`) in storage, so every worker and server process shares the count. Past `[server]
failed_auth_per_minute` in a minute the address is blocked for BLOCK_SECONDS: its calls are
answered 429 before any token is compared, so guessing stops there. Authorised calls are never
counted here (they have their own rate limits), so a stranger's wrong guesses from another address
cannot lock out the real token holder.

`ApiError` is turned into a JSON `{"error": ...}` response by the app's error handler.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from flask import current_app, request

from .client_address import client_address

REFUSED_NAMESPACE = "auth_refused"
BLOCKED_NAMESPACE = "auth_blocked"
BLOCK_SECONDS = 60
RETRY_AFTER_SECONDS = 5

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on: HTTP status, a sentence, optional extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra
        self.headers: dict[str, str] = {}

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
    """Refuse unless the request presents `expected` (one fixed token, no organisation keys).

    Unset `expected` -> 403 saying how to set it (fail closed); missing or wrong token -> 401,
    counted against the client address; a blocked address -> 429 with Retry-After, whatever token.
    """
    if not expected:
        raise ApiError(
            403,
            f"{name} is not configured on the server, so this endpoint refuses every call; "
            f"set the {name} environment variable (or its key in dashfleet.toml) and restart",
        )
    check_blocked()
    given = presented_token(body)
    if given is None or not tokens_match(given, expected):
        count_refusal()
        if given is None:
            raise ApiError(401, f"missing token: send 'Authorization: Bearer <{name}>'")
        raise ApiError(401, f"wrong token: check the {name} this client uses")


def check_blocked() -> None:
    """429 when the client's address is blocked for guessing (checked before any comparison)."""
    storage = current_app.extensions["dashfleet"].storage
    address = client_address()
    with _storage_or_503():
        blocked = storage.kv_get(BLOCKED_NAMESPACE, address)
    if blocked is not None:
        raise _throttled(address, datetime.fromisoformat(blocked["until"]))


def count_refusal() -> None:
    """Count one refused credential against the client's address (429 past the limit)."""
    storage = current_app.extensions["dashfleet"].storage
    with _storage_or_503():
        _count_refusal(storage, client_address())


@contextmanager
def _storage_or_503() -> Iterator[None]:
    """Fail closed when the throttle's storage cannot be read or written: a 503, no traceback."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        log.error("cannot check the refused-token throttle: storage failed: %s", exc)
        error = ApiError(503, f"the server's storage is unavailable; nothing was stored or run, "
                              f"retry in {RETRY_AFTER_SECONDS} s")
        error.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        raise error from None


def _count_refusal(storage: Any, address: str) -> None:
    """One more refused credential from `address` this minute; past the limit, block the address
    (every worker sees the block: it is in storage) and raise the 429."""
    limit = current_app.extensions["dashfleet"].settings.server.failed_auth_per_minute
    now = datetime.now(timezone.utc)
    window = now.replace(second=0, microsecond=0)
    count = storage.incr(REFUSED_NAMESPACE, f"{address}|{window:%Y%m%d%H%M}",
                         expires_at=window + timedelta(minutes=1))
    if count > limit:
        until = now + timedelta(seconds=BLOCK_SECONDS)
        storage.kv_put(BLOCKED_NAMESPACE, address, {"until": until.isoformat(), "refused": count},
                       expires_at=until)
        raise _throttled(address, until)


def _throttled(address: str, until: datetime) -> ApiError:
    retry = max(1, int((until - datetime.now(timezone.utc)).total_seconds() + 0.999))
    error = ApiError(
        429, f"too many refused tokens from {address[:64]}: it is blocked for {retry} s more; then "
             f"send the right token. Behind a reverse proxy every client may share the proxy's "
             f"address: list the proxy in [server] trusted_proxies", retry_after=retry)
    error.headers = {"Retry-After": str(retry)}
    return error
