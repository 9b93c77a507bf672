"""Query parameters of the read APIs: all optional, clamped where a range is natural, and a clear
400 when one cannot be read."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import request

from dashfleet_core.machine_view import parse_time

from .auth import ApiError


def int_param(name: str, default: int, lo: int, hi: int) -> int:
    """An integer, clamped to [lo, hi] (no error for out-of-range values)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"?{name}= must be a whole number between {lo} and {hi}, got {raw[:40]!r}") from None
    return max(lo, min(hi, value))


def time_param(name: str, default: datetime) -> datetime:
    """ISO-8601 (`2026-01-31T12:00:00Z`; no zone = UTC) or Unix seconds."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        return datetime.fromtimestamp(float(raw), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    value = parse_time(raw)
    if value is None:
        raise ApiError(400, f"?{name}= must be an ISO-8601 time such as 2026-01-31T12:00:00Z or Unix "
                            f"seconds, got {raw[:40]!r}")
    return value


def list_param(name: str) -> list[str] | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()][:64] or None
