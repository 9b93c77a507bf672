"""The threshold health check: warn / critical levels per metric, from `[health.thresholds]`."""

from __future__ import annotations

from dashfleet_core import hookimpl
from dashfleet_core.config import Threshold
from dashfleet_core.health import breach
from dashfleet_core.models import Finding


class ThresholdCheck:
    name = "thresholds"

    def check(self, metrics: dict[str, float], thresholds: dict[str, Threshold]) -> list[Finding]:
        findings = []
        for metric, threshold in thresholds.items():
            value = metrics.get(metric)
            if value is None:
                continue
            severity = breach(value, threshold)
            if severity is None:
                continue
            limit = threshold.critical if severity == "critical" else threshold.warn
            word = "at or below" if threshold.below else "at or above"
            findings.append(
                Finding(
                    metric=metric,
                    value=value,
                    threshold=limit,
                    severity=severity,
                    message=f"{metric} is {value:g}, {word} the {severity} level {limit:g}",
                    source=self.name,
                )
            )
        return findings


@hookimpl
def register_health_checks(register):
    register(ThresholdCheck())
