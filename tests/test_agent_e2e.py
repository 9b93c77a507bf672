"""End to end: a real `dashfleet web` server process and a real `dashfleet agent` process.

The server is killed with SIGKILL while the agent keeps collecting; the agent is killed with
SIGKILL in the middle of flushing its backlog; the server refuses the agent's token. Afterwards the
server's own SQLite file (opened through `open_storage`) must hold every seq from the first to the
last exactly once, received in order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import dashfleet_cmd, free_port
from dashfleet_agent.status import read_status
from dashfleet_core.config import load_settings
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

TOKEN = "e2e-fleet-token"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_"))}
    env.update(extra)
    return env


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


OPERATOR_TOKEN = "operator-token-of-the-e2e-tests"


class Server:
    """`dashfleet web` on a fixed port with its storage in tmp_path; can be killed and restarted."""

    def __init__(self, tmp_path: Path, token: str = TOKEN):
        self.dir = tmp_path / "server"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.storage_url = f"sqlite:///{self.dir}/dashfleet.db"
        self.env = clean_env(FLEET_TOKEN=token, ACTION_TOKEN=OPERATOR_TOKEN, DASHFLEET_STORAGE=self.storage_url)
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "server.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(dashfleet_cmd() + ["-v", "web", "--port", str(self.port)],
                                         cwd=self.dir, env=self.env, stdout=log, stderr=subprocess.STDOUT)

        def up():
            try:
                return requests.get(self.url + "/healthz", timeout=1).status_code < 500
            except requests.RequestException:
                assert self.proc.poll() is None, self.log.read_text()
                return False

        wait_for(up, 60, "the server to answer /healthz")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def stored(self, machine_id: str):
        """(seq, received_at) of the machine's stored reports, from the server's own database."""
        settings = load_settings(None, env={})
        storage = open_storage(settings, make_plugin_manager(settings), self.storage_url)
        try:
            return [(r.report.seq, r.received_at) for r in storage.iter_reports(machine_id=machine_id)]
        finally:
            close = getattr(storage, "close", None)
            if close:
                close()

    def read(self, path: str) -> dict:
        """A read API answer, as the server operator (reads need a credential)."""
        r = requests.get(self.url + path, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10)
        r.raise_for_status()
        return r.json()

    def report_posts(self) -> int:
        return self.log.read_text(errors="replace").count("POST /api/fleet/report ")


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    yield srv
    srv.stop()


class AgentProc:
    def __init__(self, tmp_path: Path, server_url: str, token: str = TOKEN, interval: float = 1.0,
                 batch_size: int = 50):
        self.state = tmp_path / "agent-state"
        self.config = tmp_path / "agent.toml"
        self.server_url, self.token = server_url, token
        self.interval, self.batch_size = interval, batch_size
        self.log = tmp_path / "agent.log"
        self.proc: subprocess.Popen | None = None

    def start(self, interval: float | None = None, batch_size: int | None = None) -> None:
        self.config.write_text(f"[agent]\nbatch_size = {batch_size or self.batch_size}\n"
                               "backoff_max_seconds = 2\n")
        cmd = dashfleet_cmd() + ["agent", "--config", str(self.config), "--server", self.server_url,
                                 "--token", self.token, "--state-dir", str(self.state),
                                 "--interval", str(interval or self.interval)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.state.parent)

    def status(self) -> dict:
        return read_status(self.state)

    def machine_id(self) -> str:
        return wait_for(lambda: (self.state / "machine_id").exists() and
                        (self.state / "machine_id").read_text().strip(), 30, "the machine id")

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def assert_every_seq_once_in_order(stored, first: int, last: int):
    seqs = [s for s, _ in stored]
    assert sorted(seqs) == list(range(first, last + 1)), "a seq is missing or stored twice"
    by_seq = sorted(stored)
    received = [r for _, r in by_seq]
    assert received == sorted(received), "reports were received out of order"


def test_server_killed_for_several_intervals_loses_nothing(tmp_path, server):
    server.start()
    agent = AgentProc(tmp_path, server.url, interval=1.0)
    agent.start()
    try:
        mid = agent.machine_id()
        wait_for(lambda: len(server.stored(mid)) >= 2, 60, "two reports on the server")
        server.kill()
        down_from = agent.status()["next_seq"]
        # Several intervals without a server: the agent keeps collecting into its spool.
        wait_for(lambda: agent.status()["spool_depth"] >= 5, 60, "five reports spooled while the server is down")
        server.start()
        wait_for(lambda: agent.status()["next_seq"] > down_from + 6 and agent.status()["spool_depth"] == 0,
                 90, "the backlog to be flushed after the restart")
    finally:
        agent.stop()
    assert agent.proc.returncode == 0, agent.log.read_text()
    stored = server.stored(mid)
    last = agent.status()["next_seq"] - 1
    first = min(s for s, _ in stored)
    assert_every_seq_once_in_order(stored, first, last)
    assert last - first + 1 >= 8                     # before, during and after the outage
    log = agent.log.read_text()
    assert "cannot reach" in log and "delivery works again" in log


def test_agent_killed_mid_flush_loses_nothing_and_stores_nothing_twice(tmp_path, server):
    # A backlog first: the agent collects quickly while no server listens.
    agent = AgentProc(tmp_path, server.url, interval=0.05, batch_size=1)
    agent.start()
    try:
        wait_for(lambda: (agent.state / "spool.db").exists() and agent.status()["spool_depth"] >= 80,
                 120, "a backlog of 80 reports")
    finally:
        agent.stop()
    mid = agent.machine_id()
    backlog = agent.status()
    first, last_before = backlog["next_seq"] - backlog["spool_depth"], backlog["next_seq"] - 1

    server.start()
    agent.start(interval=1.0, batch_size=1)          # flushes one report per request
    try:
        wait_for(lambda: len(server.stored(mid)) >= 5, 60, "the flush to be under way")
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
    finally:
        agent.stop()
    at_kill = len(server.stored(mid))
    assert at_kill < last_before - first + 1, "the flush had finished: not killed mid-flush"

    agent.start(interval=1.0, batch_size=50)         # the next start sends the rest, resending the unacknowledged
    try:
        wait_for(lambda: agent.status()["spool_depth"] == 0 and agent.status()["next_seq"] > last_before + 3,
                 120, "the rest of the backlog")
    finally:
        agent.stop()
    stored = server.stored(mid)
    assert_every_seq_once_in_order(stored, first, agent.status()["next_seq"] - 1)


def test_refused_token_gives_a_clear_message_and_no_retry_storm(tmp_path, server):
    server.start()
    agent = AgentProc(tmp_path, server.url, token="not-the-fleet-token", interval=0.2)
    agent.start()
    try:
        wait_for(lambda: (agent.state / "spool.db").exists() and agent.status()["spool_depth"] >= 20,
                 60, "twenty reports collected (four seconds at 0.2 s)")
    finally:
        agent.stop()
    log = agent.log.read_text()
    assert log.count("the server refused the agent's token (HTTP 401") == 1, log
    assert "not-the-fleet-token" not in log
    assert server.report_posts() == 1                # one refused POST, then it waits (blocked_retry_seconds)
    status = agent.status()
    assert status["last_error"]["status"] == 401 and status["last_delivery"] is None


def test_forged_reports_for_a_keyed_machine_are_refused_and_the_real_agent_loses_nothing(tmp_path, server):
    """The impersonation of the attack, end to end: a real agent binds its machine key, someone
    holding the fleet token posts the machine's next 1,000 seqs (a batch, then one by one), and
    every forged report is refused while every report of the real agent is stored, in order."""
    server.start()
    agent = AgentProc(tmp_path, server.url, interval=0.3)
    agent.start()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        mid = agent.machine_id()
        wait_for(lambda: len(server.stored(mid)) >= 3, 60, "three reports from the real agent")
        nxt = agent.status()["next_seq"]
        forged = [{"machine_id": mid, "seq": seq, "hostname": "forged", "metrics": {"cpu.percent": 1.0}}
                  for seq in range(nxt, nxt + 1000)]
        r = requests.post(server.url + "/api/fleet/report", json=forged, headers=auth, timeout=30)
        assert r.status_code == 403 and "bound to a machine key" in r.json()["error"]
        refused = [requests.post(server.url + "/api/fleet/report", json=one, headers=auth, timeout=10).status_code
                   for one in forged[:20]]
        assert refused == [403] * 20
        wait_for(lambda: agent.status()["next_seq"] > nxt + 5 and agent.status()["spool_depth"] == 0,
                 60, "five more reports delivered by the real agent")
    finally:
        agent.stop()
    stored = server.stored(mid)
    assert_every_seq_once_in_order(stored, min(s for s, _ in stored), agent.status()["next_seq"] - 1)
    machine = server.read(f"/api/fleet/{mid}")
    assert machine["hostname"] != "forged" and machine["last_seq"] == agent.status()["next_seq"] - 1
    assert "bound to a machine key" not in agent.log.read_text(), "the real agent was never refused"


def test_a_collector_failing_on_the_agent_shows_on_the_server(tmp_path, server):
    """The agent learns from the server's answers that it takes `collector_failures` (an older
    server would refuse the field, so the first report goes without it) and from then on its
    reports carry them: the server scores the failure and the fleet shows it."""
    (tmp_path / "failing_probe.py").write_text(
        "from dashfleet_core import hookimpl\n"
        "class Fan:\n"
        "    name = 'fan_sensor'\n"
        "    metrics = []\n"
        "    def collect(self):\n"
        "        raise RuntimeError('no driver for the fan')\n"
        "@hookimpl\n"
        "def register_collectors(register):\n"
        "    register(Fan())\n")
    config = tmp_path / "agent.toml"
    config.write_text('[plugins]\nmodules = ["failing_probe"]\n')
    server.start()
    cmd = dashfleet_cmd() + ["agent", "--config", str(config), "--server", server.url, "--token", TOKEN,
                             "--state-dir", str(tmp_path / "state"), "--machine-id", "fan-pc", "--once"]
    env = clean_env(PYTHONPATH=str(tmp_path))
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    before = server.read("/api/fleet/fan-pc")
    assert not any("failed on the agent" in f["message"] for f in before["findings"])
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    after = server.read("/api/fleet/fan-pc")
    assert any(f["message"] == "collector 'fan_sensor' failed on the agent: RuntimeError: no driver for the fan"
               and f["severity"] == "warn"
               for f in after["findings"]), after["findings"]
    assert after["status"] != "ok"


def test_the_agent_collects_on_the_engine_s_scheduler(tmp_path, server, thread_probe):
    """No host keeps a loop of its own: a running agent's collections are jobs of the engine's
    APScheduler scheduler (a collector that records which thread called it says so), and every
    report still reaches the server once, in order."""
    config = thread_probe
    server.start()
    state = tmp_path / "state"
    proc = subprocess.Popen(dashfleet_cmd() + ["agent", "--config", str(config), "--server", server.url,
                                               "--token", TOKEN, "--state-dir", str(state), "--machine-id",
                                               "sched-pc", "--interval", "0.2"],
                            env=clean_env(PYTHONPATH=str(tmp_path)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(server.stored("sched-pc")) >= 4, 60, "four reports on the server")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    threads = (tmp_path / "threads.txt").read_text().split()
    assert len(threads) >= 4 and "MainThread" not in threads, threads
    stored = server.stored("sched-pc")
    assert_every_seq_once_in_order(stored, min(s for s, _ in stored), max(s for s, _ in stored))
