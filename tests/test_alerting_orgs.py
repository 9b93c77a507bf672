"""Alerting across organisations: each organisation's machines are tracked, swept for silence and
covered by maintenance in that organisation only, and every organisation's alerts reach the server's
notifiers, naming the organisation when it is not `default`. Real ingestion path on a real SQLite
file, a real local webhook receiver; the alert job is run by hand (`tick(now=...)`)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Report, utcnow


class Rig:
    def __init__(self, fleet: Fleet, hook) -> None:
        self.fleet = fleet
        self.hook = hook
        self.seq: dict[tuple[str, str], int] = {}

    def report(self, org: str, machine_id: str, cpu: float) -> None:
        seq = self.seq.get((org, machine_id), 0) + 1
        self.seq[(org, machine_id)] = seq
        report = Report(machine_id=machine_id, hostname=f"{machine_id}.{org}.lan", seq=seq,
                        metrics={"cpu.percent": cpu})
        assert self.fleet.ingest([report], org=org) == [True]

    def tick(self, seconds_later: float) -> None:
        self.fleet.alerting.tick(now=utcnow() + timedelta(seconds=seconds_later))

    def kinds(self, org: str, machine_id: str | None = None) -> list[str]:
        return [e.kind for e in self.fleet.storage.events(org=org, machine_id=machine_id, limit=100)]

    def texts(self) -> list[str]:
        return [json.loads(hit["body"])["text"] for hit in self.hook.captured]


@pytest.fixture
def rig(settings_factory, webhook_server):
    settings = settings_factory({
        "plugins.webhook.url": f"http://127.0.0.1:{webhook_server.server_port}/hooks/dashfleet",
        "server.report_self": False, "server.public_url": "http://fleet.example",
        "alerts.digest_window_seconds": 0.5, "alerts.retry_max_seconds": 0.2,
        "alerts.digest_threshold": 100,
    })
    fleet = Fleet(settings)
    fleet.accounts.orgs.create("Aardvark")
    fleet.accounts.orgs.create("Bumblebee")
    try:
        yield Rig(fleet, webhook_server)
    finally:
        fleet.stop()


def test_a_machine_of_another_organisation_going_silent_is_an_event_there_and_a_notification(rig):
    rig.report("bumblebee", "pc-1", 10)
    rig.tick(700)  # past the TTL (600 s): the silence sweep of every organisation
    assert rig.kinds("bumblebee", "pc-1") == ["silent"]
    assert rig.kinds("default") == [] and rig.kinds("aardvark") == []
    rig.tick(720)
    [text] = rig.texts()
    assert "pc-1" in text and "SILENT" in text and "in organisation bumblebee" in text


def test_the_same_machine_id_in_two_organisations_is_tracked_apart(rig):
    for _ in range(3):  # sustained critical in bumblebee only
        rig.report("bumblebee", "pc-1", 99)
        rig.report("default", "pc-1", 10)
    assert rig.kinds("bumblebee", "pc-1") == ["status_changed"]
    assert rig.kinds("default", "pc-1") == []
    rig.tick(10)
    [text] = rig.texts()
    assert "CRITICAL" in text and "in organisation bumblebee" in text
    # default's messages carry no organisation, as before organisations
    for _ in range(3):
        rig.report("default", "pc-1", 99)
    rig.tick(30)
    assert len(rig.texts()) == 2
    assert "CRITICAL" in rig.texts()[1] and "organisation" not in rig.texts()[1]


def test_an_organisations_maintenance_silences_its_own_machines_only(rig):
    for org in ("default", "aardvark", "bumblebee"):
        rig.report(org, "pc-1", 10)
    # bumblebee's whole fleet is in maintenance: its silence is recorded, nobody is told
    rig.fleet.alerting.start_maintenance("*", utcnow() + timedelta(hours=3), reason="patching", org="bumblebee")
    rig.tick(700)
    for org in ("default", "aardvark", "bumblebee"):
        assert rig.kinds(org, "pc-1") == ["silent"], org
    [silent] = rig.fleet.storage.events(org="bumblebee", machine_id="pc-1")
    assert silent.details["maintenance"]["reason"] == "patching"
    for org in ("default", "aardvark"):
        [event] = rig.fleet.storage.events(org=org, machine_id="pc-1")
        assert "maintenance" not in event.details, org
    rig.tick(720)
    texts = rig.texts()
    assert len(texts) == 2, texts
    assert any("in organisation aardvark" in t for t in texts)
    assert any("SILENT" in t and "organisation" not in t for t in texts)  # default's
    assert not any("bumblebee" in t for t in texts)


def test_an_organisation_created_after_start_is_swept_by_the_next_tick(rig):
    rig.tick(5)
    rig.fleet.accounts.orgs.create("Cicada")
    rig.report("cicada", "pc-9", 10)
    rig.tick(700)
    assert rig.kinds("cicada", "pc-9") == ["silent"]
