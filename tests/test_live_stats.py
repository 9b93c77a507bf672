"""`/api/stats` on a busy machine reports its real CPU use (issue 12, item 11): the CPU collector
keeps its own primed sampler, so a request that comes right after the server's own collection
cycle gets a figure measured over a real interval, not a near-zero one. Real processes, real app."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dashfleet_web.app import create_app


@pytest.fixture
def busy_core():
    """One core kept 100 % busy by a child process for the duration of the test."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield
    proc.kill()
    proc.wait()


def test_stats_right_after_a_collection_cycle_is_not_zero(settings_factory, busy_core):
    app = create_app(settings_factory({"server.report_self": False}), start=False)
    fleet = app.extensions["dashfleet"]
    try:
        client = app.test_client()
        figures = []
        for _ in range(5):
            fleet.engine.snapshot()  # what the self-report job does, every few seconds
            figures.append(client.get("/api/stats").get_json()["cpu"])
            app.extensions.pop("dashfleet_live", None)  # the next request collects afresh
        assert all(figure > 0 for figure in figures), figures
    finally:
        fleet.stop()


def test_back_to_back_collections_both_measure_a_real_interval(busy_core):
    from dashfleet_plugins.collectors.cpu import CpuCollector

    collector = CpuCollector()
    first = collector.collect().metrics["cpu.percent"]
    second = collector.collect().metrics["cpu.percent"]
    assert first > 0 and second > 0, (first, second)
