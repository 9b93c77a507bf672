"""The fleet as the API and the pages show it, as JSON: machines with `expired`, the top reason and
any maintenance window (the rules are `dashfleet_core.machine_view`'s), built from storage in one
pass (shared by `/api/fleet` and `/metrics`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from dashfleet_core.fleet import Fleet
from dashfleet_core.machine_view import WHOLE_FLEET, is_expired, live_state, top_finding
from dashfleet_core.machine_view import maintenance_windows as _windows
from dashfleet_core.models import DEFAULT_ORG, Finding, MachineState, as_utc, utcnow
KEY_METRICS = ("cpu.percent", "memory.percent", "disk.percent", "uptime.seconds")


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z` (storage already gives UTC datetimes: the fast path)."""
    if value is None:
        return None
    text = value.isoformat()
    if text.endswith("+00:00"):  # any UTC tzinfo (pydantic's own too): no conversion needed
        return text[:-6] + "Z"
    return as_utc(value).isoformat()[:-6] + "Z"


def maintenance_windows(fleet: Fleet, org: str = DEFAULT_ORG, now: datetime | None = None) -> dict[str, dict]:
    """The maintenance windows in force for `fleet` (see `dashfleet_core.machine_view`)."""
    return _windows(fleet.storage, fleet.settings.alerts.maintenance, org, now)


def finding_json(f: Finding) -> dict[str, Any]:
    return {"metric": f.metric, "value": f.value, "threshold": f.threshold,
            "severity": f.severity, "message": f.message, "source": f.source}


def machine_json(m: MachineState, *, now: datetime, ttl: float, windows: dict[str, dict],
                 full: bool = False) -> dict[str, Any]:
    """One machine for the API. The list (`full=False`) carries the key metrics only."""
    # This runs once per machine on every fleet refresh: keep it to plain dict work.
    last_seen = m.last_seen if m.last_seen.tzinfo is timezone.utc else as_utc(m.last_seen)
    age, window = live_state(m.machine_id, last_seen, now, windows)
    findings = m.health.findings
    top = (findings[0] if len(findings) == 1 else top_finding(findings)) if findings else None
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
        "expired": is_expired(age, ttl),
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
    """`GET /api/fleet`: every machine seen within `[server] list_hide_days`, with `expired`."""
    now = utcnow()
    server = fleet.settings.server
    machines = fleet.storage.machines(org=org, seen_since=now - timedelta(days=server.list_hide_days))
    windows = maintenance_windows(fleet, org, now)
    items = [machine_json(m, now=now, ttl=server.ttl_seconds, windows=windows) for m in machines]
    items.sort(key=lambda d: (d["hostname"] or d["machine_id"]).lower())
    return {"generated_at": iso(now), "ttl_seconds": server.ttl_seconds,
            "list_hide_days": server.list_hide_days, "purge_days": server.list_hide_days,
            "count": len(items), "machines": items,
            "maintenance_all_until": iso(windows[WHOLE_FLEET]["until"]) if WHOLE_FLEET in windows else None}


SEVERITY_ORDER = ("critical", "warn", "silent", "ok")  # the worst first


def fleet_summary(fleet: Fleet, org: str = DEFAULT_ORG, now: datetime | None = None) -> dict[str, Any]:
    """`GET /api/summary`: how many machines of `/api/fleet`'s list are in each shown status (a
    silent machine counts as `silent`, whatever it said last) and the worst one present, for a
    page's title and favicon. No per-machine document is built: the counts only."""
    now = now or utcnow()
    server = fleet.settings.server
    counts = dict.fromkeys(SEVERITY_ORDER, 0)
    for m in fleet.storage.machines(org=org, seen_since=now - timedelta(days=server.list_hide_days)):
        last_seen = m.last_seen if m.last_seen.tzinfo is timezone.utc else as_utc(m.last_seen)
        expired = is_expired(max(0.0, (now - last_seen).total_seconds()), server.ttl_seconds)
        counts["silent" if expired else m.health.status] += 1
    worst = next((status for status in SEVERITY_ORDER if counts[status]), None)
    return {"generated_at": iso(now), "count": sum(counts.values()), **counts, "worst": worst}


# --- `GET /api/fleet` as JSON text -----------------------------------------------------------------
# The fleet list is read every few seconds while each machine changes about once a minute, and
# storage hands back the same MachineState object while a machine's row is unchanged. So each
# machine's entry is serialised once, as JSON text around the three fields that change with the
# clock or the maintenance windows (age_seconds, expired, maintenance_until), and a request
# only fills those in.

# what the app's JSON provider writes (compact, ensure_ascii), with one encoder made once
_encode = json.JSONEncoder(separators=(",", ":")).encode
_quote = json.encoder.encode_basestring_ascii  # a JSON string literal, in C


def _number(value: Any) -> str:
    """A JSON number as the encoder writes it (floats by repr; NaN and infinities its way)."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    return float.__repr__(value) if kind is float and value - value == 0 else _encode(value)


class _Entry:
    """One machine's list entry as JSON text: four pieces around its three live values
    (age_seconds, expired, maintenance_until)."""

    __slots__ = ("state", "last_seen", "sort_key", "pieces")

    def __init__(self, m: MachineState) -> None:
        self.state = m  # kept alive, so its id() cannot be reused while it is cached
        self.last_seen = m.last_seen if m.last_seen.tzinfo is timezone.utc else as_utc(m.last_seen)
        self.sort_key = (m.hostname or m.machine_id).lower()
        # written directly (cheaper than machine_json + the encoder: the first read after a
        # start, or after the whole fleet reported, builds every entry); the same text as
        # `_encode(machine_json(m, ...))`, which tests/test_fleet_list_text.py checks byte for byte
        q, metrics, findings = _quote, m.metrics, m.health.findings
        top = (findings[0] if len(findings) == 1 else top_finding(findings)) if findings else None
        shown = ",".join([f"{q(k)}:{_number(metrics[k])}" for k in KEY_METRICS if k in metrics])
        self.pieces = (
            f'{{"machine_id":{q(m.machine_id)},"hostname":{q(m.hostname)},"os":{q(m.os)},'
            f'"agent_version":{q(m.agent_version)},"status":{q(m.health.status)},'
            f'"score":{_number(m.health.score)},'
            f'"top_reason":{_encode(finding_json(top)) if top else "null"},"metrics":{{{shown}}},'
            f'"last_seen":{q(iso(self.last_seen))},"collected_at":{q(iso(m.collected_at))},"age_seconds":',
            ',"expired":', ',"maintenance_until":', f',"spool_dropped":{_number(m.spool_dropped)}}}')

    def render(self, now: datetime, ttl: float, windows: dict[str, dict]) -> str:
        age, window = live_state(self.state.machine_id, self.last_seen, now, windows)
        until = _encode(iso(window["until"])) if window else "null"
        p = self.pieces
        return f"{p[0]}{round(age, 1)!r}{p[1]}{'true' if is_expired(age, ttl) else 'false'}{p[2]}{until}{p[3]}"


_entries: dict[str, dict[int, _Entry]] = {}  # by organisation: a reader of one does not evict another's


def fleet_list_text(fleet: Fleet, org: str = DEFAULT_ORG, now: datetime | None = None) -> str:
    """`fleet_json` as the JSON text the app would write for it (same keys, order and values),
    reusing each unchanged machine's serialised entry from the previous request."""
    now = now or utcnow()
    server = fleet.settings.server
    machines = fleet.storage.machines(org=org, seen_since=now - timedelta(days=server.list_hide_days))
    windows = maintenance_windows(fleet, org, now)
    known = _entries.get(org, {})
    entries = [known.get(id(m)) for m in machines]
    entries = [e if e is not None and e.state is m else _Entry(m) for e, m in zip(entries, machines)]
    # only this request's machines stay cached, per organisation (one fleet per process in
    # practice; each organisation's dict is replaced whole, so safe for threads). An entry is
    # used only for the very MachineState object storage handed back for this organisation.
    _entries[org] = {id(e.state): e for e in entries}
    entries.sort(key=lambda e: e.sort_key)
    ttl = server.ttl_seconds
    head = _encode({"generated_at": iso(now), "ttl_seconds": ttl, "list_hide_days": server.list_hide_days,
                    "purge_days": server.list_hide_days,
                    "count": len(entries)})[:-1]
    whole = _encode(iso(windows[WHOLE_FLEET]["until"]) if WHOLE_FLEET in windows else None)
    return (head + ',"machines":[' + ",".join([e.render(now, ttl, windows) for e in entries])
            + '],"maintenance_all_until":' + whole + "}\n")
