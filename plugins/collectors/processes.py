"""Processes: how many there are (every cycle), and the top CPU and memory consumers (every scan).

Counting processes is one directory listing; naming the top consumers means reading every
process's CPU times and memory (about 14 ms of CPU for 80 processes), which at a 10 s interval
alone costs more than the agent's whole CPU budget. So the scan runs at most once every
`scan_seconds`, and the cycles in between say what they know and no more:

- `processes.count` is measured every cycle;
- `processes.top_cpu_percent` and `processes.top_memory_bytes` are sent only by the cycle that
  scanned (a chart shows one point per scan, never a repeated value that looks measured);
- the facts `processes.top_cpu` and `processes.top_memory` name the consumers of the last scan,
  with `processes.scanned_at` (ISO-8601 UTC) saying when it ran and `processes.cpu_window_seconds`
  what period the CPU percentages cover (the time since the scan before it).

Settings (`[plugins.processes]`): `top` = how many consumers to name (default 3, 0 to name none);
`scan_seconds` = least time between two scans (default 60, 0 to scan every cycle).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

import psutil
from pydantic import BaseModel, ConfigDict, Field

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


class ProcessSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top: int = Field(default=3, ge=0, le=20)
    scan_seconds: float = Field(default=60, ge=0, le=86400)


class ProcessCollector:
    name = "processes"
    metrics = [
        MetricInfo(name="processes.count", unit="", description="Processes running"),
        MetricInfo(name="processes.top_cpu_percent", unit="%",
                   description="CPU use of the busiest process since the scan before (sent by scanning cycles only)"),
        MetricInfo(name="processes.top_memory_bytes", unit="bytes",
                   description="Resident memory of the largest process (sent by scanning cycles only)"),
    ]

    def __init__(self, top: int = 3, scan_seconds: float = 60,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.top = top
        self.scan_seconds = scan_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_scan: float | None = None
        self._facts: dict[str, str] = {}
        # process_iter keeps its Process objects between calls, so cpu_percent is measured since
        # the previous scan; prime it once so the first scan has a window.
        for _ in psutil.process_iter(["cpu_percent"]):
            pass
        self._primed = self._clock()

    def collect(self) -> Reading:
        now = self._clock()
        if self._last_scan is None or now - self._last_scan >= self.scan_seconds:
            reading = self._scan(now)
        else:
            reading = Reading(metrics={"processes.count": float(len(psutil.pids()))}, facts=dict(self._facts))
        return reading

    def _scan(self, now: float) -> Reading:
        window = now - (self._last_scan if self._last_scan is not None else self._primed)
        self._last_scan = now
        rows = []
        for proc in psutil.process_iter(["name", "cpu_percent", "memory_info"]):
            info = proc.info
            mem = info.get("memory_info")
            rows.append((info.get("cpu_percent") or 0.0, mem.rss if mem is not None else 0,
                         info.get("name") or "?", proc.pid))
        metrics: dict[str, float] = {"processes.count": float(len(rows))}
        facts: dict[str, str] = {}
        if rows:
            by_cpu = sorted(rows, key=lambda r: r[0], reverse=True)
            by_mem = sorted(rows, key=lambda r: r[1], reverse=True)
            metrics["processes.top_cpu_percent"] = float(by_cpu[0][0])
            metrics["processes.top_memory_bytes"] = float(by_mem[0][1])
            if self.top:
                facts["processes.top_cpu"] = ", ".join(
                    f"{name} ({pid}) {cpu:.1f}%" for cpu, _, name, pid in by_cpu[: self.top])
                facts["processes.top_memory"] = ", ".join(
                    f"{name} ({pid}) {rss / 2**20:.0f} MiB" for _, rss, name, pid in by_mem[: self.top])
                facts["processes.scanned_at"] = self._wall_clock().isoformat(timespec="seconds")
                facts["processes.cpu_window_seconds"] = f"{window:.0f}"
        self._facts = facts
        return Reading(metrics=metrics, facts=dict(facts))


@hookimpl
def register_collectors(register, settings):
    options = settings.plugin_settings("processes", ProcessSettings)
    register(ProcessCollector(top=options.top, scan_seconds=options.scan_seconds))
