"""Dashboard users: a scrypt password hash, a role in each organisation they belong to, and
optionally server admin (every organisation, and organisations themselves).

A user's `epoch` is part of every session made for them; raising it (password change, removal,
`revoke_sessions`) ends all their sessions at once on every worker, because each request reads
the user record and compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..models import utcnow
from .passwords import hash_password, password_problem, verify_password
from .principal import ROLES
from .scope import SERVER_SCOPE, AccountError

NAMESPACE = "users"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    roles: dict[str, str] = field(default_factory=dict)  # org -> role
    server_admin: bool = False
    epoch: int = 0
    created_at: datetime | None = None
    totp: dict[str, Any] | None = None  # {"secret", "recovery": [digests]} once enrolled

    def to_json(self) -> dict:
        return {"username": self.username, "roles": dict(self.roles), "server_admin": self.server_admin,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "totp": bool(self.totp)}

    def record(self) -> dict[str, Any]:
        return {"password_hash": self.password_hash, "roles": self.roles, "server_admin": self.server_admin,
                "epoch": self.epoch, "created_at": (self.created_at or utcnow()).isoformat(), "totp": self.totp}


def normalise_username(username: object) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username.strip().lower()):
        raise AccountError(422, "a username is 1-64 characters: letters, digits, and . _ @ - "
                                "(starting with a letter or digit)", fields=["username"])
    return username.strip().lower()


def check_role(role: object) -> str:
    if role not in ROLES:
        raise AccountError(422, f"role must be one of {', '.join(ROLES)}", fields=["role"])
    return role  # type: ignore[return-value]


class Users:
    def __init__(self, storage, orgs) -> None:
        self.storage = storage
        self.orgs = orgs

    def get(self, username: str) -> User | None:
        try:
            name = normalise_username(username)
        except AccountError:
            return None
        record = self.storage.kv_get(NAMESPACE, name, org=SERVER_SCOPE)
        return _user(name, record) if record else None

    def require(self, username: str) -> User:
        user = self.get(username)
        if user is None:
            raise AccountError(404, f"no user {str(username)[:64]!r}; see dashfleet user list")
        return user

    def any(self) -> bool:
        return bool(self.storage.kv_list(NAMESPACE, org=SERVER_SCOPE))

    def list(self, org: str | None = None) -> list[User]:
        users = [_user(k, v) for k, v in self.storage.kv_list(NAMESPACE, org=SERVER_SCOPE).items()]
        if org is not None:
            users = [u for u in users if org in u.roles]
        return sorted(users, key=lambda u: u.username)

    def add(self, username: object, password: object, *, org: str | None = None, role: str | None = None,
            server_admin: bool = False) -> User:
        """A new user; 409 if the name is taken, 422 for a weak password or a bad name or role."""
        name = normalise_username(username)
        problem = password_problem(password, name)
        if problem:
            raise AccountError(422, problem, fields=["password"])
        roles = {}
        if org is not None:
            self.orgs.require(org)
            roles[org] = check_role(role or "viewer")
        user = User(name, hash_password(password), roles, server_admin, 0, utcnow())  # type: ignore[arg-type]
        if not self.storage.kv_add(NAMESPACE, name, user.record(), org=SERVER_SCOPE):
            raise AccountError(409, f"the username {name!r} is taken; choose another or change that user's role")
        return user

    def check_password(self, username: str, password: str) -> User | None:
        user = self.get(username)
        if user is None or not isinstance(password, str) or not verify_password(password, user.password_hash):
            return None
        return user

    def _save(self, user: User) -> User:
        self.storage.kv_put(NAMESPACE, user.username, user.record(), org=SERVER_SCOPE)
        return user

    def set_password(self, username: str, password: object) -> User:
        user = self.require(username)
        problem = password_problem(password, user.username)
        if problem:
            raise AccountError(422, problem, fields=["password"])
        return self._save(replace(user, password_hash=hash_password(password), epoch=user.epoch + 1))  # type: ignore[arg-type]

    def set_role(self, username: str, org: str, role: str | None) -> User:
        """Give the user `role` in `org` (None: take them out of it)."""
        user = self.require(username)
        self.orgs.require(org)
        roles = dict(user.roles)
        if role is None:
            roles.pop(org, None)
        else:
            roles[org] = check_role(role)
        return self._save(replace(user, roles=roles, epoch=user.epoch + 1))

    def set_server_admin(self, username: str, server_admin: bool) -> User:
        user = self.require(username)
        return self._save(replace(user, server_admin=server_admin, epoch=user.epoch + 1))

    def set_totp(self, username: str, totp: dict[str, Any] | None) -> User:
        user = self.require(username)
        return self._save(replace(user, totp=totp))

    def revoke_sessions(self, username: str) -> User:
        user = self.require(username)
        return self._save(replace(user, epoch=user.epoch + 1))

    def remove(self, username: str) -> User:
        user = self.require(username)
        self.storage.kv_delete(NAMESPACE, user.username, org=SERVER_SCOPE)
        return user


def _user(name: str, record: dict[str, Any]) -> User:
    created = record.get("created_at")
    return User(name, record["password_hash"], dict(record.get("roles") or {}), bool(record.get("server_admin")),
                int(record.get("epoch", 0)), datetime.fromisoformat(created) if created else None,
                record.get("totp"))
