"""Tenancy and credentials: organisations, API keys, users, sessions and one-time agent links.

Everything here lives in the storage backend's small key-value store (`kv_*`), so every worker and
every server sharing a database sees the same organisations, keys and sessions at once: a revoked
key or a removed user is refused by the very next request, wherever it lands. Records that are not
one organisation's (organisations themselves, keys looked up by id, users, sessions, links) are
kept under the reserved scope `SERVER_SCOPE`, which no organisation id can take.

Secrets are never stored: keys, session ids, link tokens and recovery codes are kept as SHA-256
digests (they are 256 random bits, so a fast hash is enough); passwords as scrypt hashes.

`Accounts(storage, settings)` bundles the services a host needs; `Principal` is who a request (or
a CLI command) acts as, and what it may do in which organisation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .principal import ROLES, SCOPES, Principal, scopes_of_role
from .scope import SERVER_SCOPE, AccountError

if TYPE_CHECKING:
    from ..config import Settings
    from ..storage import Storage

__all__ = ["Accounts", "AccountError", "Principal", "ROLES", "SCOPES", "SERVER_SCOPE", "scopes_of_role"]


class Accounts:
    """The account services over one storage backend."""

    def __init__(self, storage: "Storage", settings: "Settings") -> None:
        from .keys import ApiKeys
        from .links import AgentLinks
        from .orgs import Orgs
        from .sessions import Sessions
        from .setup import SetupLinks
        from .totp import SecondFactor
        from .users import Users

        self.storage = storage
        self.settings = settings
        self.orgs = Orgs(storage)
        self.keys = ApiKeys(storage, self.orgs)
        self.users = Users(storage, self.orgs)
        self.sessions = Sessions(storage, settings.server.session_idle_minutes)
        self.second_factor = SecondFactor(storage, self.users)
        self.setup_links = SetupLinks(storage, self.users)
        self.links = AgentLinks(storage, settings, self.keys)
