"""Temperatures: every sensor psutil can read, and the hottest one. None where there are none.

psutil reads sensors on Linux and FreeBSD; elsewhere (Windows, most VMs) there is nothing to
report, which is not an error.
"""

from __future__ import annotations

import re

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower() or "sensor"


def reading_from(sensors: dict) -> Reading:
    """A Reading from `psutil.sensors_temperatures()`'s result: {chip: [shwtemp(label, current, ...)]}."""
    metrics: dict[str, float] = {}
    for chip, entries in sensors.items():
        for i, entry in enumerate(entries):
            if entry.current is None:
                continue
            label = _key(entry.label) if entry.label else str(i)
            name = f"temperature.{_key(chip)}.{label}"
            while name in metrics:  # two sensors with one label
                name += "_"
            metrics[name] = float(entry.current)
    if metrics:
        metrics["temperature.max"] = max(metrics.values())
    return Reading(metrics=metrics)


class TemperatureCollector:
    name = "temperatures"
    metrics = [
        MetricInfo(name="temperature.max", unit="°C", description="Hottest sensor"),
        MetricInfo(name="temperature.<chip>.<label>", unit="°C", description="Each sensor"),
    ]

    def collect(self) -> Reading:
        if not hasattr(psutil, "sensors_temperatures"):  # Windows, macOS
            return Reading()
        return reading_from(psutil.sensors_temperatures())


@hookimpl
def register_collectors(register):
    register(TemperatureCollector())
