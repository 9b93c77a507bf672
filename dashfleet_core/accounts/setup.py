"""The first server admin of a server that has no users: a one-time setup link.

A server with no users prints (once per data folder, not once per worker: the announcement is
claimed with the storage's atomic `kv_add`) a link `/setup/<token>` valid for 60 minutes; the
first person to open it creates the first server admin. Only the token's digest is stored, and
the link is used up (claimed with `kv_add`) by the form that creates the admin, so of two
browsers racing on it exactly one wins. `dashfleet user setup-link` makes a fresh one from the
shell (and stops the server announcing another for the next 60 minutes).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from ..models import utcnow
from .scope import SERVER_SCOPE, digest

NAMESPACE = "setup_links"
USED_NAMESPACE = "setup_links_used"
ANNOUNCED_NAMESPACE = "setup_announced"
VALID_FOR = timedelta(minutes=60)
PATH = "/setup/"


def base_url(settings, port: int | None = None) -> str:
    """Where a browser reaches this server: `[server] public_url`, else http://host:port."""
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port if port is not None else settings.server.port}"


class SetupLinks:
    def __init__(self, storage, users) -> None:
        self.storage = storage
        self.users = users

    def create(self, now: datetime | None = None) -> tuple[str, datetime]:
        """A new link's token and when it expires (and the server will not announce another
        until then)."""
        now = now or utcnow()
        token = secrets.token_urlsafe(32)
        expires = now + VALID_FOR
        self.storage.kv_put(NAMESPACE, digest(token), {"created_at": now.isoformat(),
                                                       "expires_at": expires.isoformat()},
                            org=SERVER_SCOPE, expires_at=expires)
        self.storage.kv_put(ANNOUNCED_NAMESPACE, "server", {"at": now.isoformat()}, org=SERVER_SCOPE,
                            expires_at=expires)
        return token, expires

    def announce_once(self) -> tuple[str, datetime] | None:
        """A new link when there are no users and no live link was announced yet (by this or any
        other process of this storage); None otherwise."""
        if self.users.any():
            return None
        now = utcnow()
        if not self.storage.kv_add(ANNOUNCED_NAMESPACE, "server", {"at": now.isoformat()}, org=SERVER_SCOPE,
                                   expires_at=now + VALID_FOR):
            return None
        return self.create(now)

    def valid(self, token: str) -> bool:
        """A live, unused link (and still no users: the first admin exists once one was used)."""
        if not token or len(token) > 100 or self.users.any():
            return False
        key = digest(token)
        return (self.storage.kv_get(NAMESPACE, key, org=SERVER_SCOPE) is not None
                and self.storage.kv_get(USED_NAMESPACE, key, org=SERVER_SCOPE) is None)

    def claim(self, token: str) -> bool:
        """Use the link up; True for exactly one caller of a valid link."""
        if not self.valid(token):
            return False
        key = digest(token)
        if not self.storage.kv_add(USED_NAMESPACE, key, {"at": utcnow().isoformat()}, org=SERVER_SCOPE,
                                   expires_at=utcnow() + VALID_FOR):
            return False
        self.storage.kv_delete(NAMESPACE, key, org=SERVER_SCOPE)
        return True
