"""Disk: percent used of the system volume (`disk.percent`) and of every mounted volume.

Listing the mounted volumes is the dearest call of a core cycle (about a quarter of its CPU on
Linux, where it parses /proc/self/mounts), and the list rarely changes, so it is read again only
every `PARTITIONS_SECONDS`: a newly mounted volume shows up within that time. Every cycle still
checks that each listed mount point is mounted, so an unmounted volume is dropped at once rather
than reported with the usage of the folder under it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Callable

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo

SYSTEM_VOLUME = os.environ.get("SystemDrive", "C:") + "\\" if sys.platform == "win32" else "/"
PARTITIONS_SECONDS = 60.0


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

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._mountpoints: list[str] = []
        self._listed_at: float | None = None

    def _other_volumes(self) -> list[str]:
        """Mount points other than the system volume, from a list at most PARTITIONS_SECONDS old."""
        now = self._clock()
        if self._listed_at is None or now - self._listed_at >= PARTITIONS_SECONDS:
            self._mountpoints = [part.mountpoint for part in psutil.disk_partitions(all=False)
                                 if part.mountpoint != SYSTEM_VOLUME and "cdrom" not in part.opts]
            self._listed_at = now
        return [m for m in self._mountpoints if os.path.ismount(m)]

    def collect(self) -> Reading:
        usage = psutil.disk_usage(SYSTEM_VOLUME)
        metrics = {"disk.percent": usage.percent, "disk.free": float(usage.free), "disk.total": float(usage.total)}
        for mountpoint in self._other_volumes():
            try:
                metrics[f"disk.{_volume_key(mountpoint)}.percent"] = psutil.disk_usage(mountpoint).percent
            except OSError:  # a removable drive with no medium, a mount we may not read
                continue
        return Reading(metrics=metrics, facts={"disk.system_volume": SYSTEM_VOLUME})


@hookimpl
def register_collectors(register):
    register(DiskCollector())
