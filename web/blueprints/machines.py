"""Machine keys, for operators: `DELETE /api/fleet/<machine_id>/key` (ACTION_TOKEN) unbinds the
key a machine's agent made, after its workstation was reinstalled; the next key it sends binds.
"""

from __future__ import annotations

import re

from flask import Blueprint

from dashfleet_core.models import MACHINE_ID_PATTERN

from ..app import get_fleet
from ..auth import ApiError, require_token

bp = Blueprint("machines", __name__)

_MACHINE = re.compile(MACHINE_ID_PATTERN)
ACTOR = "action-token"


@bp.delete("/api/fleet/<machine_id>/key")
def reset_key(machine_id: str):
    fleet = get_fleet()
    require_token(fleet.settings.actions.token, name="ACTION_TOKEN")
    if not _MACHINE.match(machine_id):
        raise ApiError(400, f"{machine_id[:64]!r} is not a machine id: use the id the machine reports with")
    if not fleet.machine_keys.reset(machine_id, by=ACTOR):
        raise ApiError(404, f"machine {machine_id!r} has no machine key bound: there is nothing to reset "
                            "(its next report with a key binds that key)")
    return "", 204
