"""The stand-alone agent binary: build it with PyInstaller (scripts/build_agent_binary.sh, its own
venv, incremental) and run it with an empty environment against a real receiver.

It costs a build (about a minute the first time on a 2-core machine, less when .build-venv and
build/pyinstaller are warm); CI runs it like every other test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from test_agent_delivery import TOKEN, Receiver

REPO = Path(__file__).resolve().parent.parent
BINARY = REPO / "dist" / "dashfleet-agent"


@pytest.fixture(scope="module")
def binary():
    if os.name != "posix":
        pytest.skip("the Linux binary is built here; the Windows .exe is built on Windows")
    out = subprocess.run([str(REPO / "scripts" / "build_agent_binary.sh")], capture_output=True, text=True,
                         timeout=1200, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert BINARY.is_file()
    return BINARY


def test_binary_runs_once_against_a_server_with_no_python_around(binary, tmp_path):
    receiver = Receiver()
    try:
        out = subprocess.run([str(binary), "--server", receiver.url, "--token", TOKEN, "--state-dir",
                              str(tmp_path / "s"), "--once"], env={}, capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        [report] = receiver.reports
    finally:
        receiver.stop()
    assert report["machine_id"] == (tmp_path / "s" / "machine_id").read_text().strip()
    assert {"cpu.percent", "memory.percent", "disk.percent"} <= set(report["metrics"])  # plugins found
    status = subprocess.run([str(binary), "--state-dir", str(tmp_path / "s"), "status"], env={},
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "last delivery  20" in status.stdout


def test_binary_leaves_the_server_out(binary):
    listing = subprocess.run([str(REPO / ".build-venv" / "bin" / "pyi-archive_viewer"), "-l", "-r", str(binary)],
                             capture_output=True, text=True, timeout=120)
    if listing.returncode != 0:
        pytest.skip(f"pyi-archive_viewer could not list the archive: {listing.stderr[:200]}")
    names = listing.stdout
    assert "dashfleet_agent" in names and "dashfleet_plugins.collectors.cpu" in names
    assert "flask" not in names and "dashfleet_web" not in names and "psycopg" not in names


def test_binary_reads_the_enrolled_config_beside_itself_from_any_working_folder(binary, tmp_path):
    import shutil

    receiver = Receiver()
    try:
        home, elsewhere = tmp_path / "agent", tmp_path / "elsewhere"
        home.mkdir()
        elsewhere.mkdir()
        copy = home / "dashfleet-agent"
        shutil.copy2(binary, copy)
        (home / "dashfleet-agent.toml").write_text(f'[agent]\nserver = "{receiver.url}"\ntoken = "{TOKEN}"\n')
        out = subprocess.run([str(copy), "--once"], env={"DASHFLEET_AGENT_STATE_DIR": str(tmp_path / "s")},
                             capture_output=True, text=True, timeout=120, cwd=elsewhere)
        assert out.returncode == 0, out.stderr
        assert len(receiver.reports) == 1
    finally:
        receiver.stop()
