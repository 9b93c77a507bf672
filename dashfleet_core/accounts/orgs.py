"""Organisations: an id (a slug made from the name), a display name, when it was created.

The `default` organisation always exists: the data of a server that had no organisations (and the
seed's FLEET_TOKEN agents) belongs to it, so upgrading a data folder keeps every machine where it was.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from ..models import DEFAULT_ORG, utcnow
from ..text import visible
from .scope import SERVER_SCOPE, AccountError

NAMESPACE = "orgs"
ORG_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
MAX_NAME = 100
_ORG_ID = re.compile(ORG_ID_PATTERN)


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    created_at: datetime | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name,
                "created_at": self.created_at.isoformat() if self.created_at else None}


DEFAULT = Org(DEFAULT_ORG, "Default")


def slug(name: str) -> str:
    """`"Acme Ltd."` -> `"acme-ltd"`: ASCII letters and digits, dashes between words."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_name.lower())
    out = "-".join(words)[:40].strip("-")
    return out


def valid_org_id(org: str) -> bool:
    return bool(_ORG_ID.match(org))


class Orgs:
    def __init__(self, storage) -> None:
        self.storage = storage

    def create(self, name: object) -> Org:
        """A new organisation; AccountError 422 for a name that cannot be one, 409 if its id is taken."""
        if not isinstance(name, str) or not name.strip():
            raise AccountError(422, 'give the organisation a name: {"name": "Acme"}', fields=["name"])
        clean = " ".join(visible(name).split())
        if len(clean) > MAX_NAME:
            raise AccountError(422, f"the name is {len(clean)} characters; keep it to {MAX_NAME}", fields=["name"])
        org_id = slug(clean)
        if not org_id:
            raise AccountError(422, f"{clean[:40]!r} has no letter or digit to make an id from; use a name "
                                    "with some (A-Z, 0-9)", fields=["name"])
        if org_id == DEFAULT_ORG or not self.storage.kv_add(
                NAMESPACE, org_id, {"name": clean, "created_at": utcnow().isoformat()}, org=SERVER_SCOPE):
            raise AccountError(409, f"an organisation with the id {org_id!r} exists already; choose another name")
        return Org(org_id, clean, self.get(org_id).created_at)

    def get(self, org_id: str) -> Org | None:
        if org_id == DEFAULT_ORG:
            return DEFAULT
        if not valid_org_id(org_id):
            return None
        value = self.storage.kv_get(NAMESPACE, org_id, org=SERVER_SCOPE)
        if value is None:
            return None
        return Org(org_id, value["name"], datetime.fromisoformat(value["created_at"]))

    def exists(self, org_id: str) -> bool:
        return self.get(org_id) is not None

    def list(self) -> list[Org]:
        stored = self.storage.kv_list(NAMESPACE, org=SERVER_SCOPE)
        orgs = [Org(k, v["name"], datetime.fromisoformat(v["created_at"])) for k, v in stored.items()]
        return [DEFAULT] + sorted(orgs, key=lambda o: o.id)

    def require(self, org_id: str) -> Org:
        org = self.get(org_id)
        if org is None:
            raise AccountError(404, f"no organisation {org_id[:64]!r}; see dashfleet org list")
        return org
