"""CPU: overall and per-core utilisation, and the load average where the OS has one."""

from __future__ import annotations

import os
import time

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo

# psutil measures utilisation between two calls. A first reading taken sooner than this after the
# priming call would be noise (often 0 %), so the first collect waits out the rest of it.
MIN_FIRST_WINDOW = 0.1


class CpuCollector:
    name = "cpu"
    metrics = [
        MetricInfo(name="cpu.percent", unit="%", description="CPU utilisation, all cores, since the last cycle"),
        MetricInfo(name="cpu.core<N>.percent", unit="%", description="Utilisation of core N"),
        MetricInfo(name="cpu.count", unit="", description="Logical CPUs"),
        MetricInfo(name="cpu.load1", unit="", description="1-minute load average (not on Windows)"),
        MetricInfo(name="cpu.load5", unit="", description="5-minute load average (not on Windows)"),
        MetricInfo(name="cpu.load15", unit="", description="15-minute load average (not on Windows)"),
    ]

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None, percpu=True)
        self._primed_at: float | None = time.monotonic()
        self._count = float(psutil.cpu_count() or 0)
        self._has_load = hasattr(os, "getloadavg")
        self._core_names: list[str] = []

    def collect(self) -> Reading:
        if self._primed_at is not None:
            wait = MIN_FIRST_WINDOW - (time.monotonic() - self._primed_at)
            if wait > 0:
                time.sleep(wait)
            self._primed_at = None
        per_core = psutil.cpu_percent(interval=None, percpu=True)
        metrics = {"cpu.percent": round(sum(per_core) / len(per_core), 1) if per_core else 0.0,
                   "cpu.count": self._count}
        names = self._core_names
        if len(names) != len(per_core):  # cached: the names only change if CPUs come and go
            names = self._core_names = [f"cpu.core{i}.percent" for i in range(len(per_core))]
        metrics.update(zip(names, per_core))
        if self._has_load:
            metrics["cpu.load1"], metrics["cpu.load5"], metrics["cpu.load15"] = os.getloadavg()
        return Reading(metrics=metrics)


@hookimpl
def register_collectors(register):
    register(CpuCollector())
