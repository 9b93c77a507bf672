"""The fleet as the API and the pages show it: machines with `expired`, the top reason and any
maintenance window, built from storage in one pass (shared by `/api/fleet` and `/metrics`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from dashfleet_core.fleet import Fleet
from dashfleet_core.models import DEFAULT_ORG, Finding, MachineState, as_utc, utcnow

MAINTENANCE = "maintenance"
WHOLE_FLEET = "*"
KEY_METRICS = ("cpu.percent", "memory.percent", "disk.percent", "uptime.seconds")
SEVERITY_RANK = {"critical": 2, "warn": 1}


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z` (storage already gives UTC datetimes: the fast path)."""
    if value is None:
        return None
    if value.tzinfo is not timezone.utc:
        value = as_utc(value)
    return value.isoformat()[:-6] + "Z"


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time (naive = UTC) from storage or an API parameter; None if unreadable."""
    if isinstance(value, datetime):
        return as_utc(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def maintenance_windows(fleet: Fleet, org: str = DEFAULT_ORG, now: datetime | None = None) -> dict[str, dict]:
    """Current maintenance windows by key (a machine id, or `*` for the whole fleet)."""
    now = now or utcnow()
    current = {}
    for key, value in fleet.storage.kv_list(MAINTENANCE, org=org).items():
        until = parse_time(value.get("until")) if isinstance(value, dict) else None
        if until is not None and until > now:
            current[key] = {"until": until, "reason": str(value.get("reason", "")),
                            "by": str(value.get("by", ""))}
    return current


def maintenance_for(machine_id: str, windows: dict[str, dict]) -> dict | None:
    """The window covering a machine: its own or the fleet-wide one, whichever ends later."""
    found = [w for w in (windows.get(machine_id), windows.get(WHOLE_FLEET)) if w]
    return max(found, key=lambda w: w["until"]) if found else None


def top_finding(findings: list[Finding]) -> Finding | None:
    """The worst finding (critical before warn; the first one of equal severity)."""
    best = None
    for f in findings:
        if best is None or SEVERITY_RANK[f.severity] > SEVERITY_RANK[best.severity]:
            best = f
    return best


def finding_json(f: Finding) -> dict[str, Any]:
    return {"metric": f.metric, "value": f.value, "threshold": f.threshold,
            "severity": f.severity, "message": f.message, "source": f.source}


def machine_json(m: MachineState, *, now: datetime, ttl: float, windows: dict[str, dict],
                 full: bool = False) -> dict[str, Any]:
    """One machine for the API. The list (`full=False`) carries the key metrics only."""
    # This runs once per machine on every fleet refresh: keep it to plain dict work.
    last_seen = m.last_seen if m.last_seen.tzinfo is timezone.utc else as_utc(m.last_seen)
    age = (now - last_seen).total_seconds()
    if age < 0:
        age = 0.0
    findings = m.health.findings
    top = (findings[0] if len(findings) == 1 else top_finding(findings)) if findings else None
    window = maintenance_for(m.machine_id, windows) if windows else None
    metrics = m.metrics
    doc: dict[str, Any] = {
        "machine_id": m.machine_id,
        "hostname": m.hostname,
        "os": m.os,
        "agent_version": m.agent_version,
        "status": m.health.status,
        "score": m.health.score,
        "top_reason": finding_json(top) if top else None,
        "metrics": metrics if full else {k: metrics[k] for k in KEY_METRICS if k in metrics},
        "last_seen": iso(last_seen),
        "collected_at": iso(m.collected_at),
        "age_seconds": round(age, 1),
        "expired": age > ttl,
        "maintenance_until": iso(window["until"]) if window else None,
        "spool_dropped": m.spool_dropped,
    }
    if full:
        doc.update({
            "first_seen": iso(m.first_seen),
            "last_seq": m.last_seq,
            "facts": m.facts,
            "findings": [finding_json(f) for f in m.health.findings],
            "maintenance": ({"until": iso(window["until"]), "reason": window["reason"],
                             "by": window["by"]} if window else None),
        })
    return doc


def fleet_json(fleet: Fleet, org: str = DEFAULT_ORG) -> dict[str, Any]:
    """`GET /api/fleet`: every machine seen within `[server] purge_days`, with `expired`."""
    now = utcnow()
    server = fleet.settings.server
    machines = fleet.storage.machines(org=org, seen_since=now - timedelta(days=server.purge_days))
    windows = maintenance_windows(fleet, org, now)
    items = [machine_json(m, now=now, ttl=server.ttl_seconds, windows=windows) for m in machines]
    items.sort(key=lambda d: (d["hostname"] or d["machine_id"]).lower())
    return {"generated_at": iso(now), "ttl_seconds": server.ttl_seconds,
            "purge_days": server.purge_days, "count": len(items), "machines": items,
            "maintenance_all_until": iso(windows[WHOLE_FLEET]["until"]) if WHOLE_FLEET in windows else None}
