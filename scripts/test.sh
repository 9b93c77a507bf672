#!/usr/bin/env bash
# Install DashFleet with its test extras into .venv and run the whole test suite.
# As root it also installs the system packages the real-part tests use (Chromium, PostgreSQL, nginx, Xvfb)
# when they are missing, and starts a throwaway PostgreSQL; elsewhere those tests skip with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if ! command -v chromium >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
     || ! [ -x /usr/sbin/nginx ]; then
    apt-get update -qq
    apt-get install -y -qq chromium postgresql nginx >/dev/null
  fi
  # Windows packages built on Linux: the MSI with wixl, checked with msiinfo / msiextract.
  if ! command -v wixl >/dev/null || ! command -v msiinfo >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq wixl msitools >/dev/null
  fi
  # The desktop window's tests: an X server (Xvfb) and Tk for the Python that runs them (Debian's
  # python3-tk serves only the system python3; a venv on another Python needs its own Tk).
  if ! command -v Xvfb >/dev/null || ! python3 -c "import tkinter" 2>/dev/null; then
    apt-get update -qq
    apt-get install -y -qq xvfb python3-tk >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e examples/dashfleet-example-plugin 2>&1 | grep -v '^WARNING: Location' || true

PGTMP=""
if [ -z "${DASHFLEET_PG_DSN:-}" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PGTMP=$(mktemp -d /tmp/dashfleet-pg.XXXXXX)
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }   # initdb refuses root
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PGTMP"; fi
  as_pg "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 30 start -o \
    "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGTMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
  trap 'as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1; rm -rf "$PGTMP"' EXIT
  export DASHFLEET_PG_DSN="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
fi

set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi
exit "$rc"
