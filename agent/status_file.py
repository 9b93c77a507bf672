"""The agent's status file: what the desktop app shows about the agent on the same machine.

The agent's state folder is private to the service user (it holds the machine key and the spool),
so the desktop app cannot read it. The agent therefore rewrites a small JSON file, readable by
other local users, after every cycle and when it stops. It holds no secret: no token, no machine
key, no report content; the server URL without any user, password or query. It is replaced
atomically (a temporary file renamed over it), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("dashfleet_agent")

FORMAT_VERSION = 1
# A status file is a few hundred bytes; a reader refuses anything far larger (not ours, or damaged).
MAX_BYTES = 64 * 1024
MAX_MESSAGE = 500
FILE_MODE = 0o644
FOLDER_MODE = 0o755


def public_url(url: str | None) -> str | None:
    """`url` without user, password, query or fragment: what may be shown to any local user."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def build(agent: Any, *, running: bool) -> dict[str, Any]:
    """The status document of a running (or stopping) `dashfleet_agent.runner.Agent`."""
    spool = agent.spool
    server = agent.config.server
    shown_server = public_url(server)
    last = spool.get("last_delivery")
    err = spool.get("last_error")
    error = None
    if err:
        message = str(err.get("message", ""))
        if server and shown_server and server != shown_server:
            message = message.replace(server, shown_server)
        error = {"at": _iso(err.get("at")), "message": message[:MAX_MESSAGE], "status": err.get("status"),
                 "retry_in": err.get("retry_in")}
    return {
        "version": FORMAT_VERSION,
        "updated_at": _iso(time.time()),
        "running": running,
        "pid": os.getpid(),
        "machine_id": agent.machine_id,
        "hostname": socket.gethostname(),
        "server": shown_server,
        "interval": agent.config.interval,
        "spool_depth": spool.depth(),
        "spool_dropped": spool.dropped_total,
        "dead_lettered": int(spool.get("dead_lettered_total", 0)),
        "last_delivery": {"at": _iso(last["at"]), "count": last["count"]} if last else None,
        "last_error": error,
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    """Replace `path` with `doc`, atomically, readable by every local user (0644).

    A folder that does not exist is created readable by all (0755); an existing one is left as it
    is (it may be the agent's own state folder when the agent runs as the desktop user)."""
    path = Path(path)
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        if os.name == "posix":
            os.chmod(path.parent, FOLDER_MODE)  # mkdir's mode is masked by the umask
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(doc, indent=1).encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if os.name == "posix":
            os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_quietly(path: Path, agent: Any, *, running: bool) -> None:
    """`write(build(...))`, logging (once per kind of problem) instead of raising: the status file
    is a convenience and never stops the agent's real work."""
    try:
        write(path, build(agent, running=running))
    except Exception as exc:  # a full disk, a read-only /run: the reports still go out
        problem = f"{type(exc).__name__}: {exc}"
        if getattr(agent, "_status_problem", None) != problem:
            log.warning("cannot write the status file %s (%s); the agent keeps running", path, problem)
            agent._status_problem = problem
        return
    agent._status_problem = None


class StatusFileError(Exception):
    """The status file exists but cannot be used; the message says why."""


def read(path: Path) -> dict[str, Any] | None:
    """The status document at `path`, or None when there is none (no agent has written one).

    Raises StatusFileError for a file that is unreadable, too large or not a status document."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StatusFileError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise StatusFileError(f"{path} is larger than {MAX_BYTES} bytes: not an agent status file")
    try:
        doc = json.loads(data)
    except ValueError:
        raise StatusFileError(f"{path} is not JSON: not an agent status file") from None
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise StatusFileError(f"{path} is not a version {FORMAT_VERSION} agent status file")
    return doc


def _iso(ts: Any) -> str | None:
    if not isinstance(ts, (int, float)):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
