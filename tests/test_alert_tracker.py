"""The transition tracker on its own: sustain, hysteresis (per metric, both directions), other
findings, and an empty state for a healthy machine."""

from __future__ import annotations

from dashfleet_core.alerting.tracker import step
from dashfleet_core.config import HealthSettings, Threshold
from dashfleet_core.models import Finding, Health, Report

OK = Health(score=100, status="ok")


def run(policy: HealthSettings, values: list[float], metric: str = "cpu.percent",
        healths: list[Health] | None = None) -> list[str]:
    state, statuses = None, []
    for i, value in enumerate(values):
        report = Report(machine_id="m", seq=i, metrics={metric: value})
        result = step(state, report, (healths or [OK] * len(values))[i], policy)
        state = result.state
        statuses.append(result.status)
    return statuses


def test_rise_needs_sustain_samples_in_a_row():
    policy = HealthSettings()  # sustain 3, cpu warn 80 / critical 95
    assert run(policy, [99, 99, 10, 99, 99, 99]) == ["ok", "ok", "ok", "ok", "ok", "critical"]
    assert run(policy, [85, 99, 99]) == ["ok", "ok", "warn"], "three samples at or above warn"


def test_recovery_needs_the_hysteresis_margin():
    policy = HealthSettings()  # hysteresis 5
    assert run(policy, [99, 99, 99, 94, 91, 89, 76, 74]) == \
        ["ok", "ok", "critical", "critical", "critical", "warn", "warn", "ok"]


def test_per_metric_sustain_and_hysteresis():
    policy = HealthSettings(thresholds={"cpu.percent": Threshold(warn=50, critical=60, sustain=1, hysteresis=0)})
    assert run(policy, [61, 59, 49]) == ["critical", "warn", "ok"]


def test_low_is_bad_metrics_recover_upwards():
    policy = HealthSettings(sustain=2, hysteresis=3,
                            thresholds={"battery.percent": Threshold(warn=20, critical=10, below=True)})
    assert run(policy, [9, 5, 12, 14, 22, 24], metric="battery.percent") == \
        ["ok", "critical", "critical", "warn", "warn", "ok"]


def test_other_findings_need_sustain_and_clear_at_once():
    bad = Health(score=80, status="warn", findings=[
        Finding(severity="warn", message="collector 'disk' failed: boom", source="disk")])
    policy = HealthSettings()
    statuses = run(policy, [1, 1, 1, 1, 1], healths=[bad, bad, bad, OK, bad])
    assert statuses == ["ok", "ok", "warn", "ok", "ok"]


def test_healthy_machine_has_empty_state():
    state = None
    for i, value in enumerate([10, 99, 10]):
        state = step(state, Report(machine_id="m", seq=i, metrics={"cpu.percent": value}), OK,
                     HealthSettings()).state
    assert state == {}


def test_missing_metric_forgets_its_level():
    policy = HealthSettings(sustain=1)
    state = step(None, Report(machine_id="m", metrics={"cpu.percent": 99}), OK, policy).state
    result = step(state, Report(machine_id="m", metrics={}), OK, policy)
    assert (result.previous, result.status, result.state) == ("critical", "ok", {})
