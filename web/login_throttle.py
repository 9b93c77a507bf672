"""Brute force on the login: at most MAX_FAILURES failed logins per username and per client address
in any WINDOW (a sliding window, shared by every worker and server through storage).

Each attempt first takes one of MAX_FAILURES slots for its username and one for its address, each
a storage record that lives for WINDOW (taken with the atomic `kv_add`, so two workers cannot take
the same one). A successful attempt gives its slots back; a failed one keeps them. With every slot
of the username or of the address held, the attempt is refused (429, Retry-After: until the oldest
slot expires) before any password is checked, so even simultaneous guesses never test more than
MAX_FAILURES passwords per window. Usernames are kept as digests (a mistyped password in the
username field must not sit in storage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dashfleet_core.accounts.scope import SERVER_SCOPE, digest
from dashfleet_core.models import utcnow

NAMESPACE = "login_failures"
MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)


class LockedOut(Exception):
    """Every slot is held: `retry_after` seconds until the oldest frees; `what` is "username" or
    "address"."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


@dataclass
class Attempt:
    """The slots one login attempt holds."""

    storage: object
    held: list[str] = field(default_factory=list)

    def succeeded(self) -> None:
        """A successful attempt is not a failure: give its slots back."""
        for key in self.held:
            self.storage.kv_delete(NAMESPACE, key, org=SERVER_SCOPE)
        self.held.clear()


def begin(storage, username: str, address: str) -> Attempt:
    """Take a slot for the username and one for the address, or raise LockedOut."""
    attempt = Attempt(storage)
    try:
        for what, subject in (("username", "u:" + digest(username.strip().lower())), ("address", "a:" + address)):
            attempt.held.append(_take(storage, what, subject))
    except LockedOut:
        attempt.succeeded()  # release what was taken: this attempt checks nothing
        raise
    return attempt


def _take(storage, what: str, subject: str) -> str:
    keys = [f"{subject}|{i}" for i in range(MAX_FAILURES)]
    now = utcnow()
    held = storage.kv_get_many(NAMESPACE, keys, org=SERVER_SCOPE)
    for key in keys:
        if key in held:
            continue
        if storage.kv_add(NAMESPACE, key, {"at": now.isoformat()}, org=SERVER_SCOPE, expires_at=now + WINDOW):
            return key
    held = storage.kv_get_many(NAMESPACE, keys, org=SERVER_SCOPE)
    oldest = min((datetime.fromisoformat(v["at"]) for v in held.values()), default=now)
    raise LockedOut(what, max(1, math.ceil((oldest + WINDOW - now).total_seconds())))
