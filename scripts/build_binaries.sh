#!/usr/bin/env bash
# Build the one-file executables with PyInstaller, in the build venv (.build-venv, or $BUILD_VENV):
#   dist/dashfleet          the server and the whole CLI (`dashfleet web` serves pages, static files
#                           and Chart.js from inside the bundle)
#   dist/dashfleet-agent    the agent alone (scripts/build_agent_binary.sh, no server code)
#   dist/dashfleet-desktop  the desktop window, when the desktop host (dashfleet_desktop) and tkinter
#                           are importable; otherwise skipped, saying so
# Usage: scripts/build_binaries.sh [server] [agent] [desktop]   (default: all three)
#        extra PyInstaller flags after --, e.g. scripts/build_binaries.sh server -- --clean
# Linux/macOS. On Windows the same spec files make the .exe files (README, "One-file executables").
# Incremental: the work folder build/pyinstaller is kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BUILD_VENV:-.build-venv}
export BUILD_VENV=$VENV

targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    server|agent|desktop) targets+=("$1"); shift ;;
    --) shift; break ;;
    *) echo "build_binaries.sh: unknown target '$1' (server, agent, desktop; PyInstaller flags after --)" >&2
       exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(server agent desktop)
want() { local t; for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

quiet_pip() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
  | grep -v '^WARNING: Location' || true; }

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if want server || want desktop; then
  # The project with its dependencies (the server's too); drivers and test tools stay out.
  # pip reinstalls a local folder every time, so the bundle has the working tree's code; setuptools
  # stages it in build/lib and never removes a file from there, so a module deleted or moved in the
  # tree would come back into the bundle: start that stage afresh.
  rm -rf build/lib
  quiet_pip pyinstaller .
  [ -x "$VENV/bin/pyinstaller" ] || { echo "build_binaries.sh: pyinstaller did not install in $VENV" >&2; exit 1; }
fi

build() {
  "$VENV/bin/pyinstaller" --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller "$@"
}

if want server; then
  build "$@" packaging/pyinstaller/dashfleet.spec
  ls -l dist/dashfleet
fi
if want agent; then
  scripts/build_agent_binary.sh "$@"
fi
if want desktop; then
  if "$VENV/bin/python" -c 'import dashfleet_desktop, tkinter' 2>/dev/null; then
    build "$@" packaging/pyinstaller/dashfleet-desktop.spec
    ls -l dist/dashfleet-desktop
  else
    echo "build_binaries.sh: dist/dashfleet-desktop skipped: the desktop host (dashfleet_desktop) or" \
         "tkinter is not importable in $VENV (install python3-tk; the desktop host ships with DashFleet" \
         "from issue 15)" >&2
  fi
fi
