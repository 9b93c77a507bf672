"""Battery: charge and whether it is plugged in. A machine without a battery reports nothing."""

from __future__ import annotations

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


def reading_from(battery) -> Reading:
    """A Reading from `psutil.sensors_battery()`'s result (None when there is no battery)."""
    if battery is None:
        return Reading()
    metrics = {"battery.percent": float(battery.percent),
               "battery.plugged": 1.0 if battery.power_plugged else 0.0}
    secs = battery.secsleft
    if isinstance(secs, (int, float)) and secs >= 0:  # not POWER_TIME_UNKNOWN / UNLIMITED
        metrics["battery.seconds_left"] = float(secs)
    return Reading(metrics=metrics)


class BatteryCollector:
    name = "battery"
    metrics = [
        MetricInfo(name="battery.percent", unit="%", description="Charge left"),
        MetricInfo(name="battery.plugged", unit="bool", description="1 when on mains power"),
        MetricInfo(name="battery.seconds_left", unit="s", description="Estimated time left on battery"),
    ]

    def collect(self) -> Reading:
        if not hasattr(psutil, "sensors_battery"):  # the platform has no battery API
            return Reading()
        return reading_from(psutil.sensors_battery())


@hookimpl
def register_collectors(register):
    register(BatteryCollector())
