"""Turn findings into a score and a status.

The rule is deliberately plain so people can predict it: start at 100, take off
`PENALTY[severity]` for each finding, never below 0; the status is the worst severity found.
"""

from __future__ import annotations

from typing import Iterable, Protocol, runtime_checkable

from .config import Threshold
from .models import STATUS_ORDER, STATUSES, Finding, Health

PENALTY = {"warn": 20, "critical": 50}


@runtime_checkable
class HealthCheck(Protocol):
    """A plugin that looks at a machine's metrics and says what is wrong."""

    name: str

    def check(self, metrics: dict[str, float], thresholds: dict[str, Threshold]) -> list[Finding]:
        ...


def score(findings: Iterable[Finding]) -> Health:
    """Health from a list of findings (see module docstring)."""
    found = list(findings)
    total = 100 - sum(PENALTY[f.severity] for f in found)
    status = STATUSES[max((STATUS_ORDER[f.severity] for f in found), default=0)]
    return Health(score=max(0, min(100, total)), status=status, findings=found)


def breach(value: float, threshold: Threshold) -> str | None:
    """`critical`, `warn` or None: where `value` stands against `threshold`."""
    if threshold.below:
        if value <= threshold.critical:
            return "critical"
        if value <= threshold.warn:
            return "warn"
        return None
    if value >= threshold.critical:
        return "critical"
    if value >= threshold.warn:
        return "warn"
    return None
