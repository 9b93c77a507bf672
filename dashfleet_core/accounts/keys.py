"""API keys of an organisation: `dfk_<id>_<secret>`, 256 random bits behind a public id.

Only the SHA-256 of the whole key is stored, under its id (`SERVER_SCOPE`), so a request finds
its key with one read and compares digests in constant time. Revoking deletes the record: the
next request that presents the key, on any worker or server, finds nothing. When a key was last
used is written apart from the record (at most once a minute per key and process), so that write
can never bring a revoked key back.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..models import utcnow
from ..text import visible
from .principal import SCOPES
from .scope import SERVER_SCOPE, AccountError, digest

PREFIX = "dfk_"
NAMESPACE = "api_keys"
USED_NAMESPACE = "api_keys_used"
USED_EVERY_SECONDS = 60.0
MAX_NAME = 100
_KEY = re.compile(r"^dfk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_DURATION = re.compile(r"^(\d{1,5})([dhm])$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    org: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    created_by: str = ""
    last_used_at: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or utcnow()) >= self.expires_at

    def to_json(self) -> dict:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {"id": self.id, "org": self.org, "name": self.name, "scopes": list(self.scopes),
                "created_at": iso(self.created_at), "last_used_at": iso(self.last_used_at),
                "expires_at": iso(self.expires_at)}


def parse_expiry(value: object, now: datetime | None = None) -> datetime | None:
    """`None`, an ISO-8601 time in the future, or a duration such as `90d`, `12h`, `30m`."""
    if value is None or value == "":
        return None
    now = now or utcnow()
    if isinstance(value, str) and (m := _DURATION.match(value.strip())):
        amount, unit = int(m.group(1)), m.group(2)
        return now + timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            at = None
        if at is not None:
            at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
            if at <= now:
                raise AccountError(422, f"expires_at {value[:40]!r} is in the past; give a future time",
                                   fields=["expires_at"])
            return at.astimezone(timezone.utc)
    raise AccountError(422, f"expires_at {str(value)[:40]!r} is not a time: give ISO-8601 "
                            "(2027-01-31T00:00:00Z) or a duration such as 90d", fields=["expires_at"])


def check_scopes(scopes: object) -> tuple[str, ...]:
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise AccountError(422, f"scopes must be a non-empty list of {', '.join(SCOPES)}", fields=["scopes"])
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise AccountError(422, f"unknown scope {unknown[0][:40]!r}: use {', '.join(SCOPES)}", fields=["scopes"])
    return tuple(s for s in SCOPES if s in scopes)


def key_id_of(secret: str) -> str | None:
    """The public id of a well-formed key, else None."""
    m = _KEY.match(secret)
    return m.group(1) if m else None


def looks_like_key(secret: str) -> bool:
    return secret.startswith(PREFIX)


class ApiKeys:
    def __init__(self, storage, orgs) -> None:
        self.storage = storage
        self.orgs = orgs
        self._used: dict[str, float] = {}
        self._used_lock = threading.Lock()

    def create(self, org: str, *, name: object = "", scopes: object, expires_at: object = None,
               by: str = "") -> tuple[ApiKey, str]:
        """A new key; returns it and its secret, which is never shown again."""
        self.orgs.require(org)
        if not isinstance(name, str):
            raise AccountError(422, "name must be text", fields=["name"])
        name = " ".join(visible(name).split())[:MAX_NAME]
        scope_list = check_scopes(scopes)
        expiry = parse_expiry(expires_at)
        while True:
            key_id = secrets.token_hex(6)
            secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            now = utcnow()
            record = {"org": org, "name": name, "scopes": list(scope_list), "hash": digest(secret),
                      "created_at": now.isoformat(), "created_by": by,
                      "expires_at": expiry.isoformat() if expiry else None}
            if self.storage.kv_add(NAMESPACE, key_id, record, org=SERVER_SCOPE):
                return _key(key_id, record), secret

    def verify(self, secret: str) -> ApiKey | None:
        """The live key this secret is, or None (malformed, unknown, revoked, expired)."""
        key_id = key_id_of(secret)
        if key_id is None:
            return None
        record = self.storage.kv_get(NAMESPACE, key_id, org=SERVER_SCOPE)
        if record is None or not hmac.compare_digest(record["hash"], digest(secret)):
            return None
        key = _key(key_id, record)
        if key.expired():
            return None
        self._note_use(key_id)
        return key

    def _note_use(self, key_id: str) -> None:
        now = time.monotonic()
        with self._used_lock:
            if now - self._used.get(key_id, -USED_EVERY_SECONDS) < USED_EVERY_SECONDS:
                return
            self._used[key_id] = now
        try:
            self.storage.kv_put(USED_NAMESPACE, key_id, {"at": utcnow().isoformat()}, org=SERVER_SCOPE)
        except Exception:  # a missed "last used" must not refuse the request
            pass

    def get(self, key_id: str) -> ApiKey | None:
        record = self.storage.kv_get(NAMESPACE, key_id, org=SERVER_SCOPE) if re.fullmatch(r"[0-9a-f]{12}", key_id) else None
        return _key(key_id, record) if record else None

    def list(self, org: str) -> list[ApiKey]:
        used = self.storage.kv_list(USED_NAMESPACE, org=SERVER_SCOPE)
        keys = []
        for key_id, record in self.storage.kv_list(NAMESPACE, org=SERVER_SCOPE).items():
            if record["org"] != org:
                continue
            last = used.get(key_id, {}).get("at")
            keys.append(_key(key_id, record, datetime.fromisoformat(last) if last else None))
        return sorted(keys, key=lambda k: k.created_at)

    def revoke(self, key_id: str, *, org: str | None = None) -> ApiKey:
        """Delete a key (of `org`, when given); AccountError 404 if there is none."""
        key = self.get(key_id)
        if key is None or (org is not None and key.org != org):
            raise AccountError(404, f"no key {key_id[:40]!r}" + (f" in organisation {org!r}" if org else "")
                               + "; list the keys to see their ids")
        self.storage.kv_delete(NAMESPACE, key_id, org=SERVER_SCOPE)
        self.storage.kv_delete(USED_NAMESPACE, key_id, org=SERVER_SCOPE)
        return key


def _key(key_id: str, record: dict, last_used: datetime | None = None) -> ApiKey:
    expires = record.get("expires_at")
    return ApiKey(id=key_id, org=record["org"], name=record.get("name", ""), scopes=tuple(record["scopes"]),
                  created_at=datetime.fromisoformat(record["created_at"]),
                  expires_at=datetime.fromisoformat(expires) if expires else None,
                  created_by=record.get("created_by", ""), last_used_at=last_used)
