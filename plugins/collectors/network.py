"""Network: bytes, errors and drops per second on all interfaces, since the last cycle."""

from __future__ import annotations

import time

import psutil

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import MetricInfo

# metric name -> psutil.net_io_counters() field(s) summed
RATES = {
    "network.sent_bytes_per_s": ("bytes_sent",),
    "network.recv_bytes_per_s": ("bytes_recv",),
    "network.errors_in_per_s": ("errin",),
    "network.errors_out_per_s": ("errout",),
    "network.drops_per_s": ("dropin", "dropout"),
}


class NetworkCollector:
    name = "network"
    metrics = [
        MetricInfo(name="network.sent_bytes_per_s", unit="B/s", description="Bytes sent per second, all interfaces"),
        MetricInfo(name="network.recv_bytes_per_s", unit="B/s", description="Bytes received per second, all interfaces"),
        MetricInfo(name="network.errors_in_per_s", unit="/s", description="Receive errors per second"),
        MetricInfo(name="network.errors_out_per_s", unit="/s", description="Send errors per second"),
        MetricInfo(name="network.drops_per_s", unit="/s", description="Packets dropped per second, in and out"),
    ]

    def __init__(self) -> None:
        # Rates need two readings: take the first now so the first cycle already has a window.
        self._last = psutil.net_io_counters()
        self._last_at = time.monotonic()

    def collect(self) -> Reading:
        now_counters = psutil.net_io_counters()
        now = time.monotonic()
        if now_counters is None:  # no network interfaces at all
            return Reading()
        elapsed = now - self._last_at
        metrics: dict[str, float] = {}
        if self._last is not None and elapsed > 0:
            for metric, fields in RATES.items():
                delta = sum(getattr(now_counters, f) - getattr(self._last, f) for f in fields)
                # counters can reset (an interface removed); a negative step is not traffic
                metrics[metric] = round(max(delta, 0) / elapsed, 1)
        self._last, self._last_at = now_counters, now
        return Reading(metrics=metrics)


@hookimpl
def register_collectors(register):
    register(NetworkCollector())
