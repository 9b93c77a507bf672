"""scripts/install_systemd.sh staged into a tree (ROOT=...), and the units it installs.

systemd itself is not running here, so the script's ROOT mode is what runs: it must place the
program, the unit and an owner-only settings file, and refuse bad input with a clear message.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "install_systemd.sh"


def run(tmp_path, *args, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_"))}
    full.update(ROOT=str(tmp_path / "root"), **env)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=120)


def test_agent_install_places_program_unit_and_private_settings(tmp_path):
    program = tmp_path / "dashfleet-agent"
    shutil.copy(shutil.which("true"), program)          # any executable stands for the binary here
    out = run(tmp_path, "agent", "--server", "https://dashfleet.example.org", "--binary", str(program),
              "--ca-bundle", "/etc/ssl/ca.pem", DASHFLEET_AGENT_TOKEN="tok-123")
    assert out.returncode == 0, out.stderr
    root = tmp_path / "root"
    env_file = root / "etc" / "dashfleet" / "agent.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text().splitlines() == ["DASHFLEET_AGENT_SERVER=https://dashfleet.example.org",
                                                 "DASHFLEET_AGENT_TOKEN=tok-123",
                                                 "DASHFLEET_AGENT_CA_BUNDLE=/etc/ssl/ca.pem"]
    assert os.access(root / "usr" / "local" / "bin" / "dashfleet-agent", os.X_OK)
    unit = (root / "etc" / "systemd" / "system" / "dashfleet-agent.service").read_text()
    assert "ExecStart=/usr/local/bin/dashfleet-agent" in unit and "EnvironmentFile=/etc/dashfleet/agent.env" in unit
    assert "tok-123" not in out.stdout + out.stderr


def test_agent_install_refuses_missing_token_and_server(tmp_path):
    out = run(tmp_path, "agent", "--server", "https://x.example")
    assert out.returncode == 2 and "needs the fleet token" in out.stderr
    out = run(tmp_path, "agent", "--token", "t")
    assert out.returncode == 2 and "needs --server" in out.stderr
    out = run(tmp_path, "agnet")
    assert out.returncode == 2 and "unknown role" in out.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ["dashfleet-agent.service", "dashfleet-server.service"])
def test_units_pass_systemd_analyze(unit):
    out = subprocess.run(["systemd-analyze", "verify", str(REPO / "deploy" / "systemd" / unit)],
                         capture_output=True, text=True, timeout=60)
    # The programs are not installed on this machine; every other complaint is a real problem.
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if line.strip() and "is not executable: No such file or directory" not in line]
    assert problems == []
