"""One-time agent links against real server processes on 127.0.0.1: single use under 20 concurrent
downloads through gunicorn with 2 workers on one SQLite file, and an enrolled agent (a real
`dashfleet agent`) reporting into its organisation with nothing but the unpacked config."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import dashfleet_cmd, free_port
from dashfleet_core.accounts import Accounts
from dashfleet_core.config import AGENT_CONFIG_FILE, load_settings
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

BIN = Path(sys.executable).parent
ACTION_TOKEN = "operator-token-of-the-live-link-tests"
OPERATOR = {"Authorization": f"Bearer {ACTION_TOKEN}"}
AGENT_BYTES = b"#!/bin/sh\necho agent\n" + os.urandom(200_000)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_", "ACTION_"))
           and k not in ("HOST", "PORT")}
    env.update(extra)
    return env


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def site(tmp_path):
    """A server folder: config (SQLite, downloads folder with the agent file), organisation acme."""
    folder = tmp_path / "server"
    (folder / "dist").mkdir(parents=True)
    (folder / "dist" / "fleet_agent").write_bytes(AGENT_BYTES)
    (folder / "dist" / "fleet_agent").chmod(0o755)
    port = free_port()
    config = folder / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{folder}/dashfleet.db"\n\n[server]\n'
                      f'data_dir = "{folder}"\nport = {port}\nreport_self = false\npublic_url = "http://127.0.0.1:{port}"\n'
                      f'downloads_dir = "{folder / "dist"}"\n')
    settings = load_settings(config, env={})
    with open_storage(settings, make_plugin_manager(settings)) as storage:
        Accounts(storage, settings).orgs.create("Acme")
    procs: list[subprocess.Popen] = []
    yield folder, config, port, procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _link(base: str, **body) -> str:
    r = requests.post(base + "/api/agent/link", json={"ttl": 600, "path": "dist/fleet_agent", **body},
                      headers=OPERATOR, timeout=10)
    assert r.status_code == 201, r.text
    return base + r.json()["link"]


@pytest.mark.skipif(os.name != "posix", reason="gunicorn runs on Unix only")
def test_of_20_concurrent_downloads_through_two_gunicorn_workers_exactly_one_gets_the_file(site):
    import psutil

    folder, config, port, procs = site
    proc = subprocess.Popen([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                             "--no-control-socket", "dashfleet_web.app:create_app()"],
                            cwd=folder, env=_env(DASHFLEET_CONFIG=str(config), ACTION_TOKEN=ACTION_TOKEN),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/healthz", proc)
    deadline = time.monotonic() + 30
    while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(psutil.Process(proc.pid).children()) == 2

    for _ in range(2):  # twice: the first round may have met one worker still starting
        url = _link(base)
        start = threading.Barrier(20)

        def fetch(_: int) -> tuple[int, bytes]:
            start.wait(30)
            r = requests.get(url, timeout=60)
            return r.status_code, r.content

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(fetch, range(20)))
        codes = sorted(code for code, _ in results)
        assert codes == [200] + [410] * 19, codes
        [body] = [body for code, body in results if code == 200]
        assert body == AGENT_BYTES
    settings = load_settings(config, env={})
    with open_storage(settings, make_plugin_manager(settings)) as storage:
        rows = [row for row in storage.audit(org="default", limit=200) if row.action == "agent_link.download"]
    assert sorted(row.outcome for row in rows) == ["ok"] * 2 + ["refused"] * 38


def _unpack(url: str, into: Path) -> Path:
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text[:200]
    assert int(r.headers["Content-Length"]) == len(r.content)
    into.mkdir()
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(into)
    assert (into / "fleet_agent").read_bytes() == AGENT_BYTES
    return into / AGENT_CONFIG_FILE


def test_an_enrolled_agent_reports_into_its_organisation_with_only_the_unpacked_config(site, tmp_path):
    folder, config, port, procs = site
    proc = subprocess.Popen(dashfleet_cmd() + ["web", "--config", str(config)], cwd=folder,
                            env=_env(ACTION_TOKEN=ACTION_TOKEN), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/healthz", proc)

    # 1. the unpacked config given with --config
    unpacked = _unpack(_link(base, org="acme", enroll=True), tmp_path / "first")
    agent = subprocess.run(dashfleet_cmd() + ["agent", "--config", str(unpacked), "--once"], cwd=tmp_path,
                           env=_env(DASHFLEET_AGENT_STATE_DIR=str(tmp_path / "state-1"),
                                    DASHFLEET_AGENT_MACHINE_ID="enrolled-1"),
                           capture_output=True, text=True, timeout=120)
    assert agent.returncode == 0, agent.stdout + agent.stderr

    # 2. the unpacked config in the agent's working folder, no flag at all
    beside = _unpack(_link(base, org="acme", enroll=True), tmp_path / "second").parent
    agent = subprocess.run(dashfleet_cmd() + ["agent", "--once"], cwd=beside,
                           env=_env(DASHFLEET_AGENT_STATE_DIR=str(tmp_path / "state-2"),
                                    DASHFLEET_AGENT_MACHINE_ID="enrolled-2"),
                           capture_output=True, text=True, timeout=120)
    assert agent.returncode == 0, agent.stdout + agent.stderr

    acme = requests.get(base + "/api/fleet", headers={**OPERATOR, "X-DashFleet-Org": "acme"}, timeout=10).json()
    assert sorted(m["machine_id"] for m in acme["machines"]) == ["enrolled-1", "enrolled-2"]
    default = requests.get(base + "/api/fleet", headers=OPERATOR, timeout=10).json()
    assert default["machines"] == []
