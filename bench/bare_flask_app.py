"""Bench baselines: a bare Flask app with one route, for bench/ingest.py's idle-RSS comparison, and
the same app importing DashFleet's pydantic models (what a worker must load to validate a report
or read its config), to show how much of the budget the required dependencies take before any
DashFleet code runs."""

from __future__ import annotations

from flask import Flask, jsonify


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app


def create_app_with_models() -> Flask:
    import dashfleet_core.config  # noqa: F401  (pydantic and the models the config and reports use)
    import dashfleet_core.models  # noqa: F401

    return create_app()
