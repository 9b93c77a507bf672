"""Uptime: seconds since boot, and the boot time."""

from __future__ import annotations

import time

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


class UptimeCollector:
    name = "uptime"
    metrics = [
        MetricInfo(name="uptime.seconds", unit="s", description="Time since the machine booted"),
        MetricInfo(name="uptime.boot_time", unit="unix time", description="When the machine booted"),
    ]

    def collect(self) -> Reading:
        boot = psutil.boot_time()
        return Reading(metrics={"uptime.seconds": round(time.time() - boot, 1), "uptime.boot_time": boot})


@hookimpl
def register_collectors(register):
    register(UptimeCollector())
