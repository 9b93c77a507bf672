"""Bench helper plugin for bench/fleet_list.py: the fleet list without its caches, on the same
server, as in-run baselines for `GET /api/fleet` (loaded with `[plugins] modules`).

- `/bench/fleet-uncached`: the list as it was built before the caches (`previous_machines`, then
  `jsonify` of `fleet_json`'s document).
- `/bench/fleet-cold`: today's `GET /api/fleet` with both caches emptied first, i.e. every machine
  changed since the previous read (the worst case of the cached path).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, jsonify

from dashfleet_core import hookimpl
from dashfleet_core.models import DEFAULT_ORG, MachineState, utcnow


def previous_machines(storage, org: str = DEFAULT_ORG, seen_since: datetime | None = None) -> list[MachineState]:
    """`machines()` of the SQL backends as it was before the row cache and epoch-number times
    (commit 3aa9db2): every row as MachineState JSON with ISO times, validated by pydantic."""
    from dashfleet_plugins.storage._sql.codecs import MACHINE_LIST, epoch, from_epoch, quote

    def as_json(row: tuple) -> str:
        (org_, machine_id, hostname, os_name, agent_version, last_seq, first_seen, last_seen,
         collected, metrics, facts, health, spool_dropped) = row
        return (
            f'{{"org":{quote(org_)},"machine_id":{quote(machine_id)},"hostname":{quote(hostname)},'
            f'"os":{quote(os_name)},"agent_version":{quote(agent_version)},'
            f'"last_seq":{"null" if last_seq is None else int(last_seq)},'
            f'"first_seen":"{from_epoch(first_seen).isoformat()}",'
            f'"last_seen":"{from_epoch(last_seen).isoformat()}",'
            f'"collected_at":"{from_epoch(collected).isoformat()}",'
            f'"metrics":{metrics},"facts":{facts},"health":{health},"spool_dropped":{int(spool_dropped)}}}'
        )

    sql = f"SELECT {storage._MACHINE_COLS} FROM machines WHERE org = ?"
    params: list = [org]
    if seen_since is not None:
        sql += " AND last_seen >= ?"
        params.append(epoch(seen_since))
    with storage._transaction(write=False) as tx:
        rows = tx.all(sql + " ORDER BY machine_id", params)
    return MACHINE_LIST.validate_json("[" + ",".join(map(as_json, rows)) + "]")


def _forget(fleet) -> None:
    from dashfleet_plugins.storage._sql.codecs import StateCache
    from dashfleet_web import fleetview

    fleet.storage._states = StateCache()
    fleetview._entries = {}


@hookimpl
def register_routes(app):
    from dashfleet_web.fleetview import WHOLE_FLEET, fleet_list_text, iso, machine_json, maintenance_windows

    bp = Blueprint("bench_fleet", __name__)
    fleet = app.extensions["dashfleet"]

    @bp.get("/bench/fleet-uncached")
    def uncached():
        # fleet_json's document, from the machines read the previous way
        now, server = utcnow(), fleet.settings.server
        machines = previous_machines(fleet.storage, seen_since=now - timedelta(days=server.list_hide_days))
        windows = maintenance_windows(fleet, DEFAULT_ORG, now)
        items = [machine_json(m, now=now, ttl=server.ttl_seconds, windows=windows) for m in machines]
        items.sort(key=lambda d: (d["hostname"] or d["machine_id"]).lower())
        return jsonify({"generated_at": iso(now), "ttl_seconds": server.ttl_seconds,
                        "list_hide_days": server.list_hide_days, "purge_days": server.list_hide_days, "count": len(items), "machines": items,
                        "maintenance_all_until": iso(windows[WHOLE_FLEET]["until"]) if WHOLE_FLEET in windows else None})

    @bp.get("/bench/fleet-cold")
    def cold():
        _forget(fleet)
        return app.response_class(fleet_list_text(fleet), mimetype=app.json.mimetype)

    app.register_blueprint(bp)
