"""The engine: a full cycle on real collectors, failure isolation, scoring, hooks, scheduling."""

from __future__ import annotations

import threading

import pytest

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.config import Threshold
from dashfleet_core.health import breach, score
from dashfleet_core.models import Finding, MetricInfo

CORE = ["cpu", "memory", "disk", "uptime"]


class Steady:
    """A collector plugin reporting fixed values."""

    def __init__(self, values):
        self.values = values

    @hookimpl
    def register_collectors(self, register):
        values = self.values

        class C:
            name = "steady"
            metrics = [MetricInfo(name=n) for n in values]

            def collect(self):
                return Reading(metrics=dict(values), facts={"steady.kind": "test"})

        register(C())


class Raising:
    @hookimpl
    def register_collectors(self, register):
        class C:
            name = "flaky"
            metrics = []

            def collect(self):
                raise OSError("sensor unplugged")

        register(C())


def test_a_cycle_has_the_four_core_metrics_and_health(dashfleet_engine):
    engine = dashfleet_engine(enabled=CORE)
    report, health = engine.cycle("m-1", seq=7)
    assert {"cpu.percent", "memory.percent", "disk.percent", "uptime.seconds"} <= set(report.metrics)
    assert 0 <= report.metrics["cpu.percent"] <= 100
    assert report.machine_id == "m-1" and report.seq == 7 and report.hostname
    assert report.collected_at.tzinfo is not None
    assert 0 <= health.score <= 100 and health.status in ("ok", "warn", "critical")


def test_disabling_a_plugin_removes_its_metrics(dashfleet_engine, dashfleet_settings):
    engine = dashfleet_engine(settings=dashfleet_settings({"plugins": {"disabled": ["memory"]}}))
    report, _ = engine.cycle("m-1")
    assert not [m for m in report.metrics if m.startswith(("memory.", "swap."))]
    assert "cpu.percent" in report.metrics


def test_a_raising_collector_leaves_the_others_and_becomes_a_finding(dashfleet_engine, caplog):
    engine = dashfleet_engine(Raising(), enabled=CORE + ["Raising"])
    report, health = engine.cycle("m-1")
    assert {"cpu.percent", "memory.percent", "disk.percent", "uptime.seconds"} <= set(report.metrics)
    [finding] = [f for f in health.findings if f.source == "flaky"]
    assert finding.severity == "warn"
    assert "collector 'flaky' failed: OSError: sensor unplugged" in finding.message
    assert health.score <= 80
    assert "collector 'flaky' failed" in caplog.text


def test_a_plugin_that_raises_while_registering_is_a_finding(dashfleet_engine):
    class Boom:
        @hookimpl
        def register_collectors(self):
            raise RuntimeError("driver missing")

    engine = dashfleet_engine(Boom(), enabled=["cpu", "Boom"])
    report, health = engine.cycle("m-1")
    assert "cpu.percent" in report.metrics
    assert any("'Boom' failed: RuntimeError: driver missing" in f.message for f in health.findings)


def test_a_raising_health_check_is_a_finding_not_a_crash(dashfleet_engine):
    class BadCheck:
        @hookimpl
        def register_health_checks(self, register):
            class K:
                name = "bad-check"

                def check(self, metrics, thresholds):
                    raise ValueError("division by zero")

            register(K())

    engine = dashfleet_engine(BadCheck(), Steady({"cpu.percent": 99.0}), enabled=["BadCheck", "Steady"])
    _, health = engine.cycle("m-1")
    sources = sorted(f.source for f in health.findings)
    assert sources == ["bad-check", "thresholds"]  # the threshold check still ran


def test_threshold_findings_say_metric_value_threshold_and_a_sentence(dashfleet_engine):
    engine = dashfleet_engine(Steady({"cpu.percent": 96.5, "memory.percent": 91.0, "disk.percent": 10.0}),
                              enabled=["Steady"])
    _, health = engine.cycle("m-1")
    by_metric = {f.metric: f for f in health.findings}
    cpu, mem = by_metric["cpu.percent"], by_metric["memory.percent"]
    assert (cpu.severity, cpu.value, cpu.threshold) == ("critical", 96.5, 95)
    assert cpu.message == "cpu.percent is 96.5, at or above the critical level 95"
    assert (mem.severity, mem.threshold) == ("warn", 90)
    assert "disk.percent" not in by_metric
    assert (health.score, health.status) == (30, "critical")


def test_thresholds_from_config_and_below_thresholds(dashfleet_engine, dashfleet_settings):
    settings = dashfleet_settings({
        "plugins": {"enabled": ["Steady"]},
        "health": {"thresholds": {"battery.percent": {"warn": 20, "critical": 10, "below": True},
                                  "cpu.percent": {"warn": 50, "critical": 60}}},
    })
    engine = dashfleet_engine(Steady({"battery.percent": 15.0, "cpu.percent": 55.0}), settings=settings)
    _, health = engine.cycle("m-1")
    found = {f.metric: (f.severity, f.threshold) for f in health.findings}
    assert found == {"battery.percent": ("warn", 20), "cpu.percent": ("warn", 50)}
    assert "at or below the warn level 20" in [f.message for f in health.findings
                                                if f.metric == "battery.percent"][0]


def test_score_and_status_rules():
    assert score([]).model_dump() == {"score": 100, "status": "ok", "findings": []}
    warn = Finding(severity="warn", message="w")
    crit = Finding(severity="critical", message="c")
    assert (score([warn]).score, score([warn]).status) == (80, "warn")
    assert (score([warn, crit]).score, score([warn, crit]).status) == (30, "critical")
    assert score([crit, crit, crit]).score == 0
    t = Threshold(warn=80, critical=95)
    assert [breach(v, t) for v in (79.9, 80, 94.9, 95)] == [None, "warn", "warn", "critical"]


def test_snapshot_is_the_status_document(dashfleet_engine):
    engine = dashfleet_engine(Steady({"x.value": 1.0}), enabled=["Steady"])
    doc = engine.snapshot("m-2")
    assert set(doc.model_dump()) == {"machine_id", "hostname", "collected_at", "metrics", "facts", "health"}
    assert doc.metrics == {"x.value": 1.0} and doc.facts == {"steady.kind": "test"}


def test_values_a_report_cannot_hold_are_dropped_and_named(dashfleet_engine):
    engine = dashfleet_engine(
        Steady({"bad name": 1.0, "ok.value": 2, "nan.value": float("nan"), "text.value": "high",
                "line\nbreak": 1.0, "battery.percent": 104.0, "huge.value": 1e300}),
        enabled=["Steady", "cpu"])
    report, health = engine.cycle("m-1")
    assert report.metrics["ok.value"] == 2.0 and "cpu.percent" in report.metrics
    assert not {"bad name", "nan.value", "text.value", "line\nbreak", "battery.percent", "huge.value"} & set(report.metrics)
    [finding] = [f for f in health.findings if f.source == "steady"]
    for part in ("'bad name' is not allowed", "nan.value is nan", "text.value is not a number",
                 "'battery.percent' is a percentage"):  # the finding names the first five
        assert part in finding.message
    # what the engine builds passes the model the server validates with
    from dashfleet_core.models import Report

    assert Report.model_validate(report.model_dump()).metrics == report.metrics


def test_a_bad_machine_id_is_refused(dashfleet_engine):
    engine = dashfleet_engine(enabled=["cpu"])
    for bad in ("", "-starts-with-dash", "has space", "x" * 129, "trailing\n"):
        with pytest.raises(ValueError, match="machine id"):
            engine.cycle(bad or None) if bad else engine._check_machine_id(bad)


def test_startup_and_shutdown_reach_every_plugin_even_after_one_fails(dashfleet_engine):
    calls = []

    class First:
        @hookimpl
        def startup(self, engine):
            raise RuntimeError("first is broken")

        @hookimpl
        def shutdown(self, engine):
            raise RuntimeError("first is broken")

    class Second:
        @hookimpl
        def startup(self, engine):
            calls.append(("startup", engine))

        @hookimpl
        def shutdown(self, engine):
            calls.append(("shutdown", engine))

    engine = dashfleet_engine(First(), Second(), enabled=["cpu", "First", "Second"])
    engine.startup()
    engine.shutdown()
    assert calls == [("startup", engine), ("shutdown", engine)]


def test_every_runs_jobs_on_the_scheduler_and_survives_a_failing_job(dashfleet_engine):
    engine = dashfleet_engine(enabled=["cpu"])
    ran = threading.Event()
    failures = []

    def failing():
        failures.append(1)
        raise RuntimeError("job broke")

    reports = []

    def collect():
        reports.append(engine.cycle("m-1", len(reports)))
        if len(reports) >= 2:
            ran.set()

    engine.every(0.05, failing, "failing")
    engine.every(0.05, collect, "collect")
    engine.start()
    try:
        assert ran.wait(30), "the scheduled job did not run twice"
    finally:
        engine.stop()
    assert failures and [r.seq for r, _ in reports[:2]] == [0, 1]


def test_a_job_failing_on_a_full_disk_logs_one_line_without_a_traceback(dashfleet_engine, caplog):
    """A full disk fails every run of every job until there is room: one line each that says
    what to do, not a traceback each time (which would fill the disk faster)."""
    from dashfleet_core.storage import StorageFull

    engine = dashfleet_engine(enabled=["cpu"])
    runs = threading.Event()

    def full():
        runs.set()
        raise StorageFull("/var/lib/dashfleet/dashfleet.db")

    engine.every(0.05, full, "needs-room")
    engine.start()
    try:
        assert runs.wait(30)
    finally:
        engine.stop()
    [record] = [r for r in caplog.records if "needs-room" in r.getMessage()][:1]
    assert "disk is full" in record.getMessage() and record.exc_info is None
