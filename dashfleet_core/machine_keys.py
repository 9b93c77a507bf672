"""Machine keys: a secret each agent makes for itself and sends with every report.

The shared fleet token says "one of our agents"; it cannot say which. So the first time the server
sees a key for `(org, machine_id)` it binds the key's hash to that machine, and from then on a report
for the machine without that key is refused. Binding on first sight (not on a confirmed answer)
means a lost answer can never lock the agent out: it simply sends the same key again. An operator
unbinds a machine whose workstation was reinstalled (`reset`), and its next key binds anew.

A machine that never sent a key (the seed's agents, curl) keeps reporting with the token alone; a
holder of the token can still claim such an id first (docs/security.md says so).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Iterable

from .models import DEFAULT_ORG, AuditEntry, Event, utcnow
from .storage import Storage

HEADER = "X-DashFleet-Machine-Key"
NAMESPACE = "machine_key"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
RESET_HINT = ("if the workstation was reinstalled, an operator resets its key with "
              "`dashfleet machine reset-key {machine_id}` or DELETE /api/fleet/{machine_id}/key")


class MachineKeyError(Exception):
    """A report's machine key is refused (`status` 403) or malformed (400); the message says what
    to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def key_hash(key: str) -> str:
    """What storage keeps of a key. A key is 256 random bits, so a fast hash suffices: there is
    nothing to guess that a slow hash would protect."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def check_format(key: str | None) -> str | None:
    """The key as sent, or None when none was sent; a malformed one is a 400."""
    if key is None:
        return None
    if not KEY_PATTERN.match(key):
        raise MachineKeyError(400, f"the {HEADER} header must be 32 to 128 characters of A-Z a-z 0-9 - _ "
                                   "(the agent makes one in its state folder); send it as the agent wrote it")
    return key


class MachineKeys:
    """Bind, check and reset machine keys, kept in storage (every worker and server sees them)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def verify(self, machine_ids: Iterable[str], key: str | None, *, org: str = DEFAULT_ORG) -> set[str]:
        """Check `key` for every machine of a request, binding it to machines that have none.

        Returns the machines whose key was already bound and matched: their reports are trusted to
        carry an honest `seq`. Raises `MachineKeyError` (403) when a machine is bound to another key
        or the request carries none for a bound machine: nothing of the request is stored then."""
        key = check_format(key)
        given = key_hash(key) if key is not None else None
        ids = list(dict.fromkeys(machine_ids))
        bound = self.storage.kv_get_many(NAMESPACE, ids, org=org)
        verified: set[str] = set()
        for machine_id in ids:
            entry = bound.get(machine_id)
            if entry is None and given is not None:
                if self.storage.kv_add(NAMESPACE, machine_id, {"hash": given, "bound_at": utcnow().isoformat()},
                                       org=org):
                    continue  # bound by this request: its reports follow arrival this once
                entry = self.storage.kv_get(NAMESPACE, machine_id, org=org)  # bound at this instant
            if entry is None:
                continue  # a machine without a key: the fleet token alone speaks for it
            if given is None:
                raise MachineKeyError(403, f"machine {machine_id!r} is bound to a machine key and this request "
                                           f"carries none ({HEADER}); " + RESET_HINT.format(machine_id=machine_id))
            if not hmac.compare_digest(str(entry.get("hash", "")), given):
                raise MachineKeyError(403, f"machine {machine_id!r} is bound to another machine key; "
                                           + RESET_HINT.format(machine_id=machine_id))
            verified.add(machine_id)
        return verified

    def is_bound(self, machine_id: str, *, org: str = DEFAULT_ORG) -> bool:
        return self.storage.kv_get(NAMESPACE, machine_id, org=org) is not None

    def reset(self, machine_id: str, *, by: str, org: str = DEFAULT_ORG) -> bool:
        """Unbind a machine's key; True if one was bound. The next key the machine sends binds.
        Every attempt is audited (`by`: the credential that asked), a reset also an event."""
        done = self.storage.kv_delete(NAMESPACE, machine_id, org=org)
        self.storage.add_audit(AuditEntry(org=org, actor=by, action="machine.reset_key",
                                          params={"machine_id": machine_id},
                                          outcome="reset" if done else "no_key"))
        if done:
            self.storage.add_event(Event(org=org, machine_id=machine_id, kind="machine_key_reset",
                                         message=f"machine key reset by {by}: the next key this machine "
                                                 "sends is bound to it", details={"by": by}))
        return done
