"""The third-party example plugin (examples/dashfleet-example-plugin), installed as a real package
(scripts/test.sh pip-installs it): DashFleet finds it through the `dashfleet` entry-point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from conftest import REPO, dashfleet_cmd

EXAMPLE = REPO / "examples" / "dashfleet-example-plugin"


@pytest.fixture(scope="module", autouse=True)
def installed():
    try:
        dist = metadata.distribution("dashfleet-example-plugin")
    except metadata.PackageNotFoundError:
        pytest.fail("dashfleet-example-plugin is not installed: run scripts/test.sh, or "
                    "pip install -e examples/dashfleet-example-plugin", pytrace=False)
    return dist


def run(args, cwd: Path):
    env = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    return subprocess.run(dashfleet_cmd() + args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_it_is_a_dashfleet_entry_point(installed):
    eps = {ep.name: ep.value for ep in installed.entry_points if ep.group == "dashfleet"}
    assert eps["example"] == "dashfleet_example.plugin"


def test_it_appears_in_dashfleet_plugins(tmp_path):
    r = run(["plugins", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    info = {p["name"]: p for p in json.loads(r.stdout)}["example"]
    assert info["source"] == "entrypoint" and info["enabled"] is True
    assert info["version"] == "0.1.0"
    assert info["hooks"] == ["register_collectors", "register_health_checks"]
    r = run(["plugins"], tmp_path)
    assert any(line.split()[:2] == ["on", "example"] for line in r.stdout.splitlines())


def test_its_metric_is_in_status_json(tmp_path):
    r = run(["status", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)["metrics"]
    assert metrics["example.logged_in_users"] >= 0
    assert "cpu.percent" in metrics


def test_its_health_check_reads_its_own_settings(tmp_path):
    (tmp_path / "dashfleet.toml").write_text("[plugins.example]\nmax_uptime_days = 0.00001\n")
    r = run(["status", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    findings = json.loads(r.stdout)["health"]["findings"]
    assert [f["source"] for f in findings if f["source"] == "reboot_overdue"] == ["reboot_overdue"]
    (tmp_path / "dashfleet.toml").write_text("[plugins.example]\nmax_uptime_dayz = 3\n")
    r = run(["status", "--json"], tmp_path)
    assert r.returncode == 2 and "[plugins.example.max_uptime_dayz] unknown key" in r.stderr


def test_disabling_it_removes_its_metric(tmp_path):
    (tmp_path / "dashfleet.toml").write_text('[plugins]\ndisabled = ["example"]\n')
    r = run(["status", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "example.logged_in_users" not in json.loads(r.stdout)["metrics"]


def test_its_own_tests_pass_with_the_published_fixtures(tmp_path):
    """The plugin's test suite uses dashfleet_engine & co. from the pytest11 entry point only,
    and runs the shipped storage contract suite (every one of its tests) on a backend."""
    from dashfleet_core.testing import StorageContract

    contract = sum(name.startswith("test_") for name in dir(StorageContract))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(EXAMPLE / "tests")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{4 + contract} passed" in r.stdout
