"""Trusting what agents send (issue 12, items 1, 3 and 9), through the real app on a real SQLite
file: machine keys bind a machine on first sight, a seq sent again with other content is a
conflict, a machine's row follows its reports in the order they can be trusted, and values that
cannot be true are refused."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from dashfleet_core.fleet import Fleet
from dashfleet_core.models import utcnow
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_web import schemas
from dashfleet_web.app import create_app

from conftest import dashfleet_cmd

TOKEN = "fleet-token-for-the-trust-tests"
ACTION = "action-token-for-the-trust-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY_A = "A" * 43
KEY_B = "b" * 43


def keyed(key: str) -> dict[str, str]:
    return {**AUTH, "X-DashFleet-Machine-Key": key}


BASE = utcnow() - timedelta(minutes=30)


def report(machine_id="pc-1", seq=1, cpu=10.0, **fields):
    """A report whose time follows its seq, so sending it again is the same content."""
    at = BASE + timedelta(seconds=seq if isinstance(seq, int) else 0)
    doc = {"machine_id": machine_id, "seq": seq, "hostname": f"{machine_id}.lan", "collected_at": at.isoformat(),
           "metrics": {"cpu.percent": cpu, "memory.percent": 40.0}}
    doc.update(fields)
    return doc


@pytest.fixture
def server(settings_factory):
    settings = settings_factory({"server.token": TOKEN, "actions.token": ACTION, "server.report_self": False})
    fleet = Fleet(settings, make_plugin_manager(settings))
    app = create_app(fleet=fleet, start=False)
    yield fleet, app.test_client()
    fleet.stop()


# --- machine keys ------------------------------------------------------------------------------


def test_the_first_key_binds_the_machine_and_reports_without_it_are_refused(server):
    fleet, client = server
    assert client.post("/api/fleet/report", json=report(seq=1), headers=keyed(KEY_A)).status_code == 201
    assert client.post("/api/fleet/report", json=report(seq=2), headers=keyed(KEY_A)).status_code == 201
    bare = client.post("/api/fleet/report", json=report(seq=3, cpu=99.0), headers=AUTH)
    assert bare.status_code == 403
    assert "bound to a machine key" in bare.json["error"] and "reset-key pc-1" in bare.json["error"]
    other = client.post("/api/fleet/report", json=[report(seq=3, cpu=99.0)], headers=keyed(KEY_B))
    assert other.status_code == 403 and "another machine key" in other.json["error"]
    assert [s.seq for s in fleet.storage.history("pc-1")] == [2, 1]
    assert fleet.storage.machine("pc-1").metrics["cpu.percent"] == 10.0


def test_a_lost_answer_cannot_lock_the_agent_out(server):
    """The key binds when first seen, so sending the same report again (its answer was lost) is
    the same key: a duplicate, not a refusal."""
    fleet, client = server
    client.post("/api/fleet/report", json=report(seq=1), headers=keyed(KEY_A))
    again = client.post("/api/fleet/report", json=report(seq=1), headers=keyed(KEY_A))
    assert again.status_code == 200 and again.json["duplicate"] is True


def test_a_machine_that_never_sent_a_key_keeps_reporting_with_the_token_alone(server):
    fleet, client = server
    for seq in (1, 2):
        assert client.post("/api/fleet/report", json=report(seq=seq), headers=AUTH).status_code == 201
    assert fleet.storage.machine("pc-1").last_seq == 2


def test_a_malformed_key_is_a_400_saying_what_a_key_looks_like(server):
    fleet, client = server
    r = client.post("/api/fleet/report", json=report(), headers=keyed("short"))
    assert r.status_code == 400 and "32 to 128 characters" in r.json["error"]
    assert fleet.storage.machine("pc-1") is None


def test_forged_reports_for_a_keyed_machine_cannot_push_out_the_real_agent(server):
    """The impersonation of the attack: the token holder posts the next 1,000 seqs for a machine.
    With a key bound, every forged report is refused and the agent's next reports are stored."""
    fleet, client = server
    client.post("/api/fleet/report", json=report(seq=1), headers=keyed(KEY_A))
    forged = [report(seq=seq, cpu=1.0) for seq in range(2, 1002)]
    r = client.post("/api/fleet/report", json=forged, headers=AUTH)
    assert r.status_code == 403
    r = client.post("/api/fleet/report", json=report(seq=2, cpu=33.0), headers=keyed(KEY_A))
    assert r.status_code == 201 and r.json["stored"] is True
    assert fleet.storage.machine("pc-1").metrics["cpu.percent"] == 33.0


def test_reset_key_unbinds_audits_and_lets_the_next_key_bind(server):
    fleet, client = server
    client.post("/api/fleet/report", json=report(seq=1), headers=keyed(KEY_A))
    assert client.delete("/api/fleet/pc-1/key").status_code == 401
    # the FLEET_TOKEN is a credential, but only to report: 403
    assert client.delete("/api/fleet/pc-1/key", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    r = client.delete("/api/fleet/pc-1/key", headers={"Authorization": f"Bearer {ACTION}"})
    assert r.status_code == 204 and r.data == b""
    assert client.post("/api/fleet/report", json=report(seq=2), headers=keyed(KEY_B)).status_code == 201
    assert client.post("/api/fleet/report", json=report(seq=3), headers=keyed(KEY_A)).status_code == 403
    audit = fleet.storage.audit()
    assert [(a.action, a.actor, a.outcome, a.params) for a in audit][:1] == [
        ("machine.reset_key", "action-token", "reset", {"machine_id": "pc-1"})]
    assert any(e.kind == "machine_key_reset" for e in fleet.storage.events(machine_id="pc-1"))
    none = client.delete("/api/fleet/pc-9/key", headers={"Authorization": f"Bearer {ACTION}"})
    assert none.status_code == 404 and "no machine key" in none.json["error"]


def test_cli_reset_key_unbinds_the_machine(server, tmp_path):
    fleet, client = server
    client.post("/api/fleet/report", json=report(seq=1), headers=keyed(KEY_A))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DASHFLEET_STORAGE": fleet.settings.storage.url}
    done = subprocess.run([*dashfleet_cmd(), "machine", "reset-key", "pc-1"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "reset" in done.stdout
    assert client.post("/api/fleet/report", json=report(seq=2), headers=keyed(KEY_B)).status_code == 201
    again = subprocess.run([*dashfleet_cmd(), "machine", "reset-key", "pc-7"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 1 and "no machine key bound" in again.stderr


# --- conflicts ---------------------------------------------------------------------------------


def test_the_same_seq_with_other_content_is_a_409_conflict_with_last_seq(server):
    fleet, client = server
    for seq in (1, 2, 3):
        client.post("/api/fleet/report", json=report(seq=seq), headers=AUTH)
    r = client.post("/api/fleet/report", json=report(seq=2, cpu=77.0), headers=AUTH)
    assert r.status_code == 409
    assert r.json["last_seq"] == 3 and "numbered after last_seq" in r.json["error"]
    schemas.ErrorBody.model_validate(r.json)
    assert [s.metrics["cpu.percent"] for s in fleet.storage.history("pc-1")] == [10.0, 10.0, 10.0]
    events = [e for e in fleet.storage.events(machine_id="pc-1") if e.kind == "seq_conflict"]
    assert len(events) == 1 and events[0].details["seq"] == 2 and events[0].details["last_seq"] == 3
    same = client.post("/api/fleet/report", json=report(seq=2), headers=AUTH)
    assert same.status_code == 200 and same.json["duplicate"] is True, "identical content stays a duplicate"


def test_a_batch_answers_each_conflicting_item_and_stores_the_rest(server):
    fleet, client = server
    client.post("/api/fleet/report", json=[report(seq=1), report(seq=2)], headers=keyed(KEY_A))
    batch = [report(seq=1), report(seq=2, cpu=55.0), report(seq=3)]
    r = client.post("/api/fleet/report", json=batch, headers=keyed(KEY_A))
    assert r.status_code == 200
    schemas.BatchAccepted.model_validate(r.json)
    assert r.json["results"] == [
        {"index": 0, "ok": True, "stored": False},
        {"index": 1, "ok": False, "conflict": True, "last_seq": 3, "error": r.json["results"][1]["error"]},
        {"index": 2, "ok": True, "stored": True},
    ]
    assert (r.json["stored"], r.json["duplicates"], r.json["conflicts"]) == (1, 1, 1)


# --- whose state the row shows -----------------------------------------------------------------


def test_a_report_dated_ahead_no_longer_holds_the_row_of_a_machine_without_key(server):
    fleet, client = server
    ahead = report(seq=1, cpu=99.0, collected_at=(utcnow() + timedelta(seconds=590)).isoformat())
    assert client.post("/api/fleet/report", json=ahead, headers=AUTH).status_code == 201
    assert client.post("/api/fleet/report", json=report(seq=2, cpu=5.0), headers=AUTH).status_code == 201
    state = fleet.storage.machine("pc-1")
    assert (state.last_seq, state.metrics["cpu.percent"]) == (2, 5.0)


def test_a_keyed_machine_s_row_follows_its_highest_seq(server):
    fleet, client = server
    client.post("/api/fleet/report", json=report(seq=1), headers=keyed(KEY_A))  # binds
    client.post("/api/fleet/report", json=report(seq=5, cpu=50.0), headers=keyed(KEY_A))
    client.post("/api/fleet/report", json=report(seq=4, cpu=40.0), headers=keyed(KEY_A))  # late
    state = fleet.storage.machine("pc-1")
    assert (state.last_seq, state.metrics["cpu.percent"]) == (5, 50.0)


# --- values that cannot be true ----------------------------------------------------------------


@pytest.mark.parametrize("change,field", [
    ({"collected_at": "0001-01-01T00:00:00Z"}, "collected_at"),
    ({"collected_at": "0678-05-01T00:00:00Z"}, "collected_at"),
    ({"collected_at": "0001-01-01T00:29:01+00:30"}, "collected_at"),  # before year 1 in UTC (was a 500)
    ({"metrics": {"cpu.percent": -50}}, "metrics"),
    ({"metrics": {"disk.percent": 100.5}}, "metrics"),
    ({"metrics": {"disk.home.percent": 101}}, "metrics"),
    ({"metrics": {"battery.percent": -1}}, "metrics"),
    ({"metrics": {"net.bytes_sent": 1e308}}, "metrics"),
    ({"metrics": {"cpu.percent": True}}, "metrics.cpu.percent"),
    ({"metrics": {"cpu.percent": "12.5"}}, "metrics.cpu.percent"),
    ({"seq": "7"}, "seq"),
    ({"seq": 7.0}, "seq"),
    ({"spool_dropped": "3"}, "spool_dropped"),
])
def test_values_that_cannot_be_true_are_refused_422_and_nothing_is_stored(server, change, field):
    fleet, client = server
    r = client.post("/api/fleet/report", json=report(**change), headers=AUTH)
    assert r.status_code == 422, r.json
    assert field in r.json["fields"], r.json
    assert fleet.storage.machine("pc-1") is None


def test_a_report_older_than_the_retention_window_is_refused_and_a_recent_one_stored(server):
    fleet, client = server
    days = fleet.settings.storage.retention_days
    old = report(collected_at=(utcnow() - timedelta(days=days, hours=1)).isoformat())
    r = client.post("/api/fleet/report", json=old, headers=AUTH)
    assert r.status_code == 422 and "retention" in r.json["error"] and r.json["fields"] == ["collected_at"]
    recent = report(collected_at=(utcnow() - timedelta(days=days - 1)).isoformat())
    assert client.post("/api/fleet/report", json=recent, headers=AUTH).status_code == 201


def test_metrics_that_may_pass_100_and_whole_numbers_are_accepted(server):
    fleet, client = server
    doc = report(metrics={"cpu.percent": 100, "processes.top_cpu_percent": 187.5, "net.bytes_sent": 1e14})
    assert client.post("/api/fleet/report", json=doc, headers=AUTH).status_code == 201
    assert fleet.storage.machine("pc-1").metrics["processes.top_cpu_percent"] == 187.5


def test_a_report_without_seq_sent_twice_is_stored_once(server):
    fleet, client = server
    doc = report(seq=None)
    assert client.post("/api/fleet/report", json=doc, headers=AUTH).status_code == 201
    again = client.post("/api/fleet/report", json=doc, headers=AUTH)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert len(fleet.storage.history("pc-1")) == 1


# --- the agent's collector failures -------------------------------------------------------------


def test_collector_failures_an_agent_reports_are_scored_by_the_server_and_advertised(server):
    fleet, client = server
    doc = report(collector_failures=[{"collector": "sensors", "error": "no driver for the fan"}])
    r = client.post("/api/fleet/report", json=doc, headers=AUTH)
    assert r.status_code == 201 and r.headers["X-DashFleet-Accepts"] == "collector_failures"
    state = fleet.storage.machine("pc-1")
    [finding] = state.health.findings
    assert (finding.severity, finding.source) == ("warn", "sensors")
    assert "collector 'sensors' failed on the agent: no driver for the fan" == finding.message
    assert state.health.status == "warn" and state.health.score == 80


@pytest.mark.parametrize("failures", [
    [{"collector": "x", "error": "e"}] * 33,
    [{"collector": "x", "error": "e", "extra": 1}],
    [{"collector": "x", "error": "e" * 501}],
])
def test_collector_failures_are_bounded(server, failures):
    fleet, client = server
    r = client.post("/api/fleet/report", json=report(collector_failures=failures), headers=AUTH)
    assert r.status_code == 422 and any(f.startswith("collector_failures") for f in r.json["fields"])
    assert fleet.storage.machine("pc-1") is None
