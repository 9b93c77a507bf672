"""What `dashfleet agent status` shows: read the state folder without disturbing a running agent."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from .identity import ID_FILE
from .spool import SPOOL_FILE, Spool


def read_status(state_dir: Path) -> dict[str, Any]:
    """Machine id, spool depth and age, dropped/dead-lettered counts, last delivery and error."""
    state_dir = Path(state_dir)
    id_path = state_dir / ID_FILE
    doc: dict[str, Any] = {
        "state_dir": str(state_dir),
        "machine_id": id_path.read_text(encoding="utf-8").strip() if id_path.exists() else None,
        "hostname": socket.gethostname(),
        "spool_depth": 0,
        "spool_bytes": 0,
        "oldest_queued_at": None,
        "next_seq": None,
        "spool_dropped": 0,
        "dead_lettered": 0,
        "last_delivery": None,
        "last_error": None,
    }
    if not (state_dir / SPOOL_FILE).exists():
        return doc
    spool = Spool(state_dir, readonly=True)
    try:
        if spool.table_missing():
            return doc  # the agent is creating its spool right now
        oldest = spool.oldest_enqueued_at()
        doc.update(
            spool_depth=spool.depth(),
            spool_bytes=spool.bytes_queued(),
            oldest_queued_at=_iso(oldest),
            next_seq=spool.get("next_seq"),
            spool_dropped=spool.dropped_total,
            dead_lettered=int(spool.get("dead_lettered_total", 0)),
        )
        last = spool.get("last_delivery")
        if last:
            doc["last_delivery"] = {"at": _iso(last["at"]), "count": last["count"]}
        err = spool.get("last_error")
        if err:
            doc["last_error"] = {"at": _iso(err["at"]), "message": err["message"], "status": err.get("status")}
    finally:
        spool.close()
    return doc


def format_status(doc: dict[str, Any]) -> str:
    lines = [
        f"machine id     {doc['machine_id'] or '(not created yet: the agent has not run)'}  ({doc['hostname']})",
        f"state folder   {doc['state_dir']}",
        f"spool          {doc['spool_depth']} report(s), {doc['spool_bytes']} bytes"
        + (f", oldest queued {doc['oldest_queued_at']}" if doc["oldest_queued_at"] else ""),
        f"dropped        {doc['spool_dropped']} (spool full)   dead-lettered {doc['dead_lettered']} (rejected as invalid)",
    ]
    last = doc["last_delivery"]
    lines.append(f"last delivery  {last['at']} ({last['count']} report(s))" if last else "last delivery  never")
    err = doc["last_error"]
    if err:
        lines.append(f"last error     {err['at']}: {err['message']}")
    return "\n".join(lines)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
