"""The transition tracker: turns a stream of instant health readings into a status that does not flap.

The server scores every report on its own (``Health``), so one spike makes one report critical. People
should hear about a machine only when a level holds: a threshold must be crossed for ``sustain``
samples in a row before the tracked status rises, and the value must come back past the threshold
by a ``hysteresis`` margin before it falls. Both come from ``[health]`` and may be set per metric.

The tracker is pure: ``step(state, report, health)`` takes the previous state (a small JSON dict, kept
in storage so every server process agrees) and returns the new state. An all-clear machine has an
empty state, so the common case stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import HealthSettings, Threshold
from ..health import breach
from ..models import STATUS_ORDER, STATUSES, Health, Report

STATE = "alert_state"  # kv namespace, per machine: tracker levels and streaks, silent flag (absent = all clear)


@dataclass
class Step:
    """What one sample did to a machine: the new state, and the status before and after."""

    state: dict[str, Any]
    previous: str
    status: str
    reasons: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.previous != self.status


def status_of(state: dict[str, Any] | None) -> str:
    """The tracked status stored in a state (an absent state is a healthy machine)."""
    return (state or {}).get("status", "ok")


def step(state: dict[str, Any] | None, report: Report, health: Health, policy: HealthSettings) -> Step:
    """Feed one sample to the tracker (see the module docstring for the rules)."""
    if not state and not health.findings and not _any_breach(report.metrics, policy):
        return Step(state={}, previous="ok", status="ok")  # all clear and nothing tracked: the common case
    old = dict(state or {})
    levels: dict[str, int] = dict(old.get("levels", {}))
    streaks: dict[str, list[int]] = {k: list(v) for k, v in old.get("streaks", {}).items()}
    reasons: list[str] = []

    for metric, threshold in policy.thresholds.items():
        value = report.metrics.get(metric)
        sustain = threshold.sustain or policy.sustain
        hysteresis = policy.hysteresis if threshold.hysteresis is None else threshold.hysteresis
        if value is None:  # no evidence either way: forget it
            levels.pop(metric, None)
            streaks.pop(metric, None)
            continue
        raw = STATUS_ORDER[breach(value, threshold) or "ok"]
        level = _fall(levels.get(metric, 0), value, threshold, hysteresis)
        level = _rise(level, raw, streaks, metric, sustain)
        _keep(levels, metric, level)
        if level:
            reasons.append(_metric_reason(metric, value, threshold, level, raw, hysteresis))

    # Findings that are not a configured threshold (a failing collector, a third-party check): they
    # carry no value to apply hysteresis to, so they rise after `sustain` samples and clear at once.
    other: dict[str, tuple[int, str]] = {}
    for finding in health.findings:
        if finding.source == "thresholds" and finding.metric in policy.thresholds:
            continue
        key = f"finding:{finding.source}:{finding.metric or ''}"
        level = STATUS_ORDER[finding.severity]
        if level > other.get(key, (0, ""))[0]:
            other[key] = (level, finding.message)
    for key in [k for k in set(levels) | set(streaks) if k.startswith("finding:")]:
        if key not in other:
            levels.pop(key, None)
            streaks.pop(key, None)
    for key, (raw, message) in other.items():
        level = min(levels.get(key, 0), raw)
        level = _rise(level, raw, streaks, key, policy.sustain)
        _keep(levels, key, level)
        if level:
            reasons.append(message)

    status = STATUSES[max(levels.values(), default=0)]
    new: dict[str, Any] = {k: v for k, v in old.items() if k not in ("levels", "streaks", "status")}
    if levels:
        new["levels"] = levels
    if streaks:
        new["streaks"] = streaks
    if status != "ok":
        new["status"] = status
    return Step(state=new, previous=status_of(old), status=status, reasons=reasons)


def _any_breach(metrics: dict[str, float], policy: HealthSettings) -> bool:
    """True if any configured threshold is crossed (the health checks may not all be enabled)."""
    for metric, threshold in policy.thresholds.items():
        value = metrics.get(metric)
        if value is not None and breach(value, threshold):
            return True
    return False


def _fall(level: int, value: float, threshold: Threshold, hysteresis: float) -> int:
    """Step down while the value is past the held level's threshold by the hysteresis margin."""
    while level > 0:
        limit = threshold.critical if level == 2 else threshold.warn
        cleared = value > limit + hysteresis if threshold.below else value < limit - hysteresis
        if not cleared:
            break
        level -= 1
    return level


def _rise(level: int, raw: int, streaks: dict[str, list[int]], key: str, sustain: int) -> int:
    """Count samples in a row at or above warn / critical; rise once a count reaches `sustain`."""
    warn_run, crit_run = streaks.get(key, [0, 0])
    warn_run = warn_run + 1 if raw >= 1 else 0
    crit_run = crit_run + 1 if raw >= 2 else 0
    if crit_run >= sustain:
        level = max(level, 2)
    elif warn_run >= sustain:
        level = max(level, 1)
    # Once the level is reached, the run no longer matters: keep the state empty when it can be.
    if warn_run and level < 1 or crit_run and level < 2:
        streaks[key] = [warn_run if level < 1 else 0, crit_run if level < 2 else 0]
    else:
        streaks.pop(key, None)
    return level


def _keep(levels: dict[str, int], key: str, level: int) -> None:
    if level:
        levels[key] = level
    else:
        levels.pop(key, None)


def _metric_reason(metric: str, value: float, t: Threshold, level: int, raw: int, h: float) -> str:
    name = STATUSES[level]
    limit = t.critical if level == 2 else t.warn
    word = "at or below" if t.below else "at or above"
    if raw >= level:
        return f"{metric} is {value:g}, {word} the {name} level {limit:g}"
    back = limit + h if t.below else limit - h
    side = "above" if t.below else "below"
    return f"{metric} is {value:g}, not yet {side} {back:g} ({name} level {limit:g} minus hysteresis)"
