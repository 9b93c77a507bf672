"""scripts/install_systemd.sh staged into a tree (ROOT=...), and the units it installs.

systemd itself is not running here, so the script's ROOT mode is what runs: it must place the
program, the unit and an owner-only settings file, and refuse bad input with a clear message.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "install_systemd.sh"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_", "ACTION_"))}


def run(tmp_path, *args, **env):
    full = clean_env()
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
                                                 "DASHFLEET_AGENT_CA_BUNDLE=/etc/ssl/ca.pem"]
    token_file = root / "etc" / "dashfleet" / "agent.token"      # the token has a file of its own
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and token_file.read_text() == "tok-123\n"
    assert os.access(root / "usr" / "local" / "bin" / "dashfleet-agent", os.X_OK)
    unit = (root / "etc" / "systemd" / "system" / "dashfleet-agent.service").read_text()
    assert "LoadCredential=agent-token:/etc/dashfleet/agent.token" in unit
    assert "ExecStart=/usr/local/bin/dashfleet-agent --token-file %d/agent-token" in unit
    assert "EnvironmentFile=/etc/dashfleet/agent.env" in unit
    assert "tok-123" not in out.stdout + out.stderr


def test_agent_install_takes_the_token_from_a_file_and_the_agent_reads_what_it_wrote(tmp_path):
    """The staged token file is what the unit passes to --token-file: the real agent delivers with it."""
    from test_agent_delivery import TOKEN, Receiver

    program = tmp_path / "dashfleet-agent"
    shutil.copy(shutil.which("true"), program)
    given = tmp_path / "given.token"
    given.write_text(f"{TOKEN}\n")
    out = run(tmp_path, "agent", "--server", "https://dashfleet.example.org", "--binary", str(program),
              "--token-file", str(given))
    assert out.returncode == 0, out.stderr
    staged = tmp_path / "root" / "etc" / "dashfleet" / "agent.token"
    receiver = Receiver()
    try:
        agent = subprocess.run([str(Path(sys.executable).with_name("dashfleet-agent")), "--server", receiver.url,
                                "--token-file", str(staged), "--state-dir", str(tmp_path / "state"), "--once"],
                               capture_output=True, text=True, timeout=120, env=clean_env(), cwd=tmp_path)
        assert agent.returncode == 0, agent.stderr
        assert [r["auth"] for r in receiver.requests] == [f"Bearer {TOKEN}"]
    finally:
        receiver.stop()
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    out = run(tmp_path, "agent", "--server", "https://x.example", "--binary", str(program), "--token-file", str(empty))
    assert out.returncode == 2 and "is empty" in out.stderr


def fake_venv(tmp_path) -> None:
    """A stand-in for /opt/dashfleet/venv: its python accepts the installer's `-m pip install` (the
    real install of the project is not what these tests are about)."""
    bin_dir = tmp_path / "root" / "opt" / "dashfleet" / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "python").chmod(0o755)


def server_env(tmp_path) -> dict[str, str]:
    path = tmp_path / "root" / "etc" / "dashfleet" / "server.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_server_install_generates_an_action_token(tmp_path):
    fake_venv(tmp_path)
    out = run(tmp_path, "server")
    assert out.returncode == 0, out.stderr
    env = server_env(tmp_path)
    assert len(env["ACTION_TOKEN"]) >= 32 and len(env["FLEET_TOKEN"]) >= 32
    assert env["ACTION_TOKEN"] != env["FLEET_TOKEN"]
    assert "ACTION_TOKEN in" in out.stdout and env["ACTION_TOKEN"] not in out.stdout + out.stderr


def test_server_install_keeps_a_given_action_token_and_refuses_a_short_one(tmp_path):
    fake_venv(tmp_path)
    given = "a" * 40
    out = run(tmp_path, "server", ACTION_TOKEN=given, FLEET_TOKEN="f" * 40)
    assert out.returncode == 0, out.stderr
    assert server_env(tmp_path)["ACTION_TOKEN"] == given
    assert "action token was generated" not in out.stdout
    out = run(tmp_path, "server", "--action-token", "short")
    assert out.returncode == 2 and "at least 32 characters" in out.stderr


def test_server_install_adds_an_action_token_to_an_older_env_file(tmp_path):
    fake_venv(tmp_path)
    etc = tmp_path / "root" / "etc" / "dashfleet"
    etc.mkdir(parents=True)
    (etc / "server.env").write_text("FLEET_TOKEN=old-fleet-token\nPORT=5000\n")
    (etc / "server.env").chmod(0o600)
    out = run(tmp_path, "server")
    assert out.returncode == 0, out.stderr
    env = server_env(tmp_path)
    assert env["FLEET_TOKEN"] == "old-fleet-token" and env["PORT"] == "5000"   # nothing else changed
    assert len(env["ACTION_TOKEN"]) >= 32
    again = run(tmp_path, "server")                                          # a second run keeps it
    assert server_env(tmp_path)["ACTION_TOKEN"] == env["ACTION_TOKEN"] and "generated" not in again.stdout


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
