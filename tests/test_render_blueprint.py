"""render.yaml, the Render blueprint: its shape (build, start, disk, generated secrets, health
check), and its start command run here as Render runs it, with PORT set (bound to 127.0.0.1
instead of 0.0.0.0, the disk's mount path pointed at a temporary folder), reaching /healthz and an
authenticated read."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import requests
import yaml

from conftest import REPO, free_port, wait_for_http

BLUEPRINT = REPO / "render.yaml"


@pytest.fixture(scope="module")
def service() -> dict:
    doc = yaml.safe_load(BLUEPRINT.read_text())
    [web] = [s for s in doc["services"] if s["type"] == "web"]
    return web


def _env_vars(service: dict) -> dict[str, dict]:
    return {var["key"]: var for var in service["envVars"]}


def test_blueprint_builds_the_serve_extra_and_starts_gunicorn_on_the_app_factory(service):
    assert service["runtime"] == "python"
    assert service["buildCommand"] == "pip install '.[serve]'"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("gunicorn") for dep in extras["serve"])
    start = service["startCommand"]
    assert start.startswith("gunicorn ") and "--bind 0.0.0.0:$PORT" in start
    assert "'dashfleet_web.app:create_app()'" in start
    assert service["healthCheckPath"] == "/healthz"


def test_blueprint_keeps_data_on_a_disk_and_generates_both_tokens(service):
    mount = service["disk"]["mountPath"]
    assert service["disk"]["sizeGB"] >= 1
    env = _env_vars(service)
    assert env["DASHFLEET_STORAGE"]["value"] == f"sqlite:///{mount}/dashfleet.db"
    for token in ("FLEET_TOKEN", "ACTION_TOKEN"):
        assert env[token] == {"key": token, "generateValue": True}  # never a value in the repository
    text = BLUEPRINT.read_text()
    assert "fromDatabase" in text and "connectionString" in text and "'.[serve,postgresql]'" in text


def test_blueprint_start_command_serves_healthz_locally(service, tmp_path):
    if not Path(sys.executable).with_name("gunicorn").exists():
        pytest.fail("gunicorn is missing from the venv: pip install -e '.[test]'")
    mount = service["disk"]["mountPath"]
    disk = tmp_path / "disk"
    disk.mkdir()
    command = service["startCommand"].replace("0.0.0.0:", "127.0.0.1:")  # loopback only in tests
    port = free_port()
    operator = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOST", "DASHFLEET_CONFIG", "DASHFLEET_STORAGE", "FLEET_TOKEN", "ACTION_TOKEN")}
    env.update(PORT=str(port), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               DASHFLEET_STORAGE=_env_vars(service)["DASHFLEET_STORAGE"]["value"].replace(mount, str(disk)),
               FLEET_TOKEN=secrets.token_urlsafe(32), ACTION_TOKEN=operator)
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_for_http(base + "/healthz", proc, 60, "the blueprint's start command")
        assert health.status_code == 200
        assert requests.get(base + "/api/fleet", timeout=10).status_code == 401
        fleet = requests.get(base + "/api/fleet", headers={"Authorization": f"Bearer {operator}"}, timeout=10)
        assert fleet.status_code == 200, fleet.text
        assert (disk / "dashfleet.db").is_file()  # the data lands on the disk
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
