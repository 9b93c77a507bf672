"""What `dashfleet agent status` shows: read the state folder without disturbing a running agent."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from .identity import ID_FILE
from .machine_key import key_exists
from .spool import SPOOL_FILE, Spool


def read_status(state_dir: Path, configured_machine_id: str | None = None) -> dict[str, Any]:
    """Machine id, key, spool depth and age, dropped/dead-lettered/renumbered counts, last delivery
    and error.

    The machine id shown is the configured one (`--machine-id`, its environment variable or
    `[agent] machine_id`) if any, else the one the agent last ran with, else the id file's."""
    state_dir = Path(state_dir)
    id_path = state_dir / ID_FILE
    doc: dict[str, Any] = {
        "state_dir": str(state_dir),
        "machine_id": configured_machine_id or (id_path.read_text(encoding="utf-8").strip()
                                                if id_path.exists() else None),
        "machine_key": key_exists(state_dir),
        "hostname": socket.gethostname(),
        "spool_depth": 0,
        "spool_bytes": 0,
        "oldest_queued_at": None,
        "next_seq": None,
        "spool_dropped": 0,
        "dead_lettered": 0,
        "renumberings": 0,
        "last_renumbering": None,
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
            renumberings=int(spool.get("renumbered_total", 0)),
        )
        if not configured_machine_id and spool.get("machine_id"):
            doc["machine_id"] = spool.get("machine_id")
        renumbered = spool.get("last_renumbering")
        if renumbered:
            doc["last_renumbering"] = {**renumbered, "at": _iso(renumbered["at"])}
        last = spool.get("last_delivery")
        if last:
            doc["last_delivery"] = {"at": _iso(last["at"]), "count": last["count"]}
        err = spool.get("last_error")
        if err:
            doc["last_error"] = {"at": _iso(err["at"]), "message": err["message"], "status": err.get("status"),
                                 "retry_in": err.get("retry_in")}
    finally:
        spool.close()
    return doc


def format_status(doc: dict[str, Any]) -> str:
    lines = [
        f"machine id     {doc['machine_id'] or '(not created yet: the agent has not run)'}  ({doc['hostname']})",
        f"state folder   {doc['state_dir']}",
        f"spool          {doc['spool_depth']} report(s), {doc['spool_bytes']} bytes"
        + (f", oldest queued {doc['oldest_queued_at']}" if doc["oldest_queued_at"] else ""),
        f"machine key    {'present' if doc['machine_key'] else 'not created yet'}",
        f"dropped        {doc['spool_dropped']} (spool full)   dead-lettered {doc['dead_lettered']} (rejected as invalid)",
    ]
    renumbered = doc["last_renumbering"]
    if renumbered:
        lines.append(f"renumbered     {doc['renumberings']} time(s), last {renumbered['at']}: {renumbered['count']} "
                     f"report(s), seq {renumbered['from_seq']} -> {renumbered['to_seq']} (the server held the "
                     "seq with other content)")
    last = doc["last_delivery"]
    lines.append(f"last delivery  {last['at']} ({last['count']} report(s))" if last else "last delivery  never")
    err = doc["last_error"]
    if err:
        retry = f" (next try {err['retry_in']:g} s later)" if err.get("retry_in") is not None else ""
        lines.append(f"last error     {err['at']}: {err['message']}{retry}")
    return "\n".join(lines)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
