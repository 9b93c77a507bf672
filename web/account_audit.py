"""Audit rows for logins and account changes, in the organisation the change is about (not the
organisation the caller's request happens to be in): a login is recorded in the user's first
organisation, a change to an organisation's users in that organisation. Never a password or a code."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from dashfleet_core.models import DEFAULT_ORG

from .audit import Attempt, audited
from .audit import write_row as record  # noqa: F401  (the login pages' name for one row)

ANONYMOUS = "anonymous"


def first_org(user) -> str:
    """The organisation a user's logins are recorded in."""
    return sorted(user.roles)[0] if user is not None and user.roles else DEFAULT_ORG


@contextmanager
def audited_in(org: str, action: str, actor: str = ANONYMOUS) -> Iterator[Attempt]:
    """`web.audit.audited` in organisation `org` (or the one the handler sets on the attempt: the
    organisation of the change, once the caller is known to be part of it)."""
    with audited(action, org=org, actor=actor) as attempt:
        yield attempt
