#!/usr/bin/env bash
# Install DashFleet into .venv and run the main job: the server on http://127.0.0.1:5000 with its
# own machine reporting into the fleet, on the embedded default storage (SQLite, ./data/).
# On the first run (no user yet) it prints a one-time link that creates the first admin in the
# browser and lands on the fleet page.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check . 2>&1 | grep -v '^WARNING: Location' || true
port=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --port) port="${args[$((i + 1))]:-}" ;;
    --port=*) port="${args[$i]#--port=}" ;;
  esac
done
.venv/bin/dashfleet user setup-link --if-needed ${port:+--port "$port"}
exec .venv/bin/dashfleet web "$@"
