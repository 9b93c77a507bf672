"""The seed's live view of the server's own machine: `GET /api/stats`, `GET /api/status`,
`GET /api/history?limit=`. Live values are collected at most once a second, whoever asks.
`alerts` are the snapshot's current findings in the original dashboard's shape (CPU at or above
80 %, RAM at or above 90 % with the default `[health.thresholds]`)."""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, jsonify

from dashfleet_core.models import DEFAULT_ORG, StatusDocument

from ..access import current_org
from ..app import get_fleet
from ..auth import ApiError
from ..fleetview import finding_json, iso, top_finding
from ..params import int_param

bp = Blueprint("local", __name__)

CACHE_SECONDS = 1.0
HISTORY_DEFAULT = 300
HISTORY_MAX = 500


class _Live:
    """The last snapshot of this machine, shared by the requests of one process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = 0.0
        self.doc: StatusDocument | None = None

    def get(self) -> StatusDocument:
        with self.lock:
            if self.doc is None or time.monotonic() - self.at >= CACHE_SECONDS:
                fleet = get_fleet()
                self.doc = fleet.engine.snapshot(fleet.self_machine_id)
                self.at = time.monotonic()
            return self.doc


def _server_org_only() -> None:
    """The server's own machine reports into `default`: other organisations do not see it."""
    if current_org() != DEFAULT_ORG:
        raise ApiError(404, "the server's own machine belongs to the default organisation; "
                            "see GET /api/fleet for your organisation's machines")


def _live() -> StatusDocument:
    _server_org_only()
    live = current_app.extensions.setdefault("dashfleet_live", _Live())
    return live.get()


def _stats(doc: StatusDocument) -> dict:
    m = doc.metrics
    return {
        "machine_id": doc.machine_id,
        "hostname": doc.hostname,
        "collected_at": iso(doc.collected_at),
        "cpu": m.get("cpu.percent"),
        "ram": m.get("memory.percent"),
        "disk": m.get("disk.percent"),
        "uptime_seconds": m.get("uptime.seconds"),
        "metrics": doc.metrics,
        "facts": doc.facts,
        "alerts": [_alert(f) for f in doc.health.findings],
    }


def _alert(finding) -> dict:
    """A finding in the shape the original dashboard's `alerts` had, so its clients keep working."""
    return {"metric": finding.metric, "value": finding.value, "threshold": finding.threshold,
            "severity": finding.severity, "message": finding.message}


@bp.get("/api/stats")
def stats():
    return jsonify(_stats(_live()))


@bp.get("/api/status")
def status():
    doc = _live()
    top = top_finding(doc.health.findings)
    return jsonify({**_stats(doc), "score": doc.health.score, "status": doc.health.status,
                    "top_reason": finding_json(top) if top else None,
                    "findings": [finding_json(f) for f in doc.health.findings]})


@bp.get("/api/history")
def history():
    fleet = get_fleet()
    _server_org_only()
    limit = int_param("limit", HISTORY_DEFAULT, 1, HISTORY_MAX)
    samples = fleet.storage.history(fleet.self_machine_id, limit=limit)
    samples.reverse()  # storage gives newest first; charts want time order
    return jsonify({
        "machine_id": fleet.self_machine_id,
        "limit": limit,
        "samples": [{"collected_at": iso(s.collected_at), "seq": s.seq,
                     "cpu": s.metrics.get("cpu.percent"), "ram": s.metrics.get("memory.percent"),
                     "disk": s.metrics.get("disk.percent"), "score": s.score, "status": s.status}
                    for s in samples],
    })
