"""The collector contract: what a plugin registered through `register_collectors` must provide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .models import MetricInfo


@dataclass
class Reading:
    """What one collector saw in one cycle: numeric metrics and text facts.

    A metric the machine does not have (no battery, no sensors) is simply absent, not an error.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Collector(Protocol):
    """A source of metrics. `metrics` describes what it measures (name, unit, description)."""

    name: str
    metrics: list[MetricInfo]

    def collect(self) -> Reading:
        """Measure now. Raise on failure: the engine turns the error into a finding."""
        ...
