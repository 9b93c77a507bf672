"""Tests of the example plugin, written the way a plugin author would: with the fixtures DashFleet
publishes (`pytest11` entry point), no imports from DashFleet's own test suite."""

from dashfleet_example import plugin


def test_collector_metric_is_in_a_real_engine_cycle(dashfleet_engine):
    engine = dashfleet_engine(plugin, enabled=["example", "uptime"])
    report, health = engine.cycle("test-machine")
    assert report.metrics["example.logged_in_users"] >= 0
    assert "uptime.seconds" in report.metrics


def test_reboot_overdue_warns_with_a_setting_of_its_own(dashfleet_engine, dashfleet_settings):
    settings = dashfleet_settings({"plugins": {"enabled": ["example", "uptime"],
                                               "example": {"max_uptime_days": 0.000001}}})
    engine = dashfleet_engine(plugin, settings=settings)
    _, health = engine.cycle("test-machine")
    assert [f.source for f in health.findings] == ["reboot_overdue"]
    assert health.status == "warn"


def test_no_finding_below_the_limit(dashfleet_engine, dashfleet_settings):
    settings = dashfleet_settings({"plugins": {"enabled": ["example", "uptime"],
                                               "example": {"max_uptime_days": 100000}}})
    _, health = dashfleet_engine(plugin, settings=settings).cycle("test-machine")
    assert health.findings == []


def test_registered_hooks(dashfleet_pm, dashfleet_register):
    name = dashfleet_register(plugin)
    hooks = {caller.name for caller in dashfleet_pm.get_hookcallers(dashfleet_pm.get_plugin(name))}
    assert hooks == {"register_collectors", "register_health_checks"}
