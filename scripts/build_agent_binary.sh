#!/usr/bin/env bash
# Build the stand-alone agent binary dist/dashfleet-agent with PyInstaller, in its own venv
# (.build-venv, or $BUILD_VENV) holding only the agent's dependencies. Linux/macOS; on Windows run
# PyInstaller on agent/pyinstaller/dashfleet-agent.spec in a venv (see docs/deploy.md).
# Incremental: the work folder build/pyinstaller is kept; pass --clean for a from-scratch build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BUILD_VENV:-.build-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check pyinstaller click pluggy psutil requests \
  'pydantic>=2.5,<3' 2>&1 | grep -v '^WARNING: Location' || true
# The project without its server dependencies: the agent never imports them.
rm -rf build/lib  # setuptools' stage keeps files deleted from the tree: start it afresh
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall . 2>&1 \
  | grep -v '^WARNING: Location' || true
"$VENV/bin/pyinstaller" --noconfirm --log-level WARN "$@" --distpath dist --workpath build/pyinstaller \
  agent/pyinstaller/dashfleet-agent.spec
ls -l dist/dashfleet-agent
