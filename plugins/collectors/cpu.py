"""CPU: overall and per-core utilisation, and the load average where the OS has one."""

from __future__ import annotations

import os
import threading
import time

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo

# Utilisation is measured between two readings of the CPU times. A figure over a few milliseconds
# is noise (often 0 % on a busy machine: no clock tick fell in between), and several callers share
# this collector (the server's self-report job, every /api/stats request). So the collector keeps
# its own primed sampler: the first figure waits out MIN_FIRST_WINDOW after priming, and a caller
# that comes sooner than MIN_WINDOW after the last figure gets that figure again.
MIN_FIRST_WINDOW = 0.1
MIN_WINDOW = 0.5


def _busy_and_total(times) -> tuple[float, float]:
    total = sum(times)
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)  # counted in user already
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _percent(before, after) -> float:
    busy0, total0 = _busy_and_total(before)
    busy1, total1 = _busy_and_total(after)
    if total1 <= total0:
        return 0.0
    return round(min(100.0, max(0.0, (busy1 - busy0) / (total1 - total0) * 100)), 1)


class CpuSampler:
    """Per-core utilisation over at least MIN_WINDOW seconds (MIN_FIRST_WINDOW for the first
    figure), from its own readings: psutil.cpu_percent's shared state would give a figure over
    whatever time passed since anyone in the process last asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times = psutil.cpu_times(percpu=True)
        self._at = time.monotonic()
        self._figure: list[float] | None = None

    def per_core(self) -> list[float]:
        with self._lock:
            elapsed = time.monotonic() - self._at
            if self._figure is not None and elapsed < MIN_WINDOW:
                return self._figure
            if self._figure is None and elapsed < MIN_FIRST_WINDOW:
                time.sleep(MIN_FIRST_WINDOW - elapsed)
            times = psutil.cpu_times(percpu=True)
            if len(times) == len(self._times):
                self._figure = [_percent(a, b) for a, b in zip(self._times, times)]
            else:  # a CPU came or went: measure again from here
                self._figure = [0.0] * len(times) if self._figure is None else self._figure
            self._times, self._at = times, time.monotonic()
            return self._figure


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
        self._sampler = CpuSampler()
        self._count = float(psutil.cpu_count() or 0)
        self._has_load = hasattr(os, "getloadavg")
        self._core_names: list[str] = []

    def collect(self) -> Reading:
        per_core = self._sampler.per_core()
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
