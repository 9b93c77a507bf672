"""Bench helper plugin: a Flask no-op endpoint on the DashFleet server itself, the ceiling that
bench/ingest.py compares `POST /api/fleet/report` against (loaded with `[plugins] modules`)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from dashfleet_core import hookimpl


@hookimpl
def register_routes(app):
    bp = Blueprint("bench_noop", __name__)

    @bp.route("/bench/noop", methods=["GET", "POST"])
    def noop():
        request.get_data()
        return jsonify({"ok": True})

    app.register_blueprint(bp)
