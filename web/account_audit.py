"""Audit rows for logins and account changes, in the organisation the change is about (not the
organisation the caller's request happens to be in): a login is recorded in the user's first
organisation, a change to an organisation's users in that organisation. Never a password or a code."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from dashfleet_core.models import DEFAULT_ORG, AuditEntry

from .app import get_fleet
from .audit import Attempt
from .auth import ApiError
from .client_address import client_address

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


def first_org(user) -> str:
    """The organisation a user's logins are recorded in."""
    return sorted(user.roles)[0] if user is not None and user.roles else DEFAULT_ORG


def record(org: str, actor: str, action: str, outcome: str, params: dict[str, Any] | None = None,
           **details: Any) -> None:
    try:
        get_fleet().storage.add_audit(AuditEntry(org=org, actor=actor, action=action, params=params or {},
                                                 outcome=outcome, details={"client": client_address(), **details}))
    except Exception:  # the answer stands; the log says the row is missing
        log.exception("could not write the audit row of a %s attempt by %s", action, actor)


@dataclass
class OrgAttempt(Attempt):
    """An attempt whose organisation the handler sets once it knows the caller may see it."""

    org: str = DEFAULT_ORG


@contextmanager
def audited_in(org: str, action: str, actor: str = ANONYMOUS) -> Iterator[OrgAttempt]:
    """Like `web.audit.audited`, in organisation `org` (or the one the handler sets on the attempt:
    the organisation of the change, once the caller is known to be part of it)."""
    attempt = OrgAttempt(action, actor=actor, org=org)
    outcome, details = "error", {}
    try:
        yield attempt
        outcome = "ok"
    except ApiError as exc:
        outcome, details = "refused", {"status": exc.status, "error": exc.message}
        raise
    except Exception as exc:
        details = {"error": f"the attempt failed on the server ({type(exc).__name__})"}
        raise
    finally:
        record(attempt.org, attempt.actor, action, outcome, attempt.params, **details)
