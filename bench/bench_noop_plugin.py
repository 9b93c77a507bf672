"""Bench helper plugin: baselines served by the DashFleet server itself, which bench/ingest.py
compares `POST /api/fleet/report` against (loaded with `[plugins] modules`).

- `/bench/noop`: Flask reads the body and answers a small JSON (the ceiling).
- `/bench/insert`: a bare Flask insert of the body into SQLite (WAL, one transaction, the same
  `synchronous` setting as the server's storage URL), the practical ceiling for a durable write.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from flask import Blueprint, jsonify, request

from dashfleet_core import hookimpl

_local = threading.local()


def _connection(app) -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        settings = app.extensions["dashfleet"].settings
        sync = "NORMAL" if "synchronous=normal" in settings.storage.url else "FULL"
        path = Path(settings.server.data_dir) / "bench_raw.db"
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        for _ in range(100):  # both workers switch the new file to WAL at once: one is told "locked"
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                time.sleep(0.05)
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        _local.conn = conn
    return conn


@hookimpl
def register_routes(app):
    bp = Blueprint("bench_noop", __name__)

    @bp.route("/bench/noop", methods=["GET", "POST"])
    def noop():
        request.get_data()
        return jsonify({"ok": True})

    @bp.post("/bench/insert")
    def insert():
        conn = _connection(app)
        body = request.get_data(as_text=True)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO raw (body) VALUES (?)", (body,))
        conn.execute("COMMIT")
        return jsonify({"stored": True}), 201

    app.register_blueprint(bp)
