"""Alerting through the real ingestion path (Fleet.ingest on a real SQLite file) with a real local
webhook receiver. The alert job is run by hand (`tick(now=...)`) so each test decides when time has
passed; tests/test_alerting_live.py runs the same job on the server's scheduler."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dashfleet_core.alerting import ANNOUNCED, STATE, Alerting
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Report, utcnow


def alerting_of(fleet: Fleet) -> Alerting:
    """The fleet's alerting service, registered for its hooks."""
    assert isinstance(fleet.alerting, Alerting) and fleet.pm.is_registered(fleet.alerting), \
        "Fleet must own and register the alerting service"
    return fleet.alerting


class Rig:
    """A fleet on a real SQLite file, a webhook receiver, and helpers to feed reports and tick."""

    def __init__(self, fleet: Fleet, hook) -> None:
        self.fleet = fleet
        self.hook = hook
        self.alerting = alerting_of(fleet)
        self.seq: dict[str, int] = {}

    def report(self, machine_id: str, cpu: float, **metrics: float) -> None:
        seq = self.seq.get(machine_id, 0) + 1
        self.seq[machine_id] = seq
        report = Report(machine_id=machine_id, hostname=f"{machine_id}.lan", seq=seq,
                        metrics={"cpu.percent": cpu, **metrics})
        assert self.fleet.ingest([report]) == [True]

    def tick(self, seconds_later: float = 10) -> None:
        """Run the alert job as if `seconds_later` had passed (past the digest window)."""
        self.alerting.tick(now=utcnow() + timedelta(seconds=seconds_later))

    def messages(self) -> list[dict]:
        return [json.loads(hit["body"]) for hit in self.hook.captured]

    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages()]

    def events(self, machine_id: str) -> list:
        return self.fleet.storage.events(machine_id=machine_id)


@pytest.fixture
def rig(settings_factory, webhook_server):
    url = f"http://127.0.0.1:{webhook_server.server_port}/hooks/dashfleet"
    settings = settings_factory({
        "plugins.webhook.url": url, "server.report_self": False, "server.public_url": "http://fleet.example",
        "alerts.digest_window_seconds": 0.5, "alerts.retry_max_seconds": 0.2,
    })
    fleet = Fleet(settings)
    try:
        yield Rig(fleet, webhook_server)
    finally:
        fleet.stop()


def test_alert_once_when_critical_holds_for_sustain_samples(rig):
    rig.report("web-01", 10)
    rig.report("web-01", 97)
    rig.report("web-01", 98)
    rig.tick()
    assert rig.messages() == [], "two critical samples are below sustain = 3"
    rig.report("web-01", 99)
    rig.tick()
    rig.tick(20)
    [msg] = rig.messages()
    assert "web-01" in msg["text"] and "CRITICAL" in msg["text"]
    data = msg["dashfleet"]
    assert data["machine"] == "web-01" and data["status"] == "critical"
    assert data["score"] == 50
    assert any("cpu.percent is 99" in r for r in data["reasons"])
    assert data["link"] == "http://fleet.example/fleet/web-01"
    [event] = [e for e in rig.events("web-01") if e.kind == "status_changed"]
    assert (event.previous, event.status) == ("ok", "critical")


def test_single_spike_alerts_nobody(rig):
    for cpu in (10, 99, 10, 10, 99, 99, 10, 12):
        rig.report("web-02", cpu)
    rig.tick()
    assert rig.messages() == []
    assert rig.events("web-02") == []
    # The common case keeps no state at all for the machine.
    assert rig.fleet.storage.kv_get(STATE, "web-02") is None


def test_first_report_announces_nothing_unless_bad(rig):
    rig.report("new-ok", 5)
    for _ in range(3):
        rig.report("new-bad", 99)
    rig.tick()
    [msg] = rig.messages()
    assert msg["dashfleet"]["machine"] == "new-bad"
    assert rig.events("new-ok") == []


def test_recovery_needs_hysteresis_and_is_sent(rig):
    for _ in range(3):
        rig.report("db-01", 96)
    rig.tick()
    assert len(rig.messages()) == 1
    rig.report("db-01", 92)  # under critical (95) but not under 95 - 5: still critical
    rig.tick()
    assert len(rig.messages()) == 1
    rig.report("db-01", 40)
    rig.tick()
    assert len(rig.messages()) == 2
    recovery = rig.messages()[1]
    assert "RECOVERED" in recovery["text"] and "db-01" in recovery["text"]
    assert recovery["dashfleet"]["status"] == "ok"


def test_no_repeat_within_min_seconds_then_reminder_if_still_bad(rig):
    for _ in range(3):
        rig.report("app-01", 99)
    rig.tick()
    rig.report("app-01", 10)
    rig.tick()
    assert [m["dashfleet"]["status"] for m in rig.messages()] == ["critical", "ok"]
    for _ in range(3):
        rig.report("app-01", 99)
    rig.tick()
    rig.tick(60)
    assert len(rig.messages()) == 2, "a second critical alert within WEBHOOK_MIN_SECONDS (300) is held back"
    rig.tick(330)  # the throttle ran out and the machine is still critical: one reminder
    assert [m["dashfleet"]["status"] for m in rig.messages()] == ["critical", "ok", "critical"]
    assert "still" in rig.messages()[2]["text"]
    rig.tick(700)
    assert len(rig.messages()) == 3


def test_held_back_alert_is_dropped_if_the_machine_recovered(rig):
    for cpu in (99, 99, 99):
        rig.report("app-02", cpu)
    rig.tick()
    rig.report("app-02", 10)
    rig.tick()
    for cpu in (99, 99, 99):
        rig.report("app-02", cpu)
    rig.tick()
    rig.report("app-02", 10)
    rig.tick(330)
    assert [m["dashfleet"]["status"] for m in rig.messages()] == ["critical", "ok"]


def test_silent_machine_alerts_once_after_ttl_and_comes_back(rig):
    ttl = rig.fleet.settings.server.ttl_seconds
    rig.report("laptop-7", 10)
    rig.tick()
    assert rig.messages() == []
    rig.tick(ttl + 5)
    rig.tick(ttl + 10)
    [msg] = rig.messages()
    assert "SILENT" in msg["text"] and "laptop-7" in msg["text"]
    assert msg["dashfleet"]["status"] == "silent"
    rig.report("laptop-7", 10)
    rig.tick()
    assert len(rig.messages()) == 2
    assert "BACK" in rig.messages()[1]["text"]
    kinds = [e.kind for e in sorted(rig.events("laptop-7"), key=lambda e: e.id)]
    assert kinds == ["silent", "back"]


def test_mass_outage_is_one_digest(rig):
    machines = [f"pc-{i:02d}" for i in range(12)]
    for m in machines:
        rig.report(m, 10)
    rig.tick()
    rig.tick(rig.fleet.settings.server.ttl_seconds + 5)  # all found silent at once
    rig.tick(rig.fleet.settings.server.ttl_seconds + 10)  # past the digest window: sent
    [digest] = rig.messages()
    assert "12 machines" in digest["text"]
    for m in machines:
        assert m in digest["text"]
    assert sorted(x["machine"] for x in digest["dashfleet"]["machines"]) == machines
    assert digest["dashfleet"]["digest"] is True


def test_nothing_during_maintenance_and_no_burst_when_it_ends(rig):
    alerting = rig.alerting
    alerting.start_maintenance("ok-later", utcnow() + timedelta(hours=1), reason="patching", by="test")
    alerting.start_maintenance("bad-after", utcnow() + timedelta(hours=1), reason="patching", by="test")
    for _ in range(3):
        rig.report("ok-later", 99)
        rig.report("bad-after", 99)
    rig.tick()
    rig.report("ok-later", 10)
    rig.tick()
    assert rig.messages() == [], "alerts are silenced during maintenance"
    changed = [e for e in rig.events("bad-after") if e.kind == "status_changed"]
    assert changed and changed[0].details["maintenance"]["reason"] == "patching"

    assert alerting.end_maintenance("ok-later", by="test")
    rig.tick()
    assert rig.messages() == [], "a machine that is fine when maintenance ends is not announced"
    assert alerting.end_maintenance("bad-after", by="test")
    rig.tick()
    [msg] = rig.messages()
    assert "bad-after" in msg["text"] and "still" in msg["text"]
    assert msg["dashfleet"]["machines"][0]["status"] == "critical"
    kinds = [e.kind for e in rig.events("bad-after")]
    assert kinds[0] == "maintenance_ended" and "maintenance_started" in kinds


def test_fleet_wide_maintenance_expires_by_itself(rig):
    rig.alerting.start_maintenance("*", utcnow() + timedelta(seconds=30), reason="network work")
    for _ in range(3):
        rig.report("sw-01", 99)
        rig.report("sw-02", 10)
    rig.tick()
    assert rig.messages() == []
    rig.tick(40)  # past `until`: the job notices the window ended
    rig.tick(45)
    [msg] = rig.messages()
    assert "sw-01" in msg["text"] and "sw-02" not in msg["text"]
    assert any(e.kind == "maintenance_ended" for e in rig.events("*"))


def test_config_maintenance_window(settings_factory, webhook_server):
    now = utcnow()
    settings = settings_factory({
        "plugins.webhook.url": f"http://127.0.0.1:{webhook_server.server_port}/h",
        "server.report_self": False,
        "alerts.maintenance": [{"machine": "cfg-01", "until": (now + timedelta(hours=1)).isoformat(),
                                "reason": "weekly reboot"}],
    })
    fleet = Fleet(settings)
    try:
        rig = Rig(fleet, webhook_server)
        for _ in range(3):
            rig.report("cfg-01", 99)
        rig.tick()
        assert rig.messages() == []
        assert rig.alerting.maintenance_for("cfg-01")["reason"] == "weekly reboot"
    finally:
        fleet.stop()


def test_failing_receiver_is_retried_without_losing_the_alert(rig):
    rig.hook.behaviour["status"] = 500
    for _ in range(3):
        rig.report("flaky-01", 99)
    rig.tick()
    assert len(rig.hook.captured) == 1  # tried once, refused
    rig.tick(1)
    rig.hook.behaviour["status"] = 200
    for later in range(2, 30):
        rig.tick(later)
        if rig.hook.captured and len(rig.hook.captured) >= 2 and rig.fleet.storage.kv_list("alert_outbox") == {}:
            break
    assert rig.fleet.storage.kv_list("alert_outbox") == {}, "the message is delivered once the receiver recovers"
    assert all("flaky-01" in t for t in rig.texts())
    assert rig.fleet.storage.pending_notifications() == []


def test_health_changed_is_called_for_each_delivered_event(rig):
    seen = []

    class Listener:
        from dashfleet_core import hookimpl

        @hookimpl
        def health_changed(self, event):
            seen.append((event.machine_id, event.kind, event.status))

    rig.fleet.pm.register(Listener(), name="listener")
    for _ in range(3):
        rig.report("hooked", 99)
    rig.tick()
    assert seen == [("hooked", "status_changed", "critical")]


def test_two_fleets_on_one_database_share_alert_state(rig):
    """Two Fleet objects on one database agree: the second continues the first one's streak."""
    rig.report("shared", 99)
    rig.report("shared", 99)
    other = Fleet(rig.fleet.settings)
    try:
        report = Report(machine_id="shared", seq=99, metrics={"cpu.percent": 99})
        other.ingest([report])
    finally:
        other.stop()
    assert rig.fleet.storage.kv_get(STATE, "shared")["status"] == "critical"
    rig.tick()
    assert [m["dashfleet"]["machine"] for m in rig.messages()] == ["shared"]
    assert rig.fleet.storage.kv_get(ANNOUNCED, "shared")["status"] == "critical"


def test_escalation_is_its_own_kind_and_not_throttled(rig):
    for _ in range(3):
        rig.report("esc-01", 85)
    rig.tick()
    for _ in range(3):
        rig.report("esc-01", 99)
    rig.tick()
    assert [m["dashfleet"]["status"] for m in rig.messages()] == ["warn", "critical"]


def test_daily_config_window_crosses_midnight():
    from datetime import datetime, timezone

    from dashfleet_core.alerting.maintenance import config_window_bounds
    from dashfleet_core.config import MaintenanceWindow

    window = MaintenanceWindow(daily="23:30-01:00")
    inside = datetime(2026, 3, 2, 0, 15, tzinfo=timezone.utc)
    start, end = config_window_bounds(window, inside)
    assert (start.day, start.hour, end.day, end.hour) == (1, 23, 2, 1)
    assert config_window_bounds(window, datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)) is None


def test_alerting_on_postgresql(pg_url, settings_factory, webhook_server):
    """The same state machine on PostgreSQL, where several server machines share it."""
    settings = settings_factory({"storage.url": pg_url, "server.report_self": False,
                                 "plugins.webhook.url": f"http://127.0.0.1:{webhook_server.server_port}/h",
                                 "alerts.digest_window_seconds": 0.5})
    fleet = Fleet(settings)
    try:
        rig = Rig(fleet, webhook_server)
        for _ in range(3):
            rig.report("pg-01", 99)
        rig.tick()
        rig.report("pg-01", 10)
        rig.tick()
        rig.tick(settings.server.ttl_seconds + 5)
        rig.tick(settings.server.ttl_seconds + 10)
        assert [m["dashfleet"]["status"] for m in rig.messages()] == ["critical", "ok", "silent"]
        assert fleet.storage.pending_notifications() == []
    finally:
        fleet.stop()


def test_one_failing_notifier_does_not_resend_through_the_others(settings_factory, webhook_server, smtp_server):
    host, port, mails = smtp_server
    settings = settings_factory({
        "plugins.webhook.url": f"http://127.0.0.1:{webhook_server.server_port}/h", "server.report_self": False,
        "plugins.email": {"host": host, "port": port, "security": "none", "to": ["ops@example.test"]},
        "alerts.retry_max_seconds": 0.2})
    fleet = Fleet(settings)
    try:
        rig = Rig(fleet, webhook_server)
        webhook_server.behaviour["status"] = 500
        for _ in range(3):
            rig.report("two-01", 99)
        rig.tick()
        rig.tick(20)
        rig.tick(30)
        assert len(mails) == 1 and len(webhook_server.captured) >= 2
        [record] = fleet.storage.kv_list("alert_outbox").values()
        assert record["pending"] == ["webhook"] and "HTTP 500" in record["last_error"]
        webhook_server.behaviour["status"] = 200
        rig.tick(40)
        assert fleet.storage.kv_list("alert_outbox") == {}
        assert len(mails) == 1, "email got the alert once"
    finally:
        fleet.stop()


def test_webhook_min_seconds_from_the_environment(settings_factory, webhook_server):
    settings = settings_factory({"server.report_self": False},
                                env={"WEBHOOK_URL": f"http://127.0.0.1:{webhook_server.server_port}/h",
                                     "WEBHOOK_MIN_SECONDS": "0"})
    assert settings.alerts.min_seconds == 0
    fleet = Fleet(settings)
    try:
        rig = Rig(fleet, webhook_server)
        for cpu in (99, 99, 99, 10, 99, 99, 99):
            rig.report("env-01", cpu)
            rig.tick()
        assert [m["dashfleet"]["status"] for m in rig.messages()] == ["critical", "ok", "critical"]
    finally:
        fleet.stop()


def test_windows_by_machine_merges_stored_and_configured(settings_factory):
    from dashfleet_core.alerting.maintenance import windows_by_machine

    now = utcnow()
    settings = settings_factory({"server.report_self": False, "alerts.maintenance": [
        {"machine": "a", "until": (now + timedelta(hours=2)).isoformat(), "reason": "config"},
        {"machine": "*", "daily": f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"}]})
    fleet = Fleet(settings)
    try:
        alerting_of(fleet).start_maintenance("a", now + timedelta(hours=1), reason="api", by="bob")
        alerting_of(fleet).start_maintenance("b", now + timedelta(hours=1), reason="api", by="bob")
        found = windows_by_machine(fleet.storage, settings.alerts.maintenance, now)
    finally:
        fleet.stop()
    assert found["a"]["reason"] == "config" and found["b"]["by"] == "bob"
    assert set(found) == {"a", "b", "*"} and found["*"]["by"] == "config"


def test_an_alerting_step_failing_on_a_full_disk_logs_one_line_and_the_others_still_run(rig, monkeypatch, caplog):
    from dashfleet_core.storage import StorageFull

    def sweep_maintenance(now, org="default"):
        raise StorageFull("/var/lib/dashfleet/dashfleet.db")

    ran = []
    monkeypatch.setattr(rig.alerting, "sweep_maintenance", sweep_maintenance)
    monkeypatch.setattr(rig.alerting.delivery, "run", lambda now: ran.append(now))
    rig.tick()
    [record] = [r for r in caplog.records if "sweep_maintenance failed" in r.getMessage()]
    assert "disk is full" in record.getMessage() and record.exc_info is None
    assert ran, "the step after the failing one ran"
