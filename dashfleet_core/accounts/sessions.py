"""Dashboard sessions, held in storage: the cookie carries only a random id.

A session record (under the id's digest) says whose it is, the user's epoch when it was made
and its CSRF token; it is never rewritten, so nothing can bring a deleted session back. What
changes is written apart (`sessions_seen`: the last activity, at most once a minute per session
and process, and the current organisation) and expires after the idle timeout: a session is live
while both exist.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..models import utcnow
from .scope import SERVER_SCOPE, digest

NAMESPACE = "sessions"
SEEN_NAMESPACE = "sessions_seen"
SEEN_EVERY_SECONDS = 60.0
MAX_AGE = timedelta(days=30)  # a session ends after this however active it is


@dataclass(frozen=True)
class Session:
    key: str  # the stored digest of the id
    username: str
    epoch: int
    org: str
    csrf_token: str
    created_at: datetime
    mfa_pending: bool = False  # password checked, the second factor not yet


class Sessions:
    def __init__(self, storage, idle_minutes: float) -> None:
        self.storage = storage
        self.idle = timedelta(minutes=idle_minutes)
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self, username: str, epoch: int, org: str, *, mfa_pending: bool = False) -> tuple[str, Session]:
        """A new session; returns the id for the cookie (never stored) and the session."""
        sid = secrets.token_urlsafe(32)
        now = utcnow()
        record = {"user": username, "epoch": epoch, "org": org, "csrf": secrets.token_urlsafe(32),
                  "created_at": now.isoformat(), "mfa_pending": mfa_pending}
        key = digest(sid)
        self.storage.kv_put(NAMESPACE, key, record, org=SERVER_SCOPE, expires_at=now + MAX_AGE)
        self.storage.kv_put(SEEN_NAMESPACE, key, {"at": now.isoformat(), "org": org}, org=SERVER_SCOPE,
                            expires_at=now + self.idle)
        return sid, _session(key, record, org)

    def get(self, sid: str) -> Session | None:
        """The live session of a cookie's id (and note the activity), or None."""
        if not sid or len(sid) > 100:
            return None
        key = digest(sid)
        record = self.storage.kv_get(NAMESPACE, key, org=SERVER_SCOPE)
        seen = self.storage.kv_get(SEEN_NAMESPACE, key, org=SERVER_SCOPE)
        if record is None or seen is None:
            return None
        org = seen.get("org") or record["org"]
        self._touch(key, org)
        return _session(key, record, org)

    def _touch(self, key: str, org: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._seen.get(key, -SEEN_EVERY_SECONDS) < SEEN_EVERY_SECONDS:
                return
            self._seen[key] = now
        at = utcnow()
        self.storage.kv_put(SEEN_NAMESPACE, key, {"at": at.isoformat(), "org": org}, org=SERVER_SCOPE,
                            expires_at=at + self.idle)

    def switch_org(self, session: Session, org: str) -> Session:
        """Make `org` the session's current organisation (the caller checked the membership)."""
        at = utcnow()
        self.storage.kv_put(SEEN_NAMESPACE, session.key, {"at": at.isoformat(), "org": org}, org=SERVER_SCOPE,
                            expires_at=at + self.idle)
        return _session(session.key, {"user": session.username, "epoch": session.epoch, "org": org,
                                      "csrf": session.csrf_token, "created_at": session.created_at.isoformat(),
                                      "mfa_pending": session.mfa_pending}, org)

    def delete(self, key: str) -> None:
        self.storage.kv_delete(NAMESPACE, key, org=SERVER_SCOPE)
        self.storage.kv_delete(SEEN_NAMESPACE, key, org=SERVER_SCOPE)

    def delete_user(self, username: str) -> int:
        """Delete every session of a user (their epoch was raised too, which already ends them)."""
        gone = 0
        for key, record in self.storage.kv_list(NAMESPACE, org=SERVER_SCOPE).items():
            if record.get("user") == username:
                self.delete(key)
                gone += 1
        return gone


def _session(key: str, record: dict, org: str) -> Session:
    return Session(key, record["user"], int(record["epoch"]), org, record["csrf"],
                   datetime.fromisoformat(record["created_at"]), bool(record.get("mfa_pending")))
