"""The example third-party package's action: listed by `dashfleet actions` (a real subprocess) and
run through `POST /api/action`. The package is installed by scripts/test.sh."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import metadata

import pytest

from conftest import dashfleet_cmd
from dashfleet_web.app import create_app

TOKEN = "example-action-token"


@pytest.fixture(autouse=True)
def _example_installed():
    names = {ep.name for ep in metadata.entry_points(group="dashfleet")}
    if "example_actions" not in names:
        pytest.fail("the example plugin is not installed: "
                    "pip install -e examples/dashfleet-example-plugin (scripts/test.sh does it)",
                    pytrace=False)


def test_dashfleet_actions_lists_the_example_action(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DASHFLEET_CONFIG", "ACTION_TOKEN")}
    done = subprocess.run(dashfleet_cmd() + ["actions", "--json"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    entries = {e["name"]: e for e in json.loads(done.stdout)}
    example = entries["example_top_processes"]
    assert example["plugin"] == "example_actions" and example["changes_machine"] is False
    assert example["params"]["count"]["default"] == 5 and example["supported"] and example["allowed"]
    text = subprocess.run(dashfleet_cmd() + ["actions"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=env)
    assert "example_top_processes" in text.stdout and "plugin: example_actions" in text.stdout


def test_example_action_runs_through_the_api(settings_factory):
    app = create_app(settings_factory({"actions.token": TOKEN,
                                       "actions.allowed": ["example_top_processes"]}), start=False)
    client = app.test_client()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = client.post("/api/action", headers=headers,
                               json={"action": "example_top_processes", "params": {"count": 3}})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["ok"] and body["action"] == "example_top_processes"
        assert 1 <= len(body["details"]["processes"]) <= 3
        assert body["summary"].startswith("top ")
        bad = client.post("/api/action", headers=headers,
                          json={"action": "example_top_processes", "params": {"count": 500}})
        assert bad.status_code == 422 and bad.get_json()["fields"] == ["count"]
        rows = client.get("/api/audit", headers=headers).get_json()
        assert [(r["action"], r["outcome"]) for r in rows] == [
            ("example_top_processes", "refused"), ("example_top_processes", "ok")]
    finally:
        app.extensions["dashfleet"].storage.close()
