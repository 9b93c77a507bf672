"""Uptime: seconds since boot, and the boot time.

The boot time is a static fact that psutil reads anew on every call (on Linux by scanning
/proc/stat, the dearest call of a core cycle after the swap figures), so it is read again only
every `BOOT_TIME_SECONDS`; the uptime is computed from it every cycle. The boot time only moves
when the wall clock is stepped, and then the uptime follows within that time.
"""

from __future__ import annotations

import time
from typing import Callable

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo

BOOT_TIME_SECONDS = 60.0


class UptimeCollector:
    name = "uptime"
    metrics = [
        MetricInfo(name="uptime.seconds", unit="s", description="Time since the machine booted"),
        MetricInfo(name="uptime.boot_time", unit="unix time", description="When the machine booted"),
    ]

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._boot = 0.0
        self._read_at: float | None = None

    def _boot_time(self) -> float:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= BOOT_TIME_SECONDS:
            self._boot, self._read_at = psutil.boot_time(), now
        return self._boot

    def collect(self) -> Reading:
        boot = self._boot_time()
        return Reading(metrics={"uptime.seconds": round(time.time() - boot, 1), "uptime.boot_time": boot})


@hookimpl
def register_collectors(register):
    register(UptimeCollector())
