"""What every account module shares: the reserved storage scope, the error type, digests."""

from __future__ import annotations

import hashlib
from typing import Any

# The kv `org` under which server-wide records live; no organisation id can take it (ids are
# lower-case letters, digits and dashes).
SERVER_SCOPE = "~server"


class AccountError(Exception):
    """A request about accounts that cannot be done as asked: an HTTP-like status (404 unknown,
    409 taken, 410 gone, 422 invalid) and a sentence that says what to do."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def digest(secret: str) -> str:
    """The stored form of a random secret (key, session id, link token, recovery code)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
