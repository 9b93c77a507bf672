"""Pydantic models of the session and organisation-users answers (web/blueprints/session_api.py,
web/blueprints/org_users.py); they generate their part of `/api/openapi.json`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "operator", "admin"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionOrgEntry(_Out):
    id: str
    name: str
    role: Role = Field(description="the caller's role there (a server admin or the ACTION_TOKEN: admin)")


class SessionDocument(_Out):
    """Who the caller is, for the pages: name, organisations, role here, the CSRF token."""

    user: str | None = Field(description="the logged-in user; null for a key, a token or public reading")
    org: str = Field(description="the organisation this request is about")
    orgs: list[SessionOrgEntry] = Field(description="the organisations the caller may switch to")
    server_admin: bool
    csrf_token: str | None = Field(description="send it as X-CSRF-Token with every change made by this login")
    totp: bool = Field(description="the user has a second factor")
    role: Role = Field(description="the caller's role in `org`")


class TotpBegun(_Out):
    secret: str = Field(description="base32, for typing into the app by hand")
    otpauth_uri: str
    qr_svg: str = Field(description="the otpauth URI as a QR code, an SVG document")


class RecoveryCodes(_Out):
    recovery_codes: list[str] = Field(description="ten single-use codes, shown this once")


class OrgUser(_Out):
    username: str
    role: Role | None = Field(description="the role in the organisation of the path")
    server_admin: bool
    totp: bool
    created_at: str | None


class OrgUserList(_Out):
    users: list[OrgUser]


class OrgUserOne(_Out):
    user: OrgUser


MODELS = [(SessionDocument, "serialization"), (TotpBegun, "serialization"), (RecoveryCodes, "serialization"),
          (OrgUserList, "serialization"), (OrgUserOne, "serialization")]
