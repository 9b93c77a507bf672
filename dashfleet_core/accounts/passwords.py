"""Passwords: scrypt hashes (memory-hard, in the standard library) and the policy a new one meets.

A hash reads `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`, so the cost can be raised later and old
hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache
from importlib import resources

N, R, P = 2 ** 14, 8, 1  # 16 MiB and ~50 ms per hash on these machines
MIN_LENGTH = 12
MAX_LENGTH = 1024


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, maxmem=64 * 1024 * 1024)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${N}${R}${P}${b64(salt)}${b64(derived)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                 p=int(p), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def dummy_verify(password: str) -> None:
    """Spend what a real check costs, for an unknown user (no timing oracle on usernames)."""
    verify_password(password, _dummy_hash())


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def password_problem(password: object, username: str = "") -> str | None:
    """Why this password cannot be used, or None."""
    if not isinstance(password, str):
        return "the password must be text"
    if len(password) < MIN_LENGTH:
        return f"the password has {len(password)} characters; use at least {MIN_LENGTH} (a few words make a good one)"
    if len(password) > MAX_LENGTH:
        return f"the password is longer than {MAX_LENGTH} characters"
    lowered = password.lower()
    if username and lowered == username.lower():
        return "the password is the username; choose one nobody could guess"
    if lowered in common_passwords():
        return "this password is on the list of commonly used ones; choose another"
    return None
