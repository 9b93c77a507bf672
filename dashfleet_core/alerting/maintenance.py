"""Maintenance windows: while one covers a machine, its events are stored but nobody is told.

Windows come from two places. The API writes them into storage (kv namespace ``maintenance``, key
= machine id or ``*`` for the whole fleet, value ``{"until": ISO-8601 UTC, "reason", "by"}``, expiring
at ``until``) so every server process and the fleet page see them. Config adds fixed or daily ones
(``[[alerts.maintenance]]``). ``active_windows`` merges both under one key per window.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from ..config import MaintenanceWindow
from ..models import DEFAULT_ORG, as_utc

NAMESPACE = "maintenance"
SEEN_WINDOWS = "alert_windows"  # kv namespace: windows the alert job has seen start (to notice their end)
FLEET = "*"


def parse_until(text: str) -> datetime:
    """An ISO-8601 time as aware UTC (a naive one is taken as UTC)."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def config_window_bounds(window: MaintenanceWindow, now: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of a config window that contains `now`, or None."""
    if window.daily:
        start_s, end_s = window.daily.split("-")
        start_t, end_t = time.fromisoformat(start_s), time.fromisoformat(end_s)
        for day in (now.date() - timedelta(days=1), now.date()):
            start = datetime.combine(day, start_t, tzinfo=now.tzinfo)
            end = datetime.combine(day, end_t, tzinfo=now.tzinfo)
            if end <= start:  # crosses midnight
                end += timedelta(days=1)
            if start <= now < end:
                return start, end
        return None
    start = as_utc(window.start) if window.start else None
    until = as_utc(window.until) if window.until else None
    if (start is None or start <= now) and until is not None and now < until:
        return start or now, until
    return None


def active_windows(storage, windows: list[MaintenanceWindow], now: datetime,
                   org: str = DEFAULT_ORG) -> dict[str, dict[str, Any]]:
    """Every window in force now, by key: stored ones by machine id / ``*``, config ones
    ``config-<n>``. Each value has ``machine`` (an id or ``*``), ``until``, ``reason`` and ``by``."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in storage.kv_list(NAMESPACE, org=org).items():
        if not isinstance(value, dict):  # not written by the API: nothing to honour or show
            continue
        try:
            until = parse_until(str(value.get("until", "")))
        except ValueError:
            continue
        if until > now:
            found[key] = {**value, "machine": key}
    for n, window in enumerate(windows):
        if window.org != org:
            continue
        bounds = config_window_bounds(window, now)
        if bounds is not None:
            found[f"config-{n}"] = {
                "machine": window.machine, "until": bounds[1].isoformat(),
                "reason": window.reason or "configured maintenance window", "by": "config",
            }
    return found


def covering(windows: dict[str, dict[str, Any]], machine_id: str) -> dict[str, Any] | None:
    """The window that covers a machine (its own first, then the fleet's), or None."""
    own = [w for w in windows.values() if w["machine"] == machine_id]
    fleet = [w for w in windows.values() if w["machine"] == FLEET]
    chosen = own or fleet
    return max(chosen, key=lambda w: w["until"]) if chosen else None


def windows_by_machine(storage, windows: list[MaintenanceWindow], now: datetime,
                       org: str = DEFAULT_ORG) -> dict[str, dict[str, Any]]:
    """Windows in force by machine id (``*`` = the fleet), stored and configured together, the
    later-ending one where both cover the same key: what the fleet page shows."""
    merged: dict[str, dict[str, Any]] = {}
    for window in active_windows(storage, windows, now, org).values():
        key = window["machine"]
        if key not in merged or window["until"] > merged[key]["until"]:
            merged[key] = {k: window.get(k, "") for k in ("until", "reason", "by")}
    return merged
