"""The fleet read API: `GET /api/fleet`, `GET /api/summary`, `GET /api/fleet/<id>`,
`GET /api/fleet/<id>/history`.
Each reads the request's organisation only: another organisation's machine is a 404."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify

from dashfleet_core.echo import clip
from dashfleet_core.models import utcnow

from ..access import current_org
from ..app import get_fleet
from ..auth import ApiError
from ..fleetview import fleet_list_text, fleet_summary, iso, machine_json, maintenance_windows
from ..params import int_param, list_param, time_param

bp = Blueprint("fleet_api", __name__)

DEFAULT_RANGE = timedelta(hours=1)
MAX_POINTS = 1000


@bp.get("/api/fleet")
def fleet_list():
    # the same document as jsonify(fleet_json(...)), written from each machine's cached entry
    return current_app.response_class(fleet_list_text(get_fleet(), current_org()), mimetype=current_app.json.mimetype)


@bp.get("/api/summary")
def summary():
    """Counts by status and the worst one: what every page's title and favicon show (`read`,
    like the list it counts; not under /api/fleet/, where it would shadow a machine's id)."""
    return jsonify(fleet_summary(get_fleet(), current_org()))


def _machine_or_404(machine_id: str):
    machine = get_fleet().storage.machine(machine_id, org=current_org())
    if machine is None:
        raise ApiError(404, f"no machine {clip(machine_id)!r} has reported to this server; "
                            "see GET /api/fleet for the machines it knows")
    return machine


@bp.get("/api/fleet/<machine_id>")
def fleet_machine(machine_id: str):
    fleet = get_fleet()
    machine = _machine_or_404(machine_id)
    now = utcnow()
    doc = machine_json(machine, now=now, ttl=fleet.settings.server.ttl_seconds,
                       windows=maintenance_windows(fleet, current_org(), now=now), full=True)
    doc["ttl_seconds"] = fleet.settings.server.ttl_seconds
    return jsonify(doc)


@bp.get("/api/fleet/<machine_id>/history")
def fleet_machine_history(machine_id: str):
    _machine_or_404(machine_id)
    until = time_param("until", utcnow())
    since = time_param("since", until - DEFAULT_RANGE)
    if since >= until:
        raise ApiError(400, f"?since= ({iso(since)}) must be before ?until= ({iso(until)})")
    points = int_param("points", 300, 1, MAX_POINTS)
    metrics = list_param("metrics")
    buckets = get_fleet().storage.history_buckets(machine_id, org=current_org(), since=since, until=until,
                                                  points=points, metrics=metrics)
    return jsonify({
        "machine_id": machine_id, "since": iso(since), "until": iso(until), "points": points,
        "buckets": [{"start": iso(b.start), "end": iso(b.end), "count": b.count,
                     "min": b.min, "avg": b.avg, "max": b.max} for b in buckets],
    })
