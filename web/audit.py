"""One audit row for every attempt at a privileged web call that is not an action (maintenance
windows), whatever happens: refused, invalid, done, or crashed. Actions are audited by
`dashfleet_core.actions.ActionService` itself.

The row's actor is the credential that was checked ("action-token", "key:<id>", "user:<name>"),
or "unauthenticated" for an attempt refused before its credential was accepted; never a name the
client chose. The row belongs to the request's organisation; the client's address is kept in the
details.
A call about another organisation than the request's (an operator managing one organisation's keys)
sets `attempt.org`, so the row lands in the organisation it concerns.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from dashfleet_core.models import AuditEntry

from .access import current_org
from .app import get_fleet
from .auth import ApiError
from .client_address import client_address

log = logging.getLogger(__name__)

UNAUTHENTICATED = "unauthenticated"


@dataclass
class Attempt:
    """What the handler learns as it goes: who (once the credential is accepted) and with what."""

    action: str
    actor: str = UNAUTHENTICATED
    params: dict[str, Any] = field(default_factory=dict)
    org: str | None = None  # the organisation acted on, when the body names it (else the request's)


def write_row(org: str, actor: str, action: str, outcome: str, params: dict[str, Any] | None = None,
              **details: Any) -> None:
    """Store one audit row with the client's address; a failure to store it is logged, never raised
    (the answer stands; the log says the row is missing)."""
    try:
        get_fleet().storage.add_audit(AuditEntry(org=org, actor=actor, action=action, params=params or {},
                                                 outcome=outcome, details={"client": client_address(), **details}))
    except Exception:
        log.exception("could not write the audit row of a %s attempt by %s", action, actor)


@contextmanager
def audited(action: str, *, org: str | None = None, actor: str = UNAUTHENTICATED) -> Iterator[Attempt]:
    """Run the body of a privileged call; exactly one audit row is written when it ends, in `org`
    (or the one the handler sets on the attempt; else the request's organisation)."""
    attempt = Attempt(action, actor=actor, org=org)
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
        write_row(attempt.org or current_org(), attempt.actor, action, outcome, attempt.params, **details)
