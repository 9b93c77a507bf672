"""The JSON state file backend: atomic rewrites, a broken file is never overwritten, the seed's
format is read and backed up before it is first rewritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from dashfleet_core.config import ConfigError
from dashfleet_core.models import Health, Report
from dashfleet_core.storage import StorageError, open_storage

OK = Health(score=100, status="ok")

SEED = {
    "machines": {
        "pc-01": {
            "latest": {"hostname": "pc-01", "os": "Windows 11", "timestamp": "2025-05-01T10:02:00Z",
                       "cpu": 30.0, "memory": 41.0, "disk": 70.5, "score": 80, "status": "warn"},
            "history": [
                {"timestamp": "2025-05-01T10:00:00Z", "cpu": 10.0, "memory": 40.0, "disk": 70.0,
                 "score": 100, "status": "ok"},
                {"timestamp": "2025-05-01T10:01:00Z", "cpu": 20.0, "memory": 40.5, "disk": 70.2,
                 "score": 100, "status": "ok"},
            ],
        },
        "srv-02": {
            "latest": {"hostname": "srv-02", "os": "Debian 12", "timestamp": 1746093600,
                       "metrics": {"cpu.percent": 5.0, "uptime.seconds": 3600}},
            "history": [],
        },
    }
}


@pytest.fixture
def open_json(settings_factory, tmp_path):
    from dashfleet_core.plugins import make_plugin_manager

    settings = settings_factory()
    pm = make_plugin_manager(settings)
    opened = []

    def open_(path):
        st = open_storage(settings, pm, f"json:///{path}")
        opened.append(st)
        return st

    yield open_
    for st in opened:
        st.close()


def test_state_file_is_written_atomically_as_one_json_document(open_json, tmp_path):
    path = tmp_path / "logs" / "fleet_state.json"
    st = open_json(path)
    st.save_report(Report(machine_id="pc-1", seq=1, metrics={"cpu.percent": 3.0}), OK)
    doc = json.loads(path.read_text())
    assert doc["format"] == "dashfleet-json"
    assert list(doc["orgs"]["default"]) == ["pc-1"]
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("content", [b'{"machines": {"pc-1": ', b"", b"[1, 2]", b'{"other": 1}'])
def test_unreadable_file_is_refused_kept_and_never_overwritten(open_json, tmp_path, content):
    path = tmp_path / "fleet_state.json"
    path.write_bytes(content)
    with pytest.raises(StorageError) as err:
        open_json(path)
    message = str(err.value)
    assert str(path) in message and "cannot be read" in message
    assert "To recover" in message and f"mv {path} {path}.bad" in message
    copies = [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    assert len(copies) == 1 and copies[0].read_bytes() == content and str(copies[0]) in message
    assert path.read_bytes() == content
    with pytest.raises(StorageError):  # a second start: still refused, still one copy
        open_json(path)
    assert len([p for p in tmp_path.iterdir() if ".unreadable-" in p.name]) == 1
    assert path.read_bytes() == content


def test_file_broken_while_running_is_not_overwritten(open_json, tmp_path):
    path = tmp_path / "fleet_state.json"
    st = open_json(path)
    st.save_report(Report(machine_id="pc-1", seq=1), OK)
    path.write_text('{"format": "dashfleet-json", "version": 1, "orgs": {')  # someone edits it badly
    with pytest.raises(StorageError):
        st.save_report(Report(machine_id="pc-1", seq=2), OK)
    assert path.read_text().endswith('"orgs": {')


def test_server_start_up_error_says_where_the_file_is(tmp_path):
    from tests.conftest import dashfleet_cmd

    path = tmp_path / "fleet_state.json"
    path.write_text("{not json")
    env = {**os.environ, "DASHFLEET_STORAGE": f"json:///{path}"}
    proc = subprocess.run([*dashfleet_cmd(), "export", "--format", "jsonl"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert str(path) in proc.stderr and "To recover" in proc.stderr
    assert path.read_text() == "{not json"


def test_seed_format_is_read_and_backed_up_before_the_first_rewrite(open_json, tmp_path):
    path = tmp_path / "fleet_state.json"
    path.write_text(json.dumps(SEED))
    st = open_json(path)
    pc = st.machine("pc-01")
    assert pc.hostname == "pc-01" and pc.os == "Windows 11"
    assert pc.metrics == {"cpu.percent": 30.0, "memory.percent": 41.0, "disk.percent": 70.5}
    assert pc.health.status == "warn" and pc.health.score == 80
    assert [s.metrics["cpu.percent"] for s in st.history("pc-01")] == [30.0, 20.0, 10.0]
    srv = st.machine("srv-02")
    assert srv.collected_at == datetime(2025, 5, 1, 10, 0, tzinfo=timezone.utc)
    assert srv.metrics == {"cpu.percent": 5.0, "uptime.seconds": 3600.0}
    st.save_report(Report(machine_id="pc-01", seq=1), OK)
    assert json.loads((tmp_path / "fleet_state.json.seed-backup").read_text()) == SEED
    assert json.loads(path.read_text())["format"] == "dashfleet-json"
    assert len(st.history("pc-01")) == 4


def test_two_processes_writing_one_file_lose_nothing(tmp_path):
    path = tmp_path / "fleet_state.json"
    script = (
        "import sys\n"
        "from dashfleet_core.config import Settings\n"
        "from dashfleet_core.plugins import make_plugin_manager\n"
        "from dashfleet_core.storage import open_storage\n"
        "from dashfleet_core.models import Report, Health\n"
        "s = Settings(); st = open_storage(s, make_plugin_manager(s), sys.argv[1])\n"
        "for i in range(30): st.save_report(Report(machine_id=sys.argv[2], seq=i), Health(score=1, status='ok'))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, f"json:///{path}", f"m{n}"]) for n in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    doc = json.loads(path.read_text())
    assert {m: len(e["history"]) for m, e in doc["orgs"]["default"].items()} == {"m0": 30, "m1": 30}


def test_unknown_scheme_lists_the_available_ones(settings_factory):
    from dashfleet_core.plugins import make_plugin_manager

    settings = settings_factory()
    with pytest.raises(ConfigError) as err:
        open_storage(settings, make_plugin_manager(settings), "mongodb://x/y")
    assert "json://" in str(err.value) and "sqlite://" in str(err.value) and "postgresql://" in str(err.value)


def test_the_server_refuses_to_start_on_an_unreadable_state_file(tmp_path):
    from tests.conftest import dashfleet_cmd

    path = tmp_path / "logs" / "fleet_state.json"
    path.parent.mkdir()
    path.write_text('{"machines": {"pc-1": {"latest": ')
    env = {**os.environ, "DASHFLEET_STORAGE": f"json:///{path}", "FLEET_TOKEN": "t" * 32}
    proc = subprocess.run([*dashfleet_cmd(), "web", "--port", "0"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("dashfleet: the JSON state file") and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "To recover" in proc.stderr
    assert path.read_text() == '{"machines": {"pc-1": {"latest": '
