"""What the window shows, decided without a display: values as text, the status and its colour,
the findings in the chosen language, the chart's points, the local agent's state.

Nothing here imports tkinter, so all of it is tested without a display; `window.py` only puts
these strings and numbers into widgets.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable

from dashfleet_core.alerting.tracker import step as track
from dashfleet_core.config import HealthSettings
from dashfleet_core.models import Finding, Health, Report
from dashfleet_core.text import clean

from .i18n import Translator

STATUS_COLOURS = {"ok": "#2e7d32", "warn": "#e65100", "critical": "#c62828", "unknown": "#616161"}
# The chart's series: (key, metric, colour); the key names the label (`metric.<key>`).
SERIES = (("cpu", "cpu.percent", "#1565c0"), ("ram", "memory.percent", "#6a1b9a"),
          ("disk", "disk.percent", "#00838f"))
# Longest finding text shown (a plugin's message can be long); the rest is cut with an ellipsis.
MAX_FINDING = 160
MAX_FINDINGS = 8


# --- numbers and durations -----------------------------------------------------------------------


def number(value: float, language: str, digits: int = 1) -> str:
    """`12.5` in English, `12,5` in French, Spanish and Russian."""
    text = f"{value:.{digits}f}"
    return text if language == "en" else text.replace(".", ",")


def percent(value: float | None, language: str) -> str:
    return "–" if value is None else f"{number(value, language)} %"


def duration(seconds: float, t: Translator) -> str:
    """`3 d 4 h`, `2 h 5 min`, `4 min 2 s`, `12 s` with the language's unit names."""
    secs = max(0, int(seconds))
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        return f"{days} {t('unit.d')} {hours} {t('unit.h')}"
    if hours:
        return f"{hours} {t('unit.h')} {mins} {t('unit.min')}"
    if mins:
        return f"{mins} {t('unit.min')} {secs} {t('unit.s')}"
    return f"{secs} {t('unit.s')}"


def clock(moment: datetime) -> str:
    """A time in the machine's own zone, as the person at it reads the clock: the time of day
    for today, the date too for an earlier day."""
    local = moment.astimezone()
    if local.date() == date.today():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


# --- findings and status -------------------------------------------------------------------------


def finding_text(finding: Finding, t: Translator, thresholds: dict[str, Any] | None = None) -> str:
    """A threshold finding in the window's language; any other finding (a failing collector, a
    plugin's check) as its own message, with control and bidi characters removed."""
    if finding.metric and finding.value is not None and finding.threshold is not None:
        below = bool(thresholds and finding.metric in thresholds and thresholds[finding.metric].below)
        name = _metric_name(finding.metric, t)
        return t("finding.below" if below else "finding.above", metric=name,
                 value=number(finding.value, t.language, 1 if finding.value % 1 else 0),
                 severity=t(f"severity.{finding.severity}"),
                 threshold=number(finding.threshold, t.language, 1 if finding.threshold % 1 else 0))
    return clean(finding.message, MAX_FINDING)


def _metric_name(metric: str, t: Translator) -> str:
    for key, name, _colour in SERIES:
        if name == metric:
            return t(f"metric.{key}")
    return clean(metric, 64)


class StatusTracker:
    """The status the window shows: the same sustain and hysteresis as the server's alerts
    (`[health] sustain`, `hysteresis`), so one spike does not turn the window red."""

    def __init__(self, policy: HealthSettings) -> None:
        self.policy = policy
        self._state: dict[str, Any] = {}

    def update(self, report: Report, health: Health) -> str:
        result = track(self._state, report, health, self.policy)
        self._state = result.state
        return result.status


@dataclass
class Reading:
    """One snapshot as the window shows it."""

    values: dict[str, str]          # cpu, ram, disk, uptime
    score: str
    status: str                     # ok, warn, critical
    status_text: str
    colour: str
    findings: list[tuple[str, str]]  # (severity, text), worst first
    updated: str
    hostname: str


def reading(report: Report, health: Health, status: str, t: Translator,
            thresholds: dict[str, Any] | None = None) -> Reading:
    metrics = report.metrics
    uptime = metrics.get("uptime.seconds")
    values = {key: percent(metrics.get(name), t.language) for key, name, _c in SERIES}
    values["uptime"] = "–" if uptime is None else duration(uptime, t)
    ranked = sorted(health.findings, key=lambda f: f.severity != "critical")
    findings = [(f.severity, finding_text(f, t, thresholds)) for f in ranked[:MAX_FINDINGS]]
    return Reading(values=values, score=f"{health.score}/100", status=status,
                   status_text=t(f"status.{status}"), colour=STATUS_COLOURS[status], findings=findings,
                   updated=t("live.updated", time=clock(report.collected_at)),
                   hostname=clean(report.hostname, 80))


# --- history and chart ---------------------------------------------------------------------------


@dataclass
class History:
    """The snapshots of the last `span` seconds: the chart's points, and what the CSV export
    writes (the window keeps each snapshot's report and health, turned into export records only
    when an export asks for them)."""

    span: float
    samples: deque = field(default_factory=deque)   # (unix time, {key: value})
    records: deque = field(default_factory=deque)   # (unix time, what the export writes from)

    def add(self, at: float, metrics: dict[str, float], record: Any = None) -> None:
        self.samples.append((at, {key: metrics[name] for key, name, _c in SERIES if name in metrics}))
        if record is not None:
            self.records.append((at, record))
        for queue in (self.samples, self.records):
            while queue and queue[0][0] < at - self.span:
                queue.popleft()

    def export_records(self) -> list[Any]:
        """What was added with each snapshot still held, oldest first."""
        return [record for _at, record in self.records]


def chart_lines(samples: Iterable[tuple[float, dict[str, float]]], span: float, width: int, height: int,
                pad: int = 4, now: float | None = None) -> dict[str, list[float]]:
    """Canvas coordinates `[x0, y0, x1, y1, ...]` per series: time runs left to right over the
    last `span` seconds ending at the newest sample (or `now`), or over the time the samples
    cover while that is shorter; 0-100 % bottom to top.

    Recomputed for every refresh over the whole history (the x of every point moves), so kept to
    plain arithmetic: no rounding (Tk takes the floats as they are)."""
    samples = list(samples)
    lines: dict[str, list[float]] = {key: [] for key, _n, _c in SERIES}
    if not samples:
        return lines
    end = samples[-1][0] if now is None else now
    # Until the history covers the span, its samples fill the width rather than a corner of it.
    span = min(span, end - samples[0][0]) if end > samples[0][0] else span
    inner_w, inner_h = max(1, width - 2 * pad), max(1, height - 2 * pad)
    x_per_second = inner_w / span if span > 0 else 0.0
    right, bottom, y_per_percent = pad + inner_w, pad + inner_h, inner_h / 100
    for at, values in samples:
        x = right - (end - at) * x_per_second
        if x < pad:
            continue
        for key, value in values.items():
            line = lines[key]
            line.append(x)
            line.append(bottom - (100.0 if value > 100 else 0.0 if value < 0 else value) * y_per_percent)
    return lines


# --- the local agent -----------------------------------------------------------------------------

# An agent writes its status every interval; silence for this many intervals (at least a minute)
# means it is probably not running.
STALE_INTERVALS = 3


def agent_rows(doc: dict[str, Any], t: Translator, now: float | None = None) -> list[tuple[str, str]]:
    """(label, value) rows of the local agent's status document (`dashfleet_agent.status_file`).

    The file is readable by every local user, so its text is cleaned like any text from outside."""
    now = time.time() if now is None else now
    rows = [(t("agent.state"), t("agent.running") if doc.get("running") else t("agent.stopped"))]
    if doc.get("server"):
        rows.append((t("agent.server"), clean(doc["server"], 120)))
    last = doc.get("last_delivery")
    if isinstance(last, dict) and last.get("at"):
        rows.append((t("agent.last_delivery"), t("agent.delivered", time=_when(last["at"]),
                                                 count=_int(last.get("count")))))
    else:
        rows.append((t("agent.last_delivery"), t("agent.never")))
    rows.append((t("agent.spool"), str(_int(doc.get("spool_depth")))))
    rows.append((t("agent.dead"), str(_int(doc.get("dead_lettered")))))
    rows.append((t("agent.dropped"), str(_int(doc.get("spool_dropped")))))
    err = doc.get("last_error")
    if isinstance(err, dict) and err.get("message"):
        rows.append((t("agent.error"), f"{_when(err.get('at'))}: {clean(err['message'], 200)}"))
    updated = _parse(doc.get("updated_at"))
    if updated is not None:
        text = clock(updated)
        stale = stale_at(doc)
        if stale is not None and now > stale:
            text = t("agent.stale", time=text, age=duration(now - updated.timestamp(), t))
        rows.append((t("agent.updated"), text))
    return rows


def stale_at(doc: dict[str, Any]) -> float | None:
    """When a running agent's status turns stale if no newer one comes (unix time), else None."""
    updated = _parse(doc.get("updated_at"))
    if not doc.get("running") or updated is None:
        return None
    interval = doc.get("interval") if isinstance(doc.get("interval"), (int, float)) else 10
    return updated.timestamp() + max(60.0, STALE_INTERVALS * interval)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _when(value: Any) -> str:
    moment = _parse(value)
    return clock(moment) if moment else "?"
