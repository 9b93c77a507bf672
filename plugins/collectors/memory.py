"""Memory: RAM and swap use.

On Linux the swap figures come from /proc/meminfo's SwapTotal and SwapFree, the source and the
formula psutil.swap_memory() uses for them; that call also scans /proc/vmstat for page-in and
page-out counters this collector never reports, which made it the dearest call of a core cycle
(about twice virtual_memory()). Elsewhere, or if the file lacks those lines, psutil is asked.
"""

from __future__ import annotations

import sys

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


def _meminfo_swap() -> tuple[float, float] | None:
    """(percent, used bytes) of swap from /proc/meminfo (psutil.PROCFS_PATH), or None."""
    try:
        with open(f"{psutil.PROCFS_PATH}/meminfo", "rb") as fh:
            text = fh.read()
        total = _kib(text, b"\nSwapTotal:") * 1024
        free = _kib(text, b"\nSwapFree:") * 1024
    except (OSError, ValueError):
        return None
    used = total - free
    return (round(used / total * 100, 1) if total else 0.0), float(used)


def _kib(text: bytes, label: bytes) -> int:
    start = text.index(label) + len(label)
    return int(text[start:text.index(b"\n", start)].split()[0])


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
        swap = _meminfo_swap() if sys.platform.startswith("linux") else None
        if swap is None:
            sw = psutil.swap_memory()
            swap = sw.percent, float(sw.used)
        return Reading(metrics={
            "memory.percent": vm.percent,
            "memory.used": float(vm.used),
            "memory.available": float(vm.available),
            "memory.total": float(vm.total),
            "swap.percent": swap[0],
            "swap.used": swap[1],
        })


@hookimpl
def register_collectors(register):
    register(MemoryCollector())
