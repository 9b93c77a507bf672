"""What the fleet shows about a machine at a moment, whatever host shows it: how long since it
reported, whether it went silent (`expired`), the maintenance window covering it, and its top
reason. The web host turns these into JSON; the rules live here, once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import DEFAULT_ORG, Finding, as_utc, status_rank, utcnow
from .storage import Storage

WHOLE_FLEET = "*"


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


def maintenance_windows(storage: Storage, configured: list, org: str = DEFAULT_ORG,
                        now: datetime | None = None) -> dict[str, dict]:
    """Current maintenance windows by key (a machine id, or `*` for the whole fleet): those stored
    through the API and those of `[[alerts.maintenance]]` in the config (`configured`), the
    later-ending where both cover one key (the windows alerting honours, so a page says what
    alerting does)."""
    from .alerting.maintenance import windows_by_machine

    now = now or utcnow()
    current = {}
    for key, value in windows_by_machine(storage, configured, now, org).items():
        until = parse_time(value.get("until"))
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
        if best is None or status_rank(f.severity) > status_rank(best.severity):
            best = f
    return best


def live_state(machine_id: str, last_seen: datetime, now: datetime,
               windows: dict[str, dict]) -> tuple[float, dict | None]:
    """What changes with the clock, not with the machine: its age in seconds (never negative)
    and the maintenance window covering it now."""
    age = (now - last_seen).total_seconds()
    return (age if age > 0 else 0.0), (maintenance_for(machine_id, windows) if windows else None)


def is_expired(age_seconds: float, ttl_seconds: float) -> bool:
    """Silent: no report for longer than `FLEET_TTL_SECONDS` (`[server] ttl_seconds`)."""
    return age_seconds > ttl_seconds
