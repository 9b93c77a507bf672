"""Alerting against a live `dashfleet web` process on 127.0.0.1: reports go through
`POST /api/fleet/report`, the server's own scheduler runs the alert job, and alerts reach a real
local webhook receiver. Outcomes are polled with a deadline; nothing asserts on timings."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import dashfleet_cmd, free_port

FLEET_TOKEN = "fleet-token-for-tests-0123456789"
ACTION_TOKEN = "action-token-for-tests-0123456789"
OPERATOR = {"Authorization": f"Bearer {ACTION_TOKEN}"}  # reads need a credential


def wait_for(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    def __init__(self, base: str, proc: subprocess.Popen, db: Path) -> None:
        self.base, self.proc, self.db = base, proc, db
        self.seq: dict[str, int] = {}

    def report(self, machine_id: str, cpu: float) -> requests.Response:
        seq = self.seq.get(machine_id, 0) + 1
        self.seq[machine_id] = seq
        return requests.post(f"{self.base}/api/fleet/report", timeout=10,
                             headers={"Authorization": f"Bearer {FLEET_TOKEN}"},
                             json={"machine_id": machine_id, "hostname": machine_id, "seq": seq,
                                   "metrics": {"cpu.percent": cpu}})

    def outbox(self) -> dict:
        import sqlite3

        with sqlite3.connect(self.db) as conn:
            rows = conn.execute("SELECT key, value FROM kv WHERE namespace = 'alert_outbox'").fetchall()
        return {k: json.loads(v) for k, v in rows}


@pytest.fixture
def server(request, tmp_path, webhook_server):
    ttl = getattr(request, "param", {}).get("ttl", 600)
    window = getattr(request, "param", {}).get("window", 0.5)
    db = tmp_path / "dashfleet.db"
    config = tmp_path / "dashfleet.toml"
    config.write_text(f"""
[server]
report_self = false
ttl_seconds = {ttl}
public_url = "http://fleet.example"
data_dir = "{tmp_path}"

[storage]
url = "sqlite:///{db}"

[alerts]
interval_seconds = 0.2
digest_window_seconds = {window}
retry_max_seconds = 0.5

[plugins.webhook]
timeout_seconds = 1
""")
    port = free_port()
    env = {**os.environ, "FLEET_TOKEN": FLEET_TOKEN, "ACTION_TOKEN": ACTION_TOKEN,
           "WEBHOOK_URL": f"http://127.0.0.1:{webhook_server.server_port}/hooks/dashfleet"}
    env.pop("DASHFLEET_CONFIG", None)
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(dashfleet_cmd() + ["-v", "web", "--config", str(config), "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(up, 60, "the server to answer /healthz")
    try:
        yield Server(base, proc, db)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def messages(hook) -> list[dict]:
    return [json.loads(hit["body"]) for hit in list(hook.captured)]


def test_live_alert_reaches_the_webhook_and_events_api(server, webhook_server):
    for cpu in (99, 99, 99):
        assert server.report("live-01", cpu).status_code == 201
    wait_for(lambda: messages(webhook_server), 30, "the alert at the webhook receiver")
    [msg] = messages(webhook_server)
    assert msg["dashfleet"]["machine"] == "live-01" and msg["dashfleet"]["status"] == "critical"
    assert "live-01" in msg["text"] and "CRITICAL" in msg["text"]

    operator = OPERATOR
    events = requests.get(f"{server.base}/api/fleet/live-01/events", headers=operator, timeout=10).json()["events"]
    assert events[0]["kind"] == "status_changed" and events[0]["status"] == "critical"
    assert requests.get(f"{server.base}/api/fleet/nobody/events", headers=operator, timeout=10).status_code == 404


def test_hanging_receiver_does_not_hold_up_ingestion(server, webhook_server):
    block = threading.Event()
    webhook_server.behaviour["block"] = block
    for cpu in (99, 99, 99):
        assert server.report("hang-01", cpu).status_code == 201
    # The alert job has tried, and the receiver is holding the request (it times out, is retried).
    wait_for(lambda: any(r["attempts"] >= 1 for r in server.outbox().values()), 30,
             "a delivery attempt to time out against the blocked receiver")
    answered = [server.report("other-machine", 10).status_code for _ in range(20)]
    assert answered == [201] * 20
    assert not block.is_set() and webhook_server.captured == [], "the receiver was blocked throughout"

    block.set()
    webhook_server.behaviour.pop("block")
    wait_for(lambda: not server.outbox() and messages(webhook_server), 30,
             "delivery once the receiver recovers")
    assert all(m["dashfleet"]["machine"] == "hang-01" for m in messages(webhook_server))


def test_failing_receiver_then_recovery_live(server, webhook_server):
    webhook_server.behaviour["status"] = 500
    for cpu in (99, 99, 99):
        assert server.report("err-01", cpu).status_code == 201
    wait_for(lambda: webhook_server.captured, 30, "a first, refused delivery")
    assert server.report("err-01", 99).status_code == 201  # still answered while the receiver fails
    webhook_server.behaviour["status"] = 200
    wait_for(lambda: not server.outbox(), 30, "the retried delivery to be accepted")
    assert all("err-01" in m["text"] for m in messages(webhook_server))


def test_maintenance_api(server, webhook_server):
    url = f"{server.base}/api/fleet/mnt-01/maintenance"
    auth = {"Authorization": f"Bearer {ACTION_TOKEN}"}
    assert server.report("mnt-01", 10).status_code == 201  # a window is for a machine that has reported
    assert requests.post(url, json={"minutes": 30}, timeout=10).status_code == 401
    wrong = requests.post(url, json={"minutes": 30}, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and "ACTION_TOKEN" in wrong.json()["error"]
    bad = requests.post(url, json={"until": "yesterday"}, headers=auth, timeout=10)
    assert bad.status_code == 400 and "ISO-8601" in bad.json()["error"]
    past = requests.post(url, json={"until": "2001-01-01T00:00:00Z"}, headers=auth, timeout=10)
    assert past.status_code == 400 and "past" in past.json()["error"]

    made = requests.post(url, json={"minutes": 30, "reason": "disk swap", "by": "alice"}, headers=auth, timeout=10)
    assert made.status_code == 201, made.text
    assert made.json()["maintenance"]["reason"] == "disk swap"
    windows = requests.get(f"{server.base}/api/maintenance", headers=OPERATOR, timeout=10).json()["windows"]
    assert windows["mnt-01"]["by"] == "action-token" and windows["mnt-01"]["note"] == "alice"

    for cpu in (99, 99, 99):
        assert server.report("mnt-01", cpu).status_code == 201
    for cpu in (99, 99, 99):  # a machine outside the window, as a marker that the job has run
        assert server.report("marker-01", cpu).status_code == 201
    wait_for(lambda: messages(webhook_server), 30, "the marker's alert")
    assert [m["dashfleet"]["machine"] for m in messages(webhook_server)] == ["marker-01"]

    ended = requests.delete(url, headers=auth, timeout=10)
    assert ended.status_code == 200 and ended.json()["ended"] is True
    assert requests.delete(url, headers=auth, timeout=10).status_code == 404
    wait_for(lambda: len(messages(webhook_server)) == 2, 30, "the maintenance-ended message")
    last = messages(webhook_server)[1]
    assert "mnt-01" in last["text"] and "still" in last["text"]

    fleet_wide = requests.post(f"{server.base}/api/maintenance", json={"minutes": 5}, headers=auth, timeout=10)
    assert fleet_wide.status_code == 201 and fleet_wide.json()["machine_id"] == "*"
    assert requests.delete(f"{server.base}/api/maintenance", headers=auth, timeout=10).status_code == 200
    events = requests.get(f"{server.base}/api/fleet/mnt-01/events", headers=OPERATOR, timeout=10).json()["events"]
    assert [(e["kind"], e["machine_id"]) for e in events[:2]] == [("maintenance_ended", "*"),
                                                                   ("maintenance_started", "*")]
    assert ("maintenance_ended", "mnt-01") in [(e["kind"], e["machine_id"]) for e in events]
    ats = [e["at"] for e in events]
    assert ats == sorted(ats, reverse=True), "newest first"


@pytest.mark.parametrize("server", [{"ttl": 1, "window": 2}], indirect=True)
def test_mass_outage_live_is_one_digest(server, webhook_server):
    machines = [f"desk-{i:02d}" for i in range(10)]
    for m in machines:
        assert server.report(m, 10).status_code == 201
    wait_for(lambda: messages(webhook_server), 30, "the digest")
    wait_for(lambda: not server.outbox(), 30, "the outbox to drain")
    [digest] = messages(webhook_server)
    assert "10 machines" in digest["text"]
    assert sorted(m["machine"] for m in digest["dashfleet"]["machines"]) == machines
    assert {m["status"] for m in digest["dashfleet"]["machines"]} == {"silent"}
