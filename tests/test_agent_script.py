"""The `dashfleet-agent` console script (pyproject [project.scripts]) of an installed DashFleet: the
same program and flags as `dashfleet agent` and the PyInstaller binary, run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from test_agent_delivery import TOKEN, Receiver

SCRIPT = Path(sys.executable).with_name("dashfleet-agent")


@pytest.fixture
def script() -> Path:
    if not SCRIPT.exists():
        pytest.fail(f"{SCRIPT} is missing: run pip install -e . after changing [project.scripts]")
    return SCRIPT


def test_script_has_the_agent_flags(script):
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: dashfleet-agent")
    for flag in ("--server", "--token", "--machine-id", "--interval", "--state-dir", "--ca-bundle", "--once",
                 "--config"):
        assert flag in out.stdout, flag
    assert "status" in out.stdout


def test_script_takes_dash_h_like_dashfleet(script):
    for args in (["-h"], ["status", "-h"]):
        out = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("Usage: dashfleet-agent"), args


def test_script_delivers_one_report_with_once(script, tmp_path):
    receiver = Receiver()
    try:
        out = subprocess.run([str(script), "--server", receiver.url, "--token", TOKEN,
                              "--state-dir", str(tmp_path / "s"), "--once"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        [report] = receiver.reports
    finally:
        receiver.stop()
    assert report["machine_id"] == (tmp_path / "s" / "machine_id").read_text().strip()
    assert "cpu.percent" in report["metrics"]
