"""The one-file `dashfleet` binary (server + CLI): built with PyInstaller by
`scripts/build_binaries.sh server` in the build venv (.build-venv, kept between runs like the
agent binary's, incremental), then run with an almost empty environment, no Python around.

It serves the pages, static files and Chart.js from inside the bundle, reads need a credential as
everywhere, and the frozen CLI still finds the built-in plugins (pkgutil) and the hosts' commands
(`dashfleet.commands` entry points from the bundled metadata).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO, free_port, wait_for_http

BINARY = REPO / "dist" / "dashfleet"
OPERATOR_TOKEN = "operator-token-of-the-binary-test"


@pytest.fixture(scope="module")
def binary() -> Path:
    if os.name != "posix":
        pytest.skip("the Linux binary is built here; the Windows .exe is built on Windows")
    out = subprocess.run([str(REPO / "scripts" / "build_binaries.sh"), "server"], capture_output=True,
                         text=True, timeout=1800, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert BINARY.is_file()
    return BINARY


def _run(binary: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], env={"HOME": str(cwd)}, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_frozen_cli_has_the_hosts_commands_and_the_builtin_plugins(binary, tmp_path):
    helped = _run(binary, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    commands = {line.split()[0] for line in helped.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert {"web", "agent", "status", "plugins", "migrate"} <= commands  # entry points + core commands
    assert "unavailable" not in helped.stderr, helped.stderr
    listed = _run(binary, "plugins", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[1] for line in listed.stdout.splitlines() if line.strip()}
    assert {"cpu", "memory", "disk", "uptime", "thresholds", "sqlite", "json", "csv", "webhook",
            "flush_dns", "cleanup_temp"} <= names
    agent_help = _run(binary, "agent", "--help", cwd=tmp_path)
    assert agent_help.returncode == 0 and "--server" in agent_help.stdout


def test_frozen_server_serves_pages_static_files_and_the_api(binary, tmp_path):
    (tmp_path / "dashfleet.toml").write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n\n[server]\ndata_dir = "{tmp_path}"\n'
        "self_interval = 1\n")
    port = free_port()
    proc = subprocess.Popen([str(binary), "web", "--host", "127.0.0.1", "--port", str(port)],
                            env={"HOME": str(tmp_path), "ACTION_TOKEN": OPERATOR_TOKEN}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_for_http(base + "/healthz", proc, 60, "the binary's server")  # a one-file binary unpacks itself first
        assert health.status_code == 200

        bearer = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        page = requests.get(base + "/fleet", allow_redirects=False, timeout=10)
        assert page.status_code == 302 and "/login" in page.headers["Location"]  # no session
        page = requests.get(base + "/fleet", headers=bearer, timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "/static/vendor/chart.umd.min.js" in page.text or "/static/fleet.js" in page.text  # a template from the bundle
        chart = requests.get(base + "/static/vendor/chart.umd.min.js", timeout=10)
        assert chart.status_code == 200 and "Chart" in chart.text[:2000]
        assert chart.content == (REPO / "web" / "static" / "vendor" / "chart.umd.min.js").read_bytes()
        css = requests.get(base + "/static/style.css", timeout=10)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")

        refused = requests.get(base + "/api/fleet", timeout=10)
        assert refused.status_code == 401  # reads need a credential
        fleet = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the server reports its own machine every second
            fleet = requests.get(base + "/api/fleet", headers=bearer, timeout=10)
            assert fleet.status_code == 200, fleet.text
            if fleet.json().get("machines"):
                break
            time.sleep(0.3)
        assert fleet is not None and fleet.json()["machines"], fleet.text  # collectors ran in the bundle
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "DashFleet server stopped." in out
