"""The `dashfleet` command line, run as a real process: status, watch with exports, plugins,
config check, exit code 2 on bad config, and no Flask in the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import dashfleet_cmd

CORE = {"cpu.percent", "memory.percent", "disk.percent", "uptime.seconds"}


def run(args, cwd, env=None, timeout=120):
    environ = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    environ.update(env or {})
    return subprocess.run(dashfleet_cmd() + list(args), cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def write_config(tmp_path, text, name="dashfleet.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_status_json_prints_one_object_with_the_core_metrics_and_health(tmp_path):
    r = run(["status", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout holds only the JSON object
    assert set(doc) == {"machine_id", "hostname", "collected_at", "metrics", "facts", "health"}
    assert CORE <= set(doc["metrics"])
    assert all(isinstance(v, (int, float)) for v in doc["metrics"].values())
    assert set(doc["health"]) == {"score", "status", "findings"}
    assert doc["health"]["status"] in ("ok", "warn", "critical")


def test_status_text_is_readable(tmp_path):
    r = run(["status"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "health " in r.stdout and "/100" in r.stdout
    assert "memory.total" in r.stdout and "GiB" in r.stdout


def test_watch_writes_one_row_per_snapshot_to_csv_and_jsonl(tmp_path):
    r = run(["watch", "--count", "3", "--interval", "0.2", "--export-csv", "a.csv",
             "--export-jsonl", "a.jsonl"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"exporting CSV to {tmp_path / 'a.csv'}" in r.stderr
    with open(tmp_path / "a.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header, data = rows[0], rows[1:]
    assert len(data) == 3
    assert header[:3] == ["machine_id", "seq", "collected_at"]
    assert CORE <= set(header) and "health.score" in header
    assert [row[header.index("seq")] for row in data] == ["1", "2", "3"]
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 3
    assert [rec["seq"] for rec in records] == [1, 2, 3]
    assert CORE <= set(records[0]["metrics"]) and "status" in records[0]["health"]
    assert r.stdout.count("health ") == 3  # three snapshots shown


def test_watch_appends_to_existing_exports_without_a_second_header(tmp_path):
    (tmp_path / "out").mkdir()
    for _ in range(2):
        r = run(["watch", "--count", "1", "--interval", "0.1", "--export-csv", "out/x.csv"], tmp_path)
        assert r.returncode == 0, r.stderr
    with open(tmp_path / "out" / "x.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [row[0] == "machine_id" for row in rows] == [True, False, False]


def test_watch_creates_the_missing_folders_of_an_export(tmp_path):
    r = run(["watch", "--count", "1", "--interval", "0.1", "--export-jsonl", "new/deeper/a.jsonl"], tmp_path)
    assert r.returncode == 0, r.stderr
    [line] = (tmp_path / "new" / "deeper" / "a.jsonl").read_text().splitlines()
    assert json.loads(line)["seq"] == 1


def test_watch_refuses_an_export_path_it_cannot_write(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    r = run(["watch", "--count", "1", "--export-jsonl", str(tmp_path / "a-file" / "a.jsonl")], tmp_path)
    assert r.returncode == 1
    assert f"cannot open export file {tmp_path / 'a-file' / 'a.jsonl'}" in r.stderr
    assert "choose a writable path" in r.stderr and "Traceback" not in r.stderr


def test_watch_validates_its_options(tmp_path):
    r = run(["watch", "--count", "0"], tmp_path)
    assert r.returncode == 2 and "--count" in r.stderr


def test_disabling_a_plugin_in_config_removes_its_metrics(tmp_path):
    write_config(tmp_path, """
        [plugins]
        disabled = ["memory", "processes"]
    """)
    r = run(["status", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)["metrics"]
    assert not [m for m in metrics if m.startswith(("memory.", "swap.", "processes."))]
    assert "cpu.percent" in metrics


def test_a_plugin_raising_in_collect_is_a_finding_and_others_stay(tmp_path):
    (tmp_path / "broken_plugin.py").write_text(textwrap.dedent("""
        from dashfleet_core import hookimpl

        class Broken:
            name = "broken"
            metrics = []
            def collect(self):
                raise RuntimeError("cannot read the sensor")

        @hookimpl
        def register_collectors(register):
            register(Broken())
    """))
    write_config(tmp_path, """
        [plugins]
        modules = ["broken_plugin"]
    """)
    r = run(["status", "--json"], tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # the log line went to stderr, stdout is still one JSON object
    assert CORE <= set(doc["metrics"])
    [finding] = [f for f in doc["health"]["findings"] if f["source"] == "broken"]
    assert "cannot read the sensor" in finding["message"] and finding["severity"] == "warn"
    assert "collector 'broken' failed" in r.stderr


@pytest.mark.parametrize("text, expected", [
    ('[health]\nsustain = "three"\n', ["[health.sustain]", "valid integer"]),
    ('[server]\nprot = 1\n', ["[server.prot]", "unknown key"]),
    ('[plugins]\ndisabled = ["cpux"]\n', ["[plugins] disabled", "'cpux'", "known plugins are"]),
    ('[health.thresholds."cpu.percent"]\nwarn = 1\n', ["[health.thresholds.cpu.percent.critical]",
                                                      "required key is missing"]),
    ('[plugins.processes]\ntop = -1\n', ["[plugins.processes.top]", "greater than or equal to 0"]),
])
@pytest.mark.parametrize("command", [["status", "--json"], ["config", "check"], ["watch", "--count", "1"]])
def test_bad_config_exits_2_naming_file_key_and_expectation(tmp_path, text, expected, command):
    path = write_config(tmp_path, text, "bad.toml")
    r = run(command + ["--config", str(path)], tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert str(path) in r.stderr
    for part in expected:
        assert part in r.stderr


def test_config_from_environment_variable_and_missing_file(tmp_path):
    path = write_config(tmp_path, "[health]\nsustain = 0\n", "env.toml")
    r = run(["config", "check"], tmp_path, env={"DASHFLEET_CONFIG": str(path)})
    assert r.returncode == 2 and str(path) in r.stderr and "[health.sustain]" in r.stderr
    r = run(["config", "check", "--config", "nope.toml"], tmp_path)
    assert r.returncode == 2 and "nope.toml: config file not found" in r.stderr


def test_config_check_ok(tmp_path):
    write_config(tmp_path, '[plugins]\nenabled = ["cpu", "memory"]\n')
    r = run(["config", "check"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "dashfleet.toml: ok; 2 collectors" in r.stdout


def test_plugins_lists_name_version_hooks_enabled(tmp_path):
    write_config(tmp_path, '[plugins]\ndisabled = ["battery"]\n')
    r = run(["plugins", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    infos = {p["name"]: p for p in json.loads(r.stdout)}
    assert infos["cpu"]["enabled"] and infos["cpu"]["hooks"] == ["register_collectors"]
    assert infos["cpu"]["version"]
    assert infos["battery"]["enabled"] is False
    text = run(["plugins"], tmp_path).stdout
    assert any(line.startswith("off battery") for line in text.splitlines())


def test_cli_never_imports_flask(tmp_path):
    code = textwrap.dedent("""
        import sys
        from dashfleet_core.cli import main
        main(["status", "--json"])
        main(["plugins", "--json"])
        print("FLASK" if "flask" in sys.modules else "NO-FLASK", file=sys.stderr)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env={k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"})
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "NO-FLASK"


def test_importing_dashfleet_core_imports_no_flask():
    code = ("import sys, dashfleet_core, dashfleet_core.engine, dashfleet_core.plugins, "
            "dashfleet_core.cli; print('flask' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_the_view_formats_values_for_people():
    from dashfleet_core.cli.watch import human, unit_of, unit_table
    from dashfleet_core.models import MetricInfo

    class C:
        metrics = [MetricInfo(name="cpu.core<N>.percent", unit="%"), MetricInfo(name="net.rx", unit="B/s")]

    table = unit_table([C()])
    assert unit_of("cpu.core12.percent", table) == "%" and unit_of("net.rx", table) == "B/s"
    assert unit_of("cpu.core1.extra", table) == ""
    assert human(12.345, "%") == "12.3 %"
    assert human(3 * 2**30, "bytes") == "3.0 GiB" and human(512, "bytes") == "512 B"
    assert human(2048, "B/s") == "2.0 KiB/s"
    assert human(3 * 3600 + 125, "s") == "3 h 2 min" and human(2 * 86400 + 7200, "s") == "2 d 2 h"
    assert human(0.5, "/s") == "0.5/s" and human(2.0, "") == "2"


def test_watch_redraws_in_place_on_a_terminal(tmp_path):
    import pty

    env = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(dashfleet_cmd() + ["watch", "--count", "2", "--interval", "0.1"],
                            cwd=tmp_path, env=env, stdin=child_fd, stdout=child_fd, stderr=child_fd)
    os.close(child_fd)
    out = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main_fd)
    assert proc.wait(60) == 0
    assert out.count(b"\x1b[H\x1b[2J") == 2  # the screen is cleared before each snapshot
    assert b"snapshot 2/2" in out


def test_watch_takes_its_snapshots_on_the_engine_s_scheduler(tmp_path, thread_probe):
    """No host keeps a loop of its own: each snapshot of `watch` is a job of the engine's
    APScheduler scheduler (a collector that records which thread called it says so)."""
    r = run(["watch", "--count", "3", "--interval", "0.1", "--plain", "--config", str(thread_probe)],
            tmp_path, {"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    threads = (tmp_path / "threads.txt").read_text().split()
    assert len(threads) == 3 and "MainThread" not in threads, threads
