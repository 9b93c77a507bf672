#!/usr/bin/env bash
# Install the DashFleet agent or server as a systemd service (Linux, as root).
#
#   scripts/install_systemd.sh agent  --server URL [--token-file FILE | --token TOKEN] [--binary PATH]
#                                     [--ca-bundle PEM] [--no-start]
#   scripts/install_systemd.sh server [--token TOKEN] [--action-token TOKEN] [--port 5000] [--host 0.0.0.0]
#                                     [--no-start]
#
# Tokens can also come from the environment ($DASHFLEET_AGENT_TOKEN / $FLEET_TOKEN, $ACTION_TOKEN) or,
# for the agent, a file (--token-file): both keep them out of `ps`.
# agent:  program  /usr/local/bin/dashfleet-agent (the PyInstaller binary from --binary or
#                  dist/dashfleet-agent; else a venv in /opt/dashfleet/venv and a small wrapper)
#         token    /etc/dashfleet/agent.token (0600), handed to the service with LoadCredential and
#                  read with --token-file: never on a command line or in the environment
#         settings /etc/dashfleet/agent.env (0600), state /var/lib/dashfleet-agent
#         It sends one report first (--once) and stops if the server refuses the token.
# server: venv /opt/dashfleet/venv, settings /etc/dashfleet/server.env (0600: FLEET_TOKEN and
#         ACTION_TOKEN, each generated with 43 random characters when not given) and dashfleet.toml,
#         data /var/lib/dashfleet.
# ROOT=/some/dir installs into that tree without calling systemctl (for tests and packaging).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

die() { echo "install_systemd.sh: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "say what to install: agent or server (see the top of this script)"
ROLE=$1; shift
SERVER="" TOKEN="" TOKEN_FILE="" ACTION="" BINARY="" CA="" PORT=5000 HOST=0.0.0.0 START=1
while [ $# -gt 0 ]; do
  [ "$1" = --no-start ] || [ $# -ge 2 ] || die "$1 needs a value"
  case "$1" in
    --server) SERVER=$2; shift 2 ;;
    --token) TOKEN=$2; shift 2 ;;
    --token-file) TOKEN_FILE=$2; shift 2 ;;
    --action-token) ACTION=$2; shift 2 ;;
    --binary) BINARY=$2; shift 2 ;;
    --ca-bundle) CA=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --host) HOST=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    *) die "unknown option $1" ;;
  esac
done
ROOT=${ROOT:-}
if [ -z "$ROOT" ]; then
  [ "$(id -u)" = 0 ] || die "run as root (or set ROOT=/tmp/tree to stage the files)"
  command -v systemctl >/dev/null || die "systemctl not found: this script is for systemd machines"
else
  START=0
fi
ETC=$ROOT/etc/dashfleet UNITS=$ROOT/etc/systemd/system BIN=$ROOT/usr/local/bin VENV=$ROOT/opt/dashfleet/venv
DOC=$ROOT/usr/local/share/doc/dashfleet
install -d -m 0755 "$ETC" "$UNITS" "$BIN" "$DOC"
install -m 0644 docs/deploy.md "$DOC/deploy.md"

make_venv() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$SRC"
}

write_env() {  # write_env FILE LINES... : owner-only, atomically
  local file=$1; shift
  local tmp; tmp=$(mktemp "$file.XXXXXX")
  chmod 0600 "$tmp"
  printf '%s\n' "$@" > "$tmp"
  mv -f "$tmp" "$file"
}

random_token() {  # 32 random bytes, url-safe base64: 43 characters
  python3 -c 'import secrets; print(secrets.token_urlsafe(32))'
}

no_newline() {  # no_newline WHAT VALUE
  case "$2" in *$'\n'*|*$'\r'*) die "newlines are not allowed in $1" ;; esac
}

case "$ROLE" in
  agent)
    if [ -n "$TOKEN_FILE" ]; then
      [ -z "$TOKEN" ] || die "give --token or --token-file, not both"
      [ -r "$TOKEN_FILE" ] || die "cannot read the token file $TOKEN_FILE"
      IFS= read -r TOKEN < "$TOKEN_FILE" || true
      TOKEN=$(printf '%s' "$TOKEN" | tr -d '[:space:]')
      [ -n "$TOKEN" ] || die "the token file $TOKEN_FILE is empty: its first line must be the fleet token"
    fi
    TOKEN=${TOKEN:-${DASHFLEET_AGENT_TOKEN:-${FLEET_TOKEN:-}}}
    [ -n "$SERVER" ] || die "agent needs --server URL (the DashFleet server's base URL)"
    [ -n "$TOKEN" ] || die "agent needs the fleet token: --token-file FILE, or DASHFLEET_AGENT_TOKEN in the environment"
    case "$TOKEN$SERVER$CA" in *$'\n'*|*$'\r'*) die "newlines are not allowed in --server, the token or --ca-bundle" ;; esac
    [ -n "$BINARY" ] || { [ -x dist/dashfleet-agent ] && BINARY=dist/dashfleet-agent; } || true
    if [ -n "$BINARY" ]; then
      install -m 0755 "$BINARY" "$BIN/dashfleet-agent"
    else
      make_venv
      write_tmp=$(mktemp "$BIN/.dashfleet-agent.XXXXXX")
      printf '#!/bin/sh\nexec /opt/dashfleet/venv/bin/python -m dashfleet_agent "$@"\n' > "$write_tmp"
      chmod 0755 "$write_tmp"; mv -f "$write_tmp" "$BIN/dashfleet-agent"
    fi
    # The token in a file of its own (the unit hands it to the service with LoadCredential);
    # agent.env keeps the rest and no longer holds a token.
    write_env "$ETC/agent.token" "$TOKEN"
    lines=("DASHFLEET_AGENT_SERVER=$SERVER")
    [ -z "$CA" ] || lines+=("DASHFLEET_AGENT_CA_BUNDLE=$CA")
    write_env "$ETC/agent.env" "${lines[@]}"
    install -m 0644 deploy/systemd/dashfleet-agent.service "$UNITS/dashfleet-agent.service"
    if [ "$START" = 1 ]; then
      install -d -m 0700 /var/lib/dashfleet-agent-check
      set +e
      DASHFLEET_AGENT_SERVER=$SERVER DASHFLEET_AGENT_CA_BUNDLE=$CA \
        "$BIN/dashfleet-agent" --token-file "$ETC/agent.token" --state-dir /var/lib/dashfleet-agent-check --once
      rc=$?
      set -e
      rm -rf /var/lib/dashfleet-agent-check
      case $rc in
        0) echo "test report delivered to $SERVER" ;;
        75) echo "warning: $SERVER is not reachable now; the agent will spool and retry" >&2 ;;
        77) die "the server refused the token, the URL or the certificate (message above); fix and run again" ;;
        *) die "the test report failed (exit $rc, message above)" ;;
      esac
      systemctl daemon-reload
      systemctl enable --now dashfleet-agent.service
      systemctl --no-pager --lines=5 status dashfleet-agent.service || true
    fi
    echo "agent installed: $BIN/dashfleet-agent, settings $ETC/agent.env, token $ETC/agent.token, unit dashfleet-agent.service"
    ;;
  server)
    [ -z "$TOKEN_FILE" ] || die "--token-file is for the agent; give the server's token with --token or FLEET_TOKEN"
    TOKEN=${TOKEN:-${FLEET_TOKEN:-}}
    ACTION=${ACTION:-${ACTION_TOKEN:-}}
    no_newline "the fleet token" "$TOKEN"
    no_newline "the action token" "$ACTION"
    generated=0 action_generated=0
    if [ -z "$TOKEN" ]; then
      TOKEN=$(random_token); generated=1
    fi
    if [ -z "$ACTION" ]; then
      ACTION=$(random_token); action_generated=1
    elif [ ${#ACTION} -lt 32 ]; then
      die "the action token must be at least 32 characters (it lets its holder run actions on every machine); leave it out to have one generated"
    fi
    make_venv
    if [ -f "$ETC/server.env" ]; then
      echo "keeping the existing $ETC/server.env"
      generated=0
      if grep -q '^ACTION_TOKEN=.' "$ETC/server.env"; then
        action_generated=0
      else  # older installs had no ACTION_TOKEN: the action API refused everything (fail closed)
        mapfile -t kept < <(grep -v '^ACTION_TOKEN=' "$ETC/server.env")
        write_env "$ETC/server.env" "${kept[@]}" "ACTION_TOKEN=$ACTION"
        echo "added ACTION_TOKEN to $ETC/server.env"
      fi
    else
      write_env "$ETC/server.env" "FLEET_TOKEN=$TOKEN" "ACTION_TOKEN=$ACTION" "HOST=$HOST" "PORT=$PORT" \
        "DASHFLEET_STORAGE=sqlite:////var/lib/dashfleet/dashfleet.db"
    fi
    [ -f "$ETC/dashfleet.toml" ] || printf '# DashFleet server settings: see examples/dashfleet.toml\n' > "$ETC/dashfleet.toml"
    install -m 0644 deploy/systemd/dashfleet-server.service "$UNITS/dashfleet-server.service"
    if [ "$START" = 1 ]; then
      systemctl daemon-reload
      systemctl enable --now dashfleet-server.service
      systemctl --no-pager --lines=5 status dashfleet-server.service || true
    fi
    echo "server installed: unit dashfleet-server.service, settings $ETC/server.env"
    [ "$generated" = 0 ] || echo "a fleet token was generated: it is FLEET_TOKEN in $ETC/server.env (give it to the agents)"
    [ "$action_generated" = 0 ] || echo "an action token was generated: it is ACTION_TOKEN in $ETC/server.env (for the server's operators only)"
    ;;
  *) die "unknown role $ROLE: agent or server" ;;
esac
