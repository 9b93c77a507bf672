"""Disk: percent used of the system volume (`disk.percent`) and of every mounted volume."""

from __future__ import annotations

import os
import re
import sys

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo

SYSTEM_VOLUME = os.environ.get("SystemDrive", "C:") + "\\" if sys.platform == "win32" else "/"


def _volume_key(mountpoint: str) -> str:
    key = re.sub(r"[^A-Za-z0-9_]+", "_", mountpoint).strip("_")
    return key or "root"


class DiskCollector:
    name = "disk"
    metrics = [
        MetricInfo(name="disk.percent", unit="%", description="Space used on the system volume"),
        MetricInfo(name="disk.free", unit="bytes", description="Free space on the system volume"),
        MetricInfo(name="disk.total", unit="bytes", description="Size of the system volume"),
        MetricInfo(name="disk.<volume>.percent", unit="%", description="Space used on each mounted volume"),
    ]

    def collect(self) -> Reading:
        usage = psutil.disk_usage(SYSTEM_VOLUME)
        metrics = {"disk.percent": usage.percent, "disk.free": float(usage.free), "disk.total": float(usage.total)}
        for part in psutil.disk_partitions(all=False):
            if part.mountpoint == SYSTEM_VOLUME or "cdrom" in part.opts:
                continue
            try:
                metrics[f"disk.{_volume_key(part.mountpoint)}.percent"] = psutil.disk_usage(part.mountpoint).percent
            except OSError:  # a removable drive with no medium, a mount we may not read
                continue
        return Reading(metrics=metrics, facts={"disk.system_volume": SYSTEM_VOLUME})


@hookimpl
def register_collectors(register):
    register(DiskCollector())
