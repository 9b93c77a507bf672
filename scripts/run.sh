#!/usr/bin/env bash
# Install DashFleet into .venv and run the main job: the server on http://127.0.0.1:5000 with its
# own machine reporting into the fleet, on the embedded default storage (SQLite, ./data/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check . 2>&1 | grep -v '^WARNING: Location' || true
exec .venv/bin/dashfleet web "$@"
