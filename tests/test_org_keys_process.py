"""Organisation keys with real processes: a `dashfleet agent` reporting with an organisation's report
key into a real `dashfleet web`; a key revoked through one gunicorn worker (or from the shell) and
refused by every later request on both workers; and a data folder from before organisations
keeping its machines in `default` and its seed tokens working."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from conftest import dashfleet_cmd, free_port
from dashfleet_core.fleet import Fleet
from dashfleet_web.app import create_app
from test_agent_e2e import OPERATOR_TOKEN, AgentProc, Server, clean_env, wait_for

BIN = Path(sys.executable).parent


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


OPERATOR = bearer(OPERATOR_TOKEN)


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    yield srv
    srv.stop()


def test_an_agent_with_a_report_key_reports_into_its_organisation_and_no_secret_is_logged(tmp_path, server):
    server.start()
    r = requests.post(server.url + "/api/orgs", json={"name": "Acme"}, headers=OPERATOR, timeout=10)
    assert r.status_code == 201
    admin = r.json()["api_key"]
    r = requests.post(server.url + "/api/orgs/acme/keys", json={"name": "agents", "scopes": ["report"]},
                      headers=bearer(admin), timeout=10)
    assert r.status_code == 201
    report_key = r.json()["secret"]

    agent = AgentProc(tmp_path, server.url, token=report_key, interval=1.0)
    agent.start()
    try:
        mid = agent.machine_id()

        def in_acme():
            answer = requests.get(server.url + "/api/fleet", headers=bearer(admin), timeout=10)
            return answer.status_code == 200 and mid in {m["machine_id"] for m in answer.json()["machines"]}

        wait_for(in_acme, 60, "the agent's machine in Acme's fleet")
    finally:
        agent.stop()
    assert agent.proc.returncode == 0, agent.log.read_text()
    # not in default; the operator finds it in acme; the report key itself cannot read
    assert mid not in {m["machine_id"] for m in server.read("/api/fleet")["machines"]}
    r = requests.get(f"{server.url}/api/fleet/{mid}", headers={**OPERATOR, "X-DashFleet-Org": "acme"}, timeout=10)
    assert r.status_code == 200 and r.json()["machine_id"] == mid
    assert requests.get(f"{server.url}/api/fleet/{mid}", headers=OPERATOR, timeout=10).status_code == 404
    assert requests.get(server.url + "/api/fleet", headers=bearer(report_key), timeout=10).status_code == 403
    keys = requests.get(server.url + "/api/orgs/acme/keys", headers=bearer(admin), timeout=10).json()["keys"]
    assert next(k for k in keys if k["name"] == "agents")["last_used_at"] is not None
    server.stop()
    logs = server.log.read_text(errors="replace") + agent.log.read_text(errors="replace")
    assert "POST /api/fleet/report" in logs  # the access log was on (-v)
    for secret in (admin, report_key, OPERATOR_TOKEN):
        assert secret not in logs


# --- a revoked key on the other gunicorn worker ---------------------------------------------------------


class Gunicorn:
    """gunicorn with 2 workers on one SQLite file; its access log says which worker (pid) answered
    each request, by a number in the query string."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.config = tmp_path / "dashfleet.toml"
        self.config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n\n[server]\n'
                               f'data_dir = "{tmp_path}"\nreport_self = false\n'
                               # every refused request is a 401 here, not the throttle's 429
                               'failed_auth_per_minute = 100000\n')
        self.env = clean_env(ACTION_TOKEN=OPERATOR_TOKEN, DASHFLEET_CONFIG=str(self.config))
        self.access = tmp_path / "access.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.count = 0
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--no-control-socket",
             "--access-logfile", str(self.access), "--access-logformat", "%(p)s %(s)s %(q)s",
             "dashfleet_web.app:create_app()"],
            cwd=tmp_path, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up():
            assert self.proc.poll() is None, self.proc.stderr.read().decode(errors="replace")
            try:
                return requests.get(self.url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 60, "gunicorn to answer /healthz")

    def fleet_reads(self, secret: str, rounds: int = 10, parallel: int = 4) -> dict[int, tuple[str, int]]:
        """`rounds` x `parallel` concurrent `GET /api/fleet` with `secret` (concurrent, so both sync
        workers take some); returns {request number: (worker pid, status)} from the access log."""
        numbers = list(range(self.count, self.count + rounds * parallel))
        self.count += len(numbers)
        statuses: dict[int, int] = {}

        def one(n: int) -> None:
            statuses[n] = requests.get(f"{self.url}/api/fleet?n={n}", headers=bearer(secret), timeout=30).status_code

        for start in range(0, len(numbers), parallel):
            threads = [threading.Thread(target=one, args=(n,)) for n in numbers[start:start + parallel]]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        def logged():
            found = {}
            for line in self.access.read_text().splitlines() if self.access.exists() else []:
                pid, status, query = (line.split(" ", 2) + ["", ""])[:3]
                if query.startswith("n=") and int(query[2:]) in statuses:
                    found[int(query[2:])] = (pid, int(status))
            return found if len(found) == len(numbers) else None

        found = wait_for(logged, 30, "the access log lines of the requests")
        assert {n: s for n, (_, s) in found.items()} == statuses
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stderr.close()


@pytest.fixture
def gunicorn(tmp_path):
    server = Gunicorn(tmp_path)
    yield server
    server.stop()


def _workers(answers: dict[int, tuple[str, int]]) -> set[str]:
    return {pid for pid, _ in answers.values()}


def _reads_on_both_workers(gunicorn: Gunicorn, secret: str) -> dict[int, tuple[str, int]]:
    """Rounds of concurrent reads until both workers have answered some (which worker accepts a
    connection is the kernel's choice: one can win a whole round), at most 25 rounds of 40."""
    answers: dict[int, tuple[str, int]] = {}
    for _ in range(25):
        answers.update(gunicorn.fleet_reads(secret))
        if len(_workers(answers)) == 2:
            break
    return answers


@pytest.mark.skipif(os.name != "posix", reason="gunicorn runs on Unix only")
def test_a_revoked_key_is_refused_by_every_later_request_on_both_gunicorn_workers(gunicorn):
    r = requests.post(gunicorn.url + "/api/orgs", json={"name": "Acme"}, headers=OPERATOR, timeout=10)
    admin = r.json()["api_key"]
    made = [requests.post(gunicorn.url + "/api/orgs/acme/keys", json={"name": f"reader {i}", "scopes": ["read"]},
                          headers=bearer(admin), timeout=10).json() for i in (1, 2)]
    by_api, by_shell = made[0], made[1]

    # both workers have accepted both keys (so any per-worker memory of them would be warm)
    for key in (by_api, by_shell):
        answers = _reads_on_both_workers(gunicorn, key["secret"])
        assert {s for _, s in answers.values()} == {200}
        assert len(_workers(answers)) == 2, answers

    # revoked through the API (one worker answers the DELETE): every later request is refused, on both
    r = requests.delete(f"{gunicorn.url}/api/orgs/acme/keys/{by_api['key']['id']}", headers=bearer(admin), timeout=10)
    assert r.status_code == 204
    answers = _reads_on_both_workers(gunicorn, by_api["secret"])
    assert {s for _, s in answers.values()} == {401} and len(_workers(answers)) == 2, answers

    # revoked from the shell, on the same storage: the same
    done = subprocess.run(dashfleet_cmd() + ["key", "revoke", by_shell["key"]["id"]], env=gunicorn.env,
                          cwd=gunicorn.dir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answers = _reads_on_both_workers(gunicorn, by_shell["secret"])
    assert {s for _, s in answers.values()} == {401} and len(_workers(answers)) == 2, answers
    # the admin key was never touched
    assert requests.get(gunicorn.url + "/api/fleet", headers=bearer(admin), timeout=10).status_code == 200


# --- upgrading a data folder from before organisations ----------------------------------------------


FLEET_TOKEN = "fleet-token-of-the-upgrade-test"


@pytest.mark.parametrize("backend", ["sqlite", "json"])
def test_a_data_folder_from_before_organisations_keeps_its_machines_in_default(backend, tmp_path, settings_factory):
    url = (f"sqlite:///{tmp_path}/dashfleet.db" if backend == "sqlite" else f"json:///{tmp_path}/fleet_state.json")
    overrides = {"storage.url": url, "server.public_read": False, "server.token": FLEET_TOKEN,
                 "actions.token": OPERATOR_TOKEN, "server.report_self": False}
    # the previous release: reports with the FLEET_TOKEN, no organisation ever made
    before = Fleet(settings_factory(overrides))
    client = create_app(fleet=before, start=False).test_client()
    for machine in ("pc-1", "pc-2"):
        r = client.post("/api/fleet/report", json={"machine_id": machine, "seq": 1, "metrics": {"cpu.percent": 5}},
                        headers=bearer(FLEET_TOKEN))
        assert r.status_code == 201
    assert not before.storage.kv_list("orgs", org="~server")
    before.stop()

    after = Fleet(settings_factory(overrides))
    try:
        client = create_app(fleet=after, start=False).test_client()
        ids = lambda headers: {m["machine_id"] for m in client.get("/api/fleet", headers=headers).json["machines"]}  # noqa: E731
        assert ids(OPERATOR) == {"pc-1", "pc-2"}
        assert [o["id"] for o in client.get("/api/orgs", headers=OPERATOR).json["orgs"]] == ["default"]
        r = client.post("/api/fleet/report", json={"machine_id": "pc-1", "seq": 2}, headers=bearer(FLEET_TOKEN))
        assert r.status_code == 201
        assert after.storage.machine("pc-1").last_seq == 2
        # a new organisation starts empty and sees nothing of default
        admin = client.post("/api/orgs", json={"name": "Acme"}, headers=OPERATOR).json["api_key"]
        assert ids(bearer(admin)) == set() and ids({**OPERATOR, "X-DashFleet-Org": "acme"}) == set()
        assert client.get("/api/fleet/pc-1", headers=bearer(admin)).status_code == 404
        assert ids(OPERATOR) == {"pc-1", "pc-2"}
    finally:
        after.stop()
