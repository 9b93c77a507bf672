"""`dashfleet web --export-csv [PATH] --export-jsonl [PATH]`, as the original dashboard's
`main.py --web` did: a real server process writes this machine's snapshots to files while it
serves; a flag without a path writes to the Desktop (else the home folder); missing folders are
created; a file that cannot be written stops neither the start (it is refused first, with advice)
nor, once serving, the server."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import dashfleet_cmd, free_port
from test_web_process import OPERATOR, _config, _env, _wait_http, procs  # noqa: F401 - procs is a fixture

LINUX_DESKTOP = pytest.mark.skipif(sys.platform != "linux", reason="the Desktop is found the XDG way on Linux; "
                                   "Windows asks the known folder (platformdirs)")
CORE = {"cpu.percent", "memory.percent", "disk.percent", "uptime.seconds"}


class Lines:
    """The lines a process writes to a pipe, read as they come (so a test can wait for one)."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.lines if needle in line]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line with {needle!r} within {timeout} s:\n{''.join(self.lines)}")
                self._cond.wait(left)

    def text(self) -> str:
        self._thread.join(10)
        return "".join(self.lines)


def _serve(tmp_path: Path, args: list[str], env: dict | None = None) -> tuple[subprocess.Popen, int, Lines]:
    port = free_port()
    proc = subprocess.Popen(dashfleet_cmd() + ["web", "--port", str(port), "--config", str(_config(tmp_path))] + args,
                            cwd=tmp_path, env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err = Lines(proc.stderr)
    _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, port, err


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _wait_rows(path: Path, count: int, proc: subprocess.Popen, timeout: float = 30) -> list[list[str]]:
    """The CSV's rows once it has `count` data rows, checking all along that the server still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server stopped"
        rows = _rows(path) if path.exists() else []
        if len(rows) > count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{path} has {len(rows) - 1} data rows, not {count}, after {timeout} s")


def test_the_server_exports_this_machines_snapshots_while_it_serves(tmp_path, procs):
    target = tmp_path / "sub" / "dir" / "m.csv"  # no such folders yet: they are created
    jsonl = tmp_path / "other" / "m.jsonl"
    proc, port, err = _serve(tmp_path, ["--export-csv", str(target), "--export-jsonl", str(jsonl),
                                        "--export-interval", "0.2"])
    procs.append(proc)
    rows = _wait_rows(target, 3, proc)
    base = f"http://127.0.0.1:{port}"
    assert requests.get(base + "/api/stats", headers=OPERATOR, timeout=5).status_code == 200
    more = _wait_rows(target, len(rows), proc)  # still growing while it serves

    header, data = more[0], more[1:]
    assert header[:3] == ["machine_id", "seq", "collected_at"] and CORE <= set(header)
    assert "health.status" in header
    seqs = [int(row[header.index("seq")]) for row in data]
    assert seqs == list(range(1, len(data) + 1))
    stats = requests.get(base + "/api/stats", headers=OPERATOR, timeout=5).json()
    assert {row[0] for row in data} == {stats["machine_id"]}  # this machine, as the server names it
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert records and CORE <= set(records[0]["metrics"]) and records[0]["machine_id"] == stats["machine_id"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert f"exporting CSV to {target}" in err.text()
    assert _rows(target)[-1] and len(_rows(target)[-1]) == len(header)  # the last row is whole

    again, _, _ = _serve(tmp_path, ["--export-csv", str(target), "--export-interval", "0.2"])
    procs.append(again)
    after = _wait_rows(target, len(_rows(target)), again)
    again.send_signal(signal.SIGTERM)
    assert again.wait(15) == 0
    assert [row == header for row in after].count(True) == 1, "appended under the same header"


@LINUX_DESKTOP
def test_a_flag_without_a_path_writes_to_the_desktop_else_home(tmp_path, procs):
    home = tmp_path / "home"
    (home / "Desktop").mkdir(parents=True)
    env = _env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("XDG_DESKTOP_DIR", None)
    proc, _, err = _serve(tmp_path, ["--export-csv", "--export-interval", "0.2"], env)
    procs.append(proc)
    _wait_rows(home / "Desktop" / "metrics.csv", 1, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert f"exporting CSV to {home / 'Desktop' / 'metrics.csv'}" in err.text()

    (home / "Desktop").rename(home / "elsewhere")  # a server account has no Desktop: home
    proc, _, _ = _serve(tmp_path, ["--export-jsonl", "--export-csv", "--export-interval", "0.2"], env)
    procs.append(proc)
    _wait_rows(home / "metrics.csv", 1, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert json.loads((home / "metrics.jsonl").read_text().splitlines()[0])["seq"] == 1


def test_an_export_that_cannot_be_opened_stops_the_start_with_advice(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    port = free_port()
    done = subprocess.run(dashfleet_cmd() + ["web", "--port", str(port), "--config", str(_config(tmp_path)),
                                             "--export-csv", str(tmp_path / "a-file" / "m.csv")],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot open export file {tmp_path / 'a-file' / 'm.csv'}" in done.stderr
    assert "choose a writable path" in done.stderr and "Traceback" not in done.stderr


def test_a_full_disk_under_an_export_is_logged_once_and_the_server_goes_on(tmp_path, procs, small_disk):
    target = small_disk.path / "m.csv"
    proc, port, err = _serve(tmp_path, ["--export-csv", str(target), "--export-interval", "0.2"])
    procs.append(proc)
    _wait_rows(target, 1, proc)
    small_disk.fill()
    err.wait_for(f"cannot write the export {target}: No space left on device")
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    time.sleep(1)  # several more snapshots fail meanwhile: they are not logged again
    small_disk.free()
    err.wait_for(f"the export {target} is written again")
    rows = _wait_rows(target, len(_rows(target)), proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert err.text().count("cannot write the export") == 1
    assert len(rows[-1]) == len(rows[0])


@LINUX_DESKTOP
def test_the_desktop_is_the_one_the_user_dirs_name_in_the_users_language(tmp_path, monkeypatch):
    from dashfleet_core.exporting import default_export_path

    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "user-dirs.dirs").write_text('XDG_DESKTOP_DIR="$HOME/Bureau"\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("XDG_DESKTOP_DIR", raising=False)
    assert default_export_path("metrics.csv") == home / "metrics.csv"  # no such folder yet: home
    (home / "Bureau").mkdir()
    assert default_export_path("metrics.csv") == home / "Bureau" / "metrics.csv"
