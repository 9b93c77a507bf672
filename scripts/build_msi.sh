#!/usr/bin/env bash
# Build the agent's MSI, dist/DashFleet-agent-<version>-x64.msi, from packaging/wix/DashFleet.wxs
# with wixl (Debian: apt-get install wixl msitools; RECIPES.md section 12).
# Usage: scripts/build_msi.sh [AGENT_EXE] [OUT.msi]
#   AGENT_EXE  the Windows agent, default dist/dashfleet-agent.exe (build it on Windows with
#              agent/pyinstaller/dashfleet-agent.spec: PyInstaller does not cross-compile)
# On Windows, WiX 3 builds the same file: candle -arch x64 -dVersion=... -dAgentExe=... then light.
set -euo pipefail
cd "$(dirname "$0")/.."
EXE=${1:-dist/dashfleet-agent.exe}
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
OUT=${2:-dist/DashFleet-agent-$VERSION-x64.msi}
command -v wixl >/dev/null || { echo "build_msi.sh: wixl not found: apt-get install wixl msitools" >&2; exit 1; }
[ -f "$EXE" ] || { echo "build_msi.sh: $EXE not found: build the Windows agent first (docs/deploy.md)" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
# wixl resolves File/@Source relative to the working folder, and wants it relative.
REL=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1]))' "$EXE")
wixl -a x64 -D Version="$VERSION" -D AgentExe="$REL" -o "$OUT" packaging/wix/DashFleet.wxs 2>&1 \
  | grep -v 'GLib-GObject-WARNING\|^$' >&2 || true
[ -s "$OUT" ] || { echo "build_msi.sh: wixl made no $OUT" >&2; exit 1; }
echo "$OUT"
