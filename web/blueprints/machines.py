"""Machine keys, for operators: `DELETE /api/fleet/<machine_id>/key` (scope `operate`) unbinds the
key a machine's agent made, after its workstation was reinstalled; the next key it sends binds.
"""

from __future__ import annotations

import re

from flask import Blueprint

from dashfleet_core.models import MACHINE_ID_PATTERN

from ..app import get_fleet
from ..access import OPERATE, principal, requires
from ..auth import ApiError

bp = Blueprint("machines", __name__)

_MACHINE = re.compile(MACHINE_ID_PATTERN)


@bp.delete("/api/fleet/<machine_id>/key")
@requires(OPERATE)
def reset_key(machine_id: str):
    fleet = get_fleet()
    who = principal()
    if not _MACHINE.match(machine_id):
        raise ApiError(400, f"{machine_id[:64]!r} is not a machine id: use the id the machine reports with")
    if not fleet.machine_keys.reset(machine_id, by=who.actor, org=who.org):
        raise ApiError(404, f"machine {machine_id!r} has no machine key bound: there is nothing to reset "
                            "(its next report with a key binds that key)")
    return "", 204
