"""Processes: how many there are, and the top CPU and memory consumers (as facts).

Settings (`[plugins.processes]`): `top` = how many consumers to name (default 3, 0 to name none).
"""

from __future__ import annotations

import psutil
from pydantic import BaseModel, ConfigDict, Field

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo


class ProcessSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top: int = Field(default=3, ge=0, le=20)


class ProcessCollector:
    name = "processes"
    metrics = [
        MetricInfo(name="processes.count", unit="", description="Processes running"),
        MetricInfo(name="processes.top_cpu_percent", unit="%", description="CPU use of the busiest process since the last cycle"),
        MetricInfo(name="processes.top_memory_bytes", unit="bytes", description="Resident memory of the largest process"),
    ]

    def __init__(self, top: int = 3) -> None:
        self.top = top
        # process_iter keeps its Process objects between calls, so cpu_percent is measured since
        # the previous cycle; prime it once so the first cycle has a window.
        for _ in psutil.process_iter(["cpu_percent"]):
            pass

    def collect(self) -> Reading:
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
        return Reading(metrics=metrics, facts=facts)


@hookimpl
def register_collectors(register, settings):
    register(ProcessCollector(top=settings.plugin_settings("processes", ProcessSettings).top))
