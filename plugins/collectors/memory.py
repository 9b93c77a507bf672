"""Memory: RAM and swap use."""

from __future__ import annotations

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


class MemoryCollector:
    name = "memory"
    metrics = [
        MetricInfo(name="memory.percent", unit="%", description="RAM in use"),
        MetricInfo(name="memory.used", unit="bytes", description="RAM in use"),
        MetricInfo(name="memory.available", unit="bytes", description="RAM available without swapping"),
        MetricInfo(name="memory.total", unit="bytes", description="Installed RAM"),
        MetricInfo(name="swap.percent", unit="%", description="Swap in use"),
        MetricInfo(name="swap.used", unit="bytes", description="Swap in use"),
    ]

    def collect(self) -> Reading:
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        return Reading(metrics={
            "memory.percent": vm.percent,
            "memory.used": float(vm.used),
            "memory.available": float(vm.available),
            "memory.total": float(vm.total),
            "swap.percent": sw.percent,
            "swap.used": float(sw.used),
        })


@hookimpl
def register_collectors(register):
    register(MemoryCollector())
