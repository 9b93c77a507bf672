"""Logins under gunicorn with 2 workers on one SQLite file: the first-start setup link is printed
once (not once per worker), and a user removed through one worker is refused by every following
request, whichever worker answers it (nothing about a session is cached in a worker)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port

BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="gunicorn runs on Unix only")


@pytest.fixture
def gunicorn(tmp_path):
    config = tmp_path / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n\n[server]\ndata_dir = "{tmp_path}"\n'
                      'report_self = false\ntoken = "workers-fleet-token-0123456789"\n')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_", "ACTION_"))}
    env["DASHFLEET_CONFIG"] = str(config)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                                 "--no-control-socket", "dashfleet_web.app:create_app()"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise AssertionError(log.read_text())
        yield base, log, config
    finally:
        proc.terminate()
        proc.wait(20)


def _login(base: str, username: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{base}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = http.post(f"{base}/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                       allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return http


def test_two_workers_print_one_setup_link_and_refuse_a_removed_user_at_once(gunicorn):
    base, log, config = gunicorn
    # both workers have started (two "Booting worker" lines) and only one printed a link
    deadline = time.monotonic() + 30
    while log.read_text().count("Booting worker") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log.read_text()
    assert text.count("Booting worker") == 2
    links = re.findall(r"http://\S+/setup/[A-Za-z0-9_-]+", text)
    assert len(links) == 1, text
    path = links[0][links[0].index("/setup/"):]

    # the link makes the first server admin, who adds a viewer
    http = requests.Session()
    page = http.get(base + path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = http.post(base + path, data={"username": "root", "password": PASSWORD, "password2": PASSWORD,
                                        "csrf_token": token}, allow_redirects=False)
    assert done.status_code == 303
    csrf = {"X-CSRF-Token": http.get(f"{base}/api/session").json()["csrf_token"]}
    assert http.post(f"{base}/api/orgs/default/users", json={"username": "vic", "password": PASSWORD,
                                                             "role": "viewer"}, headers=csrf).status_code == 201
    vic = _login(base, "vic")
    assert all(vic.get(f"{base}/api/fleet").status_code == 200 for _ in range(10))

    assert http.delete(f"{base}/api/orgs/default/users/vic", headers=csrf).status_code == 204
    answers = [vic.get(f"{base}/api/fleet").status_code for _ in range(20)]
    assert answers == [401] * 20
    pages = [vic.get(f"{base}/fleet", allow_redirects=False).status_code for _ in range(10)]
    assert pages == [302] * 10
