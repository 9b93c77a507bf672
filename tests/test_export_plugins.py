"""Exporters are ordinary plugins: `dashfleet watch --export FORMAT:PATH` and `dashfleet export
--format` take a third-party exporter exactly as they take `csv` and `jsonl`, each record is built
the same way (`collected_at` a UTC datetime), and the exporter reads its own settings.

Run as the installed command, with the test exporter loaded from `[plugins] modules`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from dashfleet_core.config import Settings
from dashfleet_core.models import Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage
from tests.conftest import dashfleet_cmd

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)

# A third-party exporter: one line per record, `<prefix> machine seq <type of collected_at> <iso>`.
PLUGIN = '''
from pydantic import BaseModel, ConfigDict
from dashfleet_core import hookimpl

PLUGIN_NAME = "lines_exporter"


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = "rec"


class Lines:
    def __init__(self, stream, options):
        self.stream, self.options = stream, options

    def write(self, record):
        when = record["collected_at"]
        self.stream.write(f"{self.options.prefix} {record['machine_id']} {record['seq']} "
                          f"{type(when).__name__} {when.isoformat()} {sorted(record)}\\n")
        self.stream.flush()

    def close(self):
        self.stream.write("closed\\n")
        self.stream.flush()


@hookimpl
def register_exporters(register, settings):
    options = settings.plugin_settings("lines_exporter", Options)
    register("lines", lambda stream: Lines(stream, options))
'''


BROKEN = '''
from dashfleet_core import hookimpl

PLUGIN_NAME = "broken_exporter"


@hookimpl
def register_exporters(register):
    raise RuntimeError("exporter backend missing")
'''


@pytest.fixture
def plugin_env(tmp_path):
    """A folder with the exporter module on PYTHONPATH and a config that loads it."""
    (tmp_path / "lines_exporter.py").write_text(PLUGIN)
    (tmp_path / "dashfleet.toml").write_text(textwrap.dedent("""
        [plugins]
        modules = ["lines_exporter"]

        [plugins.lines_exporter]
        prefix = "snap"
    """))
    env = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    return env


def run(args, cwd, env):
    return subprocess.run([*dashfleet_cmd(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_watch_exports_with_a_plugin_exporter_next_to_the_csv_alias(tmp_path, plugin_env):
    (tmp_path / "out").write_text("a file where the folder should be")
    r = run(["watch", "--count", "2", "--interval", "0.1", "--plain", "--export", "lines:out/a.txt",
             "--export-csv", "a.csv", "--export", "jsonl:a.jsonl"], tmp_path, plugin_env)
    assert r.returncode != 0 and "a.txt" in r.stderr  # out is a file, no folder: said, not a traceback
    assert "Traceback" not in r.stderr
    (tmp_path / "out").unlink()  # now out/ does not exist: it is created
    r = run(["watch", "--count", "2", "--interval", "0.1", "--plain", "--export", "lines:out/a.txt",
             "--export-csv", "a.csv", "--export", "jsonl:a.jsonl"], tmp_path, plugin_env)
    assert r.returncode == 0, r.stderr
    assert f"exporting LINES to {tmp_path / 'out' / 'a.txt'}" in r.stderr
    lines = (tmp_path / "out" / "a.txt").read_text().splitlines()
    assert lines[-1] == "closed" and len(lines) == 3
    words = lines[0].split(" ", 5)
    assert words[0] == "snap" and words[2] == "1" and words[3] == "datetime"  # its own settings
    assert datetime.fromisoformat(words[4]).utcoffset() == timedelta(0)
    assert words[5] == str(sorted(["machine_id", "seq", "collected_at", "metrics", "facts", "health"]))
    with open(tmp_path / "a.csv", newline="") as fh:
        assert len(list(csv.reader(fh))) == 3  # header + 2 rows
    jsonl = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [x["seq"] for x in jsonl] == [1, 2]
    assert jsonl[0]["collected_at"] == words[4]  # one record builder: the same time, the same text


def test_watch_appending_to_a_csv_keeps_its_header(tmp_path, plugin_env):
    for _ in range(2):
        r = run(["watch", "--count", "1", "--interval", "0.1", "--plain", "--export", "csv:a.csv"],
                tmp_path, plugin_env)
        assert r.returncode == 0, r.stderr
    with open(tmp_path / "a.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == 3 and rows[0][0] == "machine_id" and rows[2][0] != "machine_id"


@pytest.mark.parametrize("value, said", [
    ("lines", "is not FORMAT:PATH"),
    (":a.txt", "is not FORMAT:PATH"),
    ("nosuch:a.txt", "no exporter named 'nosuch' is enabled (enabled: csv, jsonl, lines)"),
])
def test_watch_refuses_a_bad_export_with_what_to_do(tmp_path, plugin_env, value, said):
    r = run(["watch", "--count", "1", "--plain", "--export", value], tmp_path, plugin_env)
    assert r.returncode == 2, r.stderr
    assert said in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "a.txt").exists()


def test_watch_refuses_the_same_file_twice(tmp_path, plugin_env):
    r = run(["watch", "--count", "1", "--plain", "--export", "lines:a.txt", "--export", "jsonl:./a.txt"],
            tmp_path, plugin_env)
    assert r.returncode == 2 and "named twice" in r.stderr, r.stderr


def test_export_command_takes_the_plugin_exporter(tmp_path, plugin_env):
    url = f"sqlite:///{tmp_path}/data/dashfleet.db"
    settings = Settings()
    with open_storage(settings, make_plugin_manager(settings), url) as st:
        st.save_report(Report(machine_id="pc-1", seq=1, collected_at=T0, metrics={"cpu.percent": 1.0}),
                       Health(score=100, status="ok"))
        st.save_report(Report(machine_id="pc-2", seq=7, collected_at=T0 + timedelta(minutes=1)),
                       Health(score=60, status="warn"))
    r = run(["export", "--format", "lines", "--storage", url], tmp_path, plugin_env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split(" ")[:5] for line in lines[:2]] == [
        ["snap", "pc-1", "1", "datetime", T0.isoformat()],
        ["snap", "pc-2", "7", "datetime", (T0 + timedelta(minutes=1)).isoformat()]]
    assert "received_at" in lines[0] and "org" in lines[0] and lines[2] == "closed"
    r = run(["export", "--format", "nosuch", "--storage", url], tmp_path, plugin_env)
    assert r.returncode == 2 and "no exporter named 'nosuch'" in r.stderr, r.stderr


def test_a_plugin_whose_register_exporters_raises_is_left_out(tmp_path, plugin_env):
    (tmp_path / "broken_exporter.py").write_text(BROKEN)
    (tmp_path / "dashfleet.toml").write_text('[plugins]\nmodules = ["lines_exporter", "broken_exporter"]\n')
    r = run(["watch", "--count", "1", "--plain", "--export", "lines:a.txt"], tmp_path, plugin_env)
    assert r.returncode == 0, r.stderr
    assert "'broken_exporter' failed in register_exporters: RuntimeError: exporter backend missing" in r.stderr
    assert (tmp_path / "a.txt").read_text().splitlines()[-1] == "closed"
