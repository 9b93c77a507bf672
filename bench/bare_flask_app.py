"""Bench baseline: a bare Flask app with one route, for bench/ingest.py's idle-RSS comparison."""

from __future__ import annotations

from flask import Flask, jsonify


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app
