"""The second factor: TOTP (RFC 6238, pyotp) with single-use recovery codes.

Enrolment is two steps so a user cannot lock themselves out: `begin` stores a pending secret and
returns what the authenticator app needs (an otpauth URI and its QR code as SVG, drawn by segno);
`confirm` checks a code from the app, makes the secret active and hands out ten recovery codes,
shown once and stored only as digests.

A code is accepted once: the time step it was used in is claimed with the storage's atomic
`kv_add`, so a code seen over someone's shoulder (or replayed by a second worker) is refused. A
recovery code is claimed the same way and then removed from the user.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any

from ..models import utcnow
from .scope import SERVER_SCOPE, AccountError, digest

ISSUER = "DashFleet"
USED_NAMESPACE = "totp_used"
RECOVERY_COUNT = 10
STEP_SECONDS = 30
WINDOW = 1  # accept the step before and after: phone clocks drift


def _pyotp():
    import pyotp  # loaded when a second factor is used, not by every worker at start

    return pyotp


def new_secret() -> str:
    return _pyotp().random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return _pyotp().TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as a standalone SVG document (no script, safe to show as an <img> data
    URI). Standalone means with the SVG namespace: an image without it is not drawn at all, which is
    why segno's `svg_inline` (made for embedding in HTML) does not do here."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, dark="#000", light="#fff", xmldecl=False,
                                    svgns=True, nl=False)
    return out.getvalue().decode("utf-8")


def new_recovery_codes() -> list[str]:
    """Ten codes such as `k3f9-2mqd-x7pa`: easy to type, 60 random bits each."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return ["-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
            for _ in range(RECOVERY_COUNT)]


def normalise_code(code: object) -> str:
    return "".join(str(code).split()).lower() if isinstance(code, str) else ""


class SecondFactor:
    """Enrol, check and remove a user's TOTP; the state lives in the user record (`User.totp`)."""

    def __init__(self, storage, users) -> None:
        self.storage = storage
        self.users = users

    def begin(self, username: str) -> dict[str, str]:
        """Start (or restart) enrolment: a pending secret, its URI and QR code."""
        user = self.users.require(username)
        state = dict(user.totp or {})
        if state.get("secret"):
            raise AccountError(409, "a second factor is already set up; remove it first to enrol a new one")
        secret = new_secret()
        state["pending"] = secret
        self.users.set_totp(user.username, state)
        uri = provisioning_uri(secret, user.username)
        return {"secret": secret, "otpauth_uri": uri, "qr_svg": qr_svg(uri)}

    def confirm(self, username: str, code: object) -> list[str]:
        """Activate the pending secret with a code from the app; returns the recovery codes (once)."""
        user = self.users.require(username)
        state = dict(user.totp or {})
        pending = state.get("pending")
        if not pending:
            raise AccountError(409, "no enrolment is in progress; start one first")
        if not self._code_ok(user.username, pending, normalise_code(code)):
            raise AccountError(422, "that code is not the one the app shows now; check the phone's clock "
                                    "and type the current 6 digits", fields=["code"])
        codes = new_recovery_codes()
        self.users.set_totp(user.username, {"secret": pending, "recovery": [digest(c) for c in codes],
                                            "enrolled_at": utcnow().isoformat()})
        return codes

    def enabled(self, user) -> bool:
        return bool(user.totp and user.totp.get("secret"))

    def verify(self, username: str, code: object) -> str | None:
        """Check a login's second factor: "totp" or "recovery" when accepted (a recovery code is then
        used up), None when refused."""
        user = self.users.require(username)
        state: dict[str, Any] = dict(user.totp or {})
        secret = state.get("secret")
        given = normalise_code(code)
        if not secret or not given:
            return None
        if given.isdigit() and len(given) == 6:
            return "totp" if self._code_ok(user.username, secret, given) else None
        wanted = digest(given)
        for stored in state.get("recovery", []):
            if hmac.compare_digest(stored, wanted):
                if not self.storage.kv_add(USED_NAMESPACE, f"recovery:{stored}", {"user": user.username},
                                           org=SERVER_SCOPE):
                    return None  # used by a concurrent login
                fresh = self.users.require(user.username)
                remaining = [d for d in (fresh.totp or {}).get("recovery", []) if d != stored]
                self.users.set_totp(user.username, {**(fresh.totp or {}), "recovery": remaining})
                return "recovery"
        return None

    def remaining_recovery_codes(self, user) -> int:
        return len((user.totp or {}).get("recovery", []))

    def disable(self, username: str) -> None:
        self.users.set_totp(self.users.require(username).username, None)

    def _code_ok(self, username: str, secret: str, code: str) -> bool:
        """A 6-digit code of the current step (±1), each step accepted once per user."""
        if not (code.isdigit() and len(code) == 6):
            return False
        totp = _pyotp().TOTP(secret)
        now = utcnow()
        for offset in range(-WINDOW, WINDOW + 1):
            at = now + timedelta(seconds=offset * STEP_SECONDS)
            if hmac.compare_digest(totp.at(at), code):
                step = totp.timecode(at)
                return self.storage.kv_add(USED_NAMESPACE, f"{username}:{step}", {"at": now.isoformat()},
                                           org=SERVER_SCOPE, expires_at=now + timedelta(minutes=5))
        return False
