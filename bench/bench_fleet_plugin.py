"""Bench helper plugin for bench/fleet_list.py: the fleet list without its caches, on the same
server, as in-run baselines for `GET /api/fleet` (loaded with `[plugins] modules`).

- `/bench/fleet-uncached`: the list as it was built before the caches (every machine validated by
  pydantic again, `jsonify(fleet_json(...))`).
- `/bench/fleet-cold`: today's `GET /api/fleet` with both caches emptied first, i.e. every machine
  changed since the previous read (the worst case of the cached path).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from dashfleet_core import hookimpl


def _forget(fleet) -> None:
    from dashfleet_plugins.storage._sql import _StateCache
    from dashfleet_web import fleetview

    fleet.storage._states = _StateCache()
    fleetview._entries = {}


@hookimpl
def register_routes(app):
    from dashfleet_web.fleetview import fleet_json, fleet_list_text

    bp = Blueprint("bench_fleet", __name__)
    fleet = app.extensions["dashfleet"]

    @bp.get("/bench/fleet-uncached")
    def uncached():
        _forget(fleet)
        return jsonify(fleet_json(fleet))

    @bp.get("/bench/fleet-cold")
    def cold():
        _forget(fleet)
        return app.response_class(fleet_list_text(fleet), mimetype=app.json.mimetype)

    app.register_blueprint(bp)
