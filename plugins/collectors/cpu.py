"""CPU: overall and per-core utilisation, and the load average where the OS has one."""

from __future__ import annotations

import os

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


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
        # psutil measures utilisation between two calls; prime it so the first cycle is meaningful.
        psutil.cpu_percent(interval=None, percpu=True)
        self._count = float(psutil.cpu_count() or 0)

    def collect(self) -> Reading:
        per_core = psutil.cpu_percent(interval=None, percpu=True)
        metrics = {"cpu.percent": round(sum(per_core) / len(per_core), 1) if per_core else 0.0,
                   "cpu.count": self._count}
        for i, value in enumerate(per_core):
            metrics[f"cpu.core{i}.percent"] = value
        if hasattr(os, "getloadavg"):
            load1, load5, load15 = os.getloadavg()
            metrics.update({"cpu.load1": load1, "cpu.load5": load5, "cpu.load15": load15})
        return Reading(metrics=metrics)


@hookimpl
def register_collectors(register):
    register(CpuCollector())
