"""Prometheus exposition for `/metrics`: the fleet's state at scrape time, read from storage (so
every worker answers the same), plus this process's ingest counters. One registry per app."""

from __future__ import annotations

from flask import Flask, current_app
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

from .fleetview import fleet_json

EXTENSION = "dashfleet_metrics"
STATUSES = ("ok", "warn", "critical")
PER_MACHINE = (("cpu.percent", "dashfleet_machine_cpu_percent", "CPU utilisation, percent"),
               ("memory.percent", "dashfleet_machine_memory_percent", "Memory used, percent"),
               ("disk.percent", "dashfleet_machine_disk_percent", "Fullest disk used, percent"))


class FleetCollector:
    """Builds the fleet gauges on each scrape from the same view as `GET /api/fleet`."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        fleet = self.app.extensions["dashfleet"]
        doc = fleet_json(fleet)
        machines = doc["machines"]
        by_status = GaugeMetricFamily("dashfleet_machines", "Machines reporting (not expired), by health status",
                                      labels=["status"])
        for status in STATUSES:
            by_status.add_metric([status], sum(1 for m in machines if not m["expired"] and m["status"] == status))
        yield by_status
        yield GaugeMetricFamily("dashfleet_machines_expired", "Machines silent longer than FLEET_TTL_SECONDS",
                                value=sum(1 for m in machines if m["expired"]))
        labels = ["machine_id", "hostname"]
        score = GaugeMetricFamily("dashfleet_machine_health_score", "Health score 0-100", labels=labels)
        up = GaugeMetricFamily("dashfleet_machine_up", "1 if the machine reported within the TTL", labels=labels)
        seen = GaugeMetricFamily("dashfleet_machine_last_seen_age_seconds", "Seconds since the last report",
                                 labels=labels)
        per_metric = [(key, GaugeMetricFamily(name, text, labels=labels)) for key, name, text in PER_MACHINE]
        for m in machines:
            ids = [m["machine_id"], m["hostname"]]
            score.add_metric(ids, m["score"])
            up.add_metric(ids, 0 if m["expired"] else 1)
            seen.add_metric(ids, m["age_seconds"])
            for key, family in per_metric:
                if key in m["metrics"]:
                    family.add_metric(ids, m["metrics"][key])
        yield from (score, up, seen)
        yield from (family for _, family in per_metric)


def init_app(app: Flask) -> None:
    registry = CollectorRegistry()
    received = Counter("dashfleet_reports_received", "Reports received by this server process, by result",
                       ["result"], registry=registry)
    registry.register(FleetCollector(app))
    app.extensions[EXTENSION] = {
        "registry": registry,
        "received": {r: received.labels(result=r) for r in ("stored", "duplicate", "rejected")},
    }


def count_reports(result: str, n: int = 1) -> None:
    if n:
        current_app.extensions[EXTENSION]["received"][result].inc(n)


def registry() -> CollectorRegistry:
    return current_app.extensions[EXTENSION]["registry"]
