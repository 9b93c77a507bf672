"""Prometheus exposition for `/metrics`: the state of the scraper's organisation at scrape time,
read from storage (so every worker answers the same), plus, for the server operator only, this
process's ingest counters (they count every organisation's reports). A registry per scrape.

prometheus_client is imported on the first scrape, not at start: the counters are plain integers
until then, so a server nobody scrapes does not carry it in every worker."""

from __future__ import annotations

import threading

from flask import Flask, current_app

from dashfleet_core.models import STATUSES

from .fleetview import fleet_json

EXTENSION = "dashfleet_metrics"
RESULTS = ("stored", "duplicate", "rejected")
PER_MACHINE = (("cpu.percent", "dashfleet_machine_cpu_percent", "CPU utilisation, percent"),
               ("memory.percent", "dashfleet_machine_memory_percent", "Memory used, percent"),
               ("disk.percent", "dashfleet_machine_disk_percent", "Fullest disk used, percent"))


class ReportCounters:
    """Reports received by this process, by result (what `dashfleet_reports_received` exposes)."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(RESULTS, 0)
        self._lock = threading.Lock()  # threaded servers (dashfleet web, waitress, gthread)

    def add(self, result: str, n: int) -> None:
        with self._lock:
            self.counts[result] += n

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("dashfleet_reports_received",
                                     "Reports received by this server process, by result", labels=["result"])
        with self._lock:
            counts = dict(self.counts)
        for result in RESULTS:
            family.add_metric([result], counts[result])
        yield family


class FleetCollector:
    """Builds one organisation's fleet gauges from the same view as `GET /api/fleet`."""

    def __init__(self, app: Flask, org: str) -> None:
        self.app = app
        self.org = org

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        fleet = self.app.extensions["dashfleet"]
        doc = fleet_json(fleet, self.org)
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
    app.extensions[EXTENSION] = {"counters": ReportCounters()}


def count_reports(result: str, n: int = 1) -> None:
    if n:
        current_app.extensions[EXTENSION]["counters"].add(result, n)


def registry(org: str, process_counters: bool):
    """A `CollectorRegistry` for one scrape: `org`'s fleet, and the process's counters if asked."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    if process_counters:
        registry.register(current_app.extensions[EXTENSION]["counters"])
    registry.register(FleetCollector(current_app._get_current_object(), org))
    return registry
