"""Alerting API: a machine's events, and maintenance windows (which need scope `operate`).

- `GET /api/fleet/<machine_id>/events?limit=` -> `{"events": [...]}`, newest first (with the
  fleet-wide maintenance events, machine id `*`).
- `POST /api/fleet/<machine_id>/maintenance` `{"until": ISO-8601 | "minutes": N, "reason", "by"}`
  silences a machine's alerts until then (at most 366 days); `machine_id` `*` (or `POST
  /api/maintenance`) means the organisation's whole fleet. A machine that has not reported to the
  caller's organisation (another organisation's included) is a 404. `DELETE` on the same paths ends the window now. Every
  attempt leaves one audit row; who acted is the credential ("action-token", "key:<id>",
  "user:<name>"), and a client's `by` is kept only as a note.
- `GET /api/maintenance` -> `{"windows": {...}}`: every window in force, stored or from config.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Blueprint, jsonify, request

from dashfleet_core.alerting.maintenance import FLEET, active_windows
from dashfleet_core.echo import clip
from dashfleet_core.machine_view import parse_time
from dashfleet_core.models import MACHINE_ID_PATTERN, utcnow

from ..app import get_fleet
from ..access import OPERATE, SELF, current_org, require, requires
from ..audit import audited
from ..auth import ApiError
from ..jsonbody import parse_json
from ..params import int_param

bp = Blueprint("alerts", __name__)

MAX_WINDOW = timedelta(days=366)
MAX_MINUTES = int(MAX_WINDOW.total_seconds() // 60)
MAX_TEXT = 500
_MACHINE = re.compile(MACHINE_ID_PATTERN)


def _machine_id(machine_id: str) -> str:
    if machine_id != FLEET and not _MACHINE.match(machine_id):
        raise ApiError(400, f"{clip(machine_id)!r} is not a machine id: use the id the machine reports "
                            "with, or * for the whole fleet")
    return machine_id


@bp.get("/api/fleet/<machine_id>/events")
def machine_events(machine_id: str):
    fleet = get_fleet()
    _machine_id(machine_id)
    limit = int_param("limit", 100, 1, 1000)
    org = current_org()
    events = fleet.storage.events(org=org, machine_id=machine_id, limit=limit)
    if not events and machine_id != FLEET and fleet.storage.machine(machine_id, org=org) is None:
        raise ApiError(404, f"no machine {machine_id!r} has reported to this server; "
                            "see GET /api/fleet for the machines it knows")
    if machine_id != FLEET:  # fleet-wide maintenance concerns this machine too
        events += fleet.storage.events(org=org, machine_id=FLEET, limit=limit)
        events = sorted(events, key=lambda e: (e.at, e.id or 0), reverse=True)[:limit]
    return jsonify({"events": [e.model_dump(mode="json") for e in events]})


@bp.get("/api/maintenance")
def maintenance_list():
    fleet = get_fleet()
    windows = active_windows(fleet.storage, fleet.settings.alerts.maintenance, utcnow(), current_org())
    return jsonify({"windows": windows})


@bp.post("/api/maintenance")
@requires(SELF)
def fleet_maintenance_start():
    return maintenance_start(FLEET)


@bp.delete("/api/maintenance")
@requires(SELF)
def fleet_maintenance_end():
    return maintenance_end(FLEET)


@bp.post("/api/fleet/<machine_id>/maintenance")
@requires(SELF)
def maintenance_start(machine_id: str):
    with audited("maintenance.start") as attempt:
        attempt.params["machine_id"] = clip(machine_id)
        body = _json_body()
        attempt.params.update(_shown(body))
        who = require(OPERATE, body)
        attempt.actor = who.actor
        machine_id = _machine_id(machine_id)
        _known_here(machine_id, who.org)
        until = _until(body)
        reason = _text(body, "reason")
        note = _text(body, "by")
        value = get_fleet().alerting.start_maintenance(machine_id, until, reason=reason, by=who.actor, note=note,
                                                       org=who.org)
    return jsonify({"machine_id": machine_id, "maintenance": value}), 201


@bp.delete("/api/fleet/<machine_id>/maintenance")
@requires(SELF)
def maintenance_end(machine_id: str):
    with audited("maintenance.end") as attempt:
        attempt.params["machine_id"] = clip(machine_id)
        body = _json_body(optional=True)
        attempt.params.update(_shown(body))
        who = require(OPERATE, body)
        attempt.actor = who.actor
        machine_id = _machine_id(machine_id)
        note = _text(body, "by")
        if not get_fleet().alerting.end_maintenance(machine_id, by=who.actor, note=note, org=who.org):
            raise ApiError(404, f"{machine_id!r} has no maintenance window stored (windows from "
                                "[[alerts.maintenance]] in the config end only by editing the config)")
    return jsonify({"machine_id": machine_id, "ended": True})


def _known_here(machine_id: str, org: str) -> None:
    """A window only for a machine of the caller's organisation (or its whole fleet): any other id,
    another organisation's included, is a 404 like every machine path."""
    if machine_id != FLEET and get_fleet().storage.machine(machine_id, org=org) is None:
        raise ApiError(404, f"no machine {machine_id!r} has reported to this server; a window is for a machine "
                            "that has (see GET /api/fleet), or * for the whole fleet")


def _shown(body: dict) -> dict:
    """The body's fields as the audit row keeps them: known names only (never the token), text
    clipped; the client's `by` is a note, not who acted."""
    shown = {}
    for name, key in (("until", "until"), ("minutes", "minutes"), ("reason", "reason"), ("by", "note")):
        value = body.get(name)
        if value is None:
            continue
        small = isinstance(value, (bool, float)) or (isinstance(value, int) and abs(value) < 10**15)
        shown[key] = value if small else clip(value, MAX_TEXT if name == "reason" else 64)
    return shown


def _json_body(optional: bool = False) -> dict:
    if not request.get_data(cache=True):
        if optional:
            return {}
        raise ApiError(400, 'send a JSON body such as {"until": "2026-01-31T18:00:00Z", "reason": "patching"} '
                            'or {"minutes": 60}')
    body = parse_json(request.get_data(cache=True), 'send {"minutes": 60, "reason": "patching"}')
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object, e.g. {\"minutes\": 60, \"reason\": \"patching\"}")
    return body


def _until(body: dict):
    now = utcnow()
    if "until" in body and "minutes" in body:
        raise ApiError(400, "give either until or minutes, not both", fields=["until", "minutes"])
    if "minutes" in body:
        minutes = body["minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
            raise ApiError(400, f"minutes must be a positive number, got {clip(repr(minutes), 40)}",
                           fields=["minutes"])
        if minutes > MAX_MINUTES:
            raise ApiError(422, f"minutes may be at most {MAX_MINUTES} ({MAX_WINDOW.days} days), got "
                                f"{clip(repr(minutes), 40)}; end the window later with a new request",
                           fields=["minutes"])
        until = now + timedelta(minutes=minutes)
    elif "until" in body:
        until = parse_time(body["until"])
        if until is None:
            raise ApiError(400, "until must be an ISO-8601 time such as 2026-01-31T18:00:00Z "
                                f"(no zone means UTC), got {clip(repr(body['until']), 40)}", fields=["until"])
    else:
        raise ApiError(400, "say when the window ends: until (ISO-8601) or minutes", fields=["until"])
    if until <= now:
        raise ApiError(400, f"until ({until.isoformat()}) is in the past; give a time in the future",
                       fields=["until"])
    if until - now > MAX_WINDOW:
        raise ApiError(422, f"a maintenance window may last at most {MAX_WINDOW.days} days "
                            f"({MAX_MINUTES} minutes); give an until within that", fields=["until"])
    return until


def _text(body: dict, name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string", fields=[name])
    if len(value) > MAX_TEXT:
        raise ApiError(400, f"{name} is longer than {MAX_TEXT} characters", fields=[name])
    return value.strip()
