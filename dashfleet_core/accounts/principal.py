"""Who a request acts as, and what it may do.

Scopes, from least to most: `report` (agents deliver reports), `read` (pages and read APIs),
`operate` (maintenance windows, actions on the organisation's machines; implies read), `admin`
(the organisation's keys, users and agent links; implies every other scope). Dashboard roles map
onto them: viewer = read, operator = read + operate, admin = read + operate + admin.

A server-wide principal (the ACTION_TOKEN holder, a server admin) acts in every organisation and
may create organisations; any other acts only in its own ones. Requests of a principal are
always about one organisation at a time, `org`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SCOPES = ("report", "read", "operate", "admin")
SERVER_SCOPES = frozenset({"read", "operate", "admin"})  # the operator reads and acts; agents report
ROLES = ("viewer", "operator", "admin")

_IMPLIED = {
    "report": frozenset({"report"}),
    "read": frozenset({"read"}),
    "operate": frozenset({"read", "operate"}),
    "admin": frozenset(SCOPES),
}
_ROLE_SCOPES = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "operate"}),
    "admin": frozenset({"read", "operate", "admin"}),
}


def expand_scopes(scopes) -> frozenset[str]:
    """Every scope the given ones grant (`admin` grants all, `operate` grants `read`)."""
    granted: set[str] = set()
    for scope in scopes:
        granted |= _IMPLIED[scope]
    return frozenset(granted)


def scopes_of_role(role: str) -> frozenset[str]:
    return _ROLE_SCOPES[role]


@dataclass(frozen=True)
class Principal:
    """`actor` names the credential in audit rows ("key:<id>", "user:<name>", "action-token",
    "fleet-token", "public"); `grants` maps each organisation it may act in to its scopes
    (`server=True`: every organisation, every scope); `org` is the one this request is about."""

    actor: str
    org: str
    grants: dict[str, frozenset[str]] = field(default_factory=dict)
    server: bool = False
    user: str | None = None
    session_id: str | None = None  # the stored digest of the session, when a cookie was used
    csrf_token: str | None = None
    key_id: str | None = None

    def scopes(self, org: str | None = None) -> frozenset[str]:
        org = self.org if org is None else org
        if self.server:
            return SERVER_SCOPES
        return self.grants.get(org, frozenset())

    def can(self, scope: str, org: str | None = None) -> bool:
        return scope in self.scopes(org)

    def member_of(self, org: str) -> bool:
        return self.server or org in self.grants

    def orgs(self) -> list[str]:
        """The organisations this principal may switch to (all of them for a server principal:
        the caller lists them from storage)."""
        return sorted(self.grants)

    def in_org(self, org: str) -> "Principal":
        return replace(self, org=org)
