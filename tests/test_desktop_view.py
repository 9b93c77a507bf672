"""The desktop app without a display: what the window shows (values, status colour, findings,
chart points, translations, the agent's state), the CSV export, actions through the action service,
and the agent's secret-free status file. The real window is tested in test_desktop_window.py."""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import dashfleet_cmd, free_port
from dashfleet_core.config import HealthSettings, settings_from_dict
from dashfleet_core.exporting import export_record, exporters
from dashfleet_core.models import Finding, Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage
from dashfleet_desktop import selfservice, view
from dashfleet_desktop.export import CsvExport, ExportError, default_export_path
from dashfleet_desktop.i18n import LANGUAGES, Translator, system_language, tables

REPO = Path(__file__).resolve().parent.parent


def report(seq=1, cpu=12.5, ram=40.0, disk=70.0, uptime=3 * 3600 + 300, at=None, hostname="pc-1"):
    return Report(machine_id="pc-1", hostname=hostname, seq=seq, collected_at=at or datetime.now(timezone.utc),
                  metrics={"cpu.percent": cpu, "memory.percent": ram, "disk.percent": disk,
                           "uptime.seconds": uptime})


def cpu_finding(value=96.0, severity="critical", threshold=95.0):
    return Finding(metric="cpu.percent", value=value, threshold=threshold, severity=severity,
                   message=f"cpu.percent is {value:g}", source="thresholds")


# --- what the window shows ---------------------------------------------------------------------------


def test_a_reading_shows_the_four_values_score_status_and_colour():
    t = Translator("en")
    shown = view.reading(report(), Health(score=100, status="ok", findings=[]), "ok", t)
    assert shown.values == {"cpu": "12.5 %", "ram": "40.0 %", "disk": "70.0 %", "uptime": "3 h 5 min"}
    assert (shown.score, shown.status_text, shown.colour) == ("100/100", "OK", view.STATUS_COLOURS["ok"])
    assert shown.findings == []


def test_findings_are_translated_worst_first_and_other_messages_are_cleaned():
    odd = Finding(severity="warn", message="collector 'x' failed:\x1b[2J\u202eboom\nforged", source="x")
    health = Health(score=30, status="critical", findings=[odd, cpu_finding()])
    shown = view.reading(report(cpu=96), health, "critical", Translator("fr"))
    assert shown.values["cpu"] == "96,0 %"
    assert shown.status_text == "Critique" and shown.colour == view.STATUS_COLOURS["critical"]
    assert shown.findings[0] == ("critical", "Processeur à 96, au niveau critique 95 ou au-dessus")
    severity, text = shown.findings[1]
    assert severity == "warn" and "\x1b" not in text and "\u202e" not in text and "\n" not in text
    assert text.startswith("collector 'x' failed:") and "boom forged" in text


def test_a_below_threshold_finding_says_below():
    s = settings_from_dict({"health": {"thresholds": {"battery.percent": {"warn": 20, "critical": 10,
                                                                          "below": True}}}})
    f = Finding(metric="battery.percent", value=8, threshold=10, severity="critical", message="", source="thresholds")
    assert view.finding_text(f, Translator("en"), s.health.thresholds) == \
        "battery.percent at 8, at or below the critical level 10"


def test_the_status_colour_follows_sustain_like_the_alerts():
    tracker = view.StatusTracker(HealthSettings(sustain=2))
    hot = Health(score=50, status="critical", findings=[cpu_finding()])
    assert tracker.update(report(cpu=96), hot) == "ok"          # one spike: not yet
    assert tracker.update(report(cpu=96), hot) == "critical"    # held for two samples
    assert tracker.update(report(cpu=93), Health(score=80, status="warn", findings=[])) == "critical"  # hysteresis
    assert tracker.update(report(cpu=10), Health(score=100, status="ok", findings=[])) == "ok"


def test_durations_and_numbers_in_each_language():
    assert view.duration(2 * 86400 + 3 * 3600, Translator("ru")) == "2 д 3 ч"
    assert view.duration(65, Translator("en")) == "1 min 5 s"
    assert view.duration(9, Translator("fr")) == "9 s"
    assert view.percent(None, "en") == "–"
    assert view.number(3.25, "es", 2) == "3,25"


def test_history_keeps_the_span_and_the_chart_runs_left_to_right_within_the_canvas():
    history = view.History(span=60)
    t0 = 1_000_000.0
    for i in range(10):
        history.add(t0 + 10 * i, {"cpu.percent": 10 * i, "memory.percent": 50, "disk.percent": 120},
                    {"seq": i})
    assert [r["seq"] for r in history.export_records()] == [3, 4, 5, 6, 7, 8, 9]  # older than 60 s dropped
    lines = view.chart_lines(history.samples, history.span, 200, 100, pad=4)
    xs, ys = lines["cpu"][0::2], lines["cpu"][1::2]
    assert xs == sorted(xs) and xs[-1] == 196 and xs[0] >= 4
    assert ys == sorted(ys, reverse=True)                  # rising CPU goes up the canvas
    assert set(lines["disk"][1::2]) == {4}                 # 120 % is drawn at the top, not above it
    assert view.chart_lines([], 60, 200, 100) == {"cpu": [], "ram": [], "disk": []}
    short = view.chart_lines(list(history.samples)[:3], history.span, 200, 100, pad=4)["cpu"][0::2]
    assert short[0] == 4 and short[-1] == 196     # less than the span so far: it fills the width


# --- translations --------------------------------------------------------------------------------


def test_the_four_languages_have_the_same_keys_and_placeholders():
    t = tables()
    assert set(t) == set(LANGUAGES)
    for lang in LANGUAGES:
        assert set(t[lang]) == set(t["en"]), lang
        for key, text in t[lang].items():
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", t["en"][key])), (lang, key)


def _web_tables() -> dict[str, dict[str, str]]:
    js = (REPO / "web" / "static" / "i18n.js").read_text(encoding="utf-8")
    out = {}
    for lang, block in re.findall(r"^  (en|fr|es|ru): \{(.*?)^  \}", js, re.MULTILINE | re.DOTALL):
        out[lang] = {k: json.loads(f'"{v}"') for k, v in re.findall(r'"([^"]+)":\s*"((?:[^"\\]|\\.)*)"', block)}
    return out


def test_wordings_shared_with_the_web_pages_are_the_same():
    web = _web_tables()
    assert set(web) == set(LANGUAGES)
    for lang in LANGUAGES:
        shared = set(web[lang]) & set(tables()[lang])
        assert {"metric.cpu", "status.warn", "finding.above", "live.none"} <= shared
        for key in shared:
            assert tables()[lang][key] == web[lang][key], (lang, key)


def test_the_system_language_is_used_when_the_window_speaks_it():
    assert system_language({"LANG": "fr_FR.UTF-8"}) == "fr"
    assert system_language({"LC_ALL": "ru_RU.UTF-8", "LANG": "es_ES.UTF-8"}) == "ru"
    assert system_language({"LANG": "de_DE.UTF-8"}) == "en"
    with pytest.raises(ValueError, match="not one of en, fr, es, ru"):
        Translator("de")


def test_desktop_settings_are_validated_with_the_file_and_key():
    from dashfleet_core.config import ConfigError

    with pytest.raises(ConfigError, match=r"\[desktop.language\]"):
        settings_from_dict({"desktop": {"language": "de"}})
    with pytest.raises(ConfigError, match=r"\[desktop.interval\]"):
        settings_from_dict({"desktop": {"interval": 0}})
    assert settings_from_dict({}).desktop.interval == 2


# --- the local agent's state ---------------------------------------------------------------------


def test_agent_rows_show_delivery_spool_and_errors_cleaned():
    now = datetime.now(timezone.utc)
    doc = {"version": 1, "running": True, "updated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "interval": 10,
           "server": "https://fleet.example.org", "spool_depth": 4, "dead_lettered": 1, "spool_dropped": 0,
           "last_delivery": {"at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "count": 3},
           "last_error": {"at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "message": "refused\x1b[31m\nforged"}}
    rows = dict(view.agent_rows(doc, Translator("en"), now=now.timestamp()))
    assert rows["State"] == "running" and rows["Waiting in the spool"] == "4" and rows["Dead letters"] == "1"
    assert rows["Last delivery"].endswith("(3 report(s))")
    assert "\x1b" not in rows["Last error"] and "\n" not in rows["Last error"]
    stale = dict(view.agent_rows(doc, Translator("en"), now=now.timestamp() + 3600))
    assert "is the agent running?" in stale["Status written"]
    never = dict(view.agent_rows({"running": False}, Translator("es")))
    assert never["Último envío"] == "nunca" and never["Estado"] == "detenido"
    # when the window must look again without news: a running agent turns stale after
    # max(60 s, 3 intervals) of silence; a stopped one never does
    assert view.stale_at(doc) == int(now.timestamp()) + 60
    assert view.stale_at({**doc, "interval": 30}) == int(now.timestamp()) + 90
    assert view.stale_at({**doc, "running": False}) is None


def test_the_feed_reads_the_agent_status_file_only_when_it_changed(tmp_path):
    """Every collection looks at the file; a message reaches the window only when there is news
    (the agent replaces the file every interval, the window refreshes more often)."""
    from dashfleet_agent.status_file import read, write
    from dashfleet_core.engine import Engine
    from dashfleet_desktop.feed import Feed

    settings = settings_from_dict({"plugins": {"enabled": ["uptime"]}})
    path = tmp_path / "status.json"
    feed = Feed(Engine(settings, make_plugin_manager(settings, entrypoints=False)), 2, path, read)

    def agent_messages():
        feed._collect()
        got = [m for m in feed.drain() if m.kind == "agent"]
        assert len(got) <= 1
        return got

    first = agent_messages()
    assert first and first[0].value is None and first[0].error is None   # no agent: said once
    assert agent_messages() == []
    doc = {"version": 1, "running": True, "spool_depth": 3}
    write(path, doc)
    assert [m.value for m in agent_messages()] == [doc]
    assert agent_messages() == []
    write(path, {**doc, "spool_depth": 0})                                # the agent's next write
    assert [m.value["spool_depth"] for m in agent_messages()] == [0]
    path.write_text("not json")
    for _ in range(2):                                                    # an error is read again
        assert "not JSON" in str(agent_messages()[0].error)
    path.unlink()
    assert [m.value for m in agent_messages()] == [None]


def test_status_file_defaults_per_platform(tmp_path):
    from dashfleet_agent.paths import status_file_for

    assert status_file_for(None, tmp_path, platform="linux", is_root=True) == Path("/run/dashfleet-agent/status.json")
    assert status_file_for(None, tmp_path, platform="linux", is_root=False) == tmp_path / "status.json"
    assert status_file_for(None, tmp_path, platform="win32", env={"ProgramData": r"D:\PD"}) == \
        Path(r"D:\PD") / "DashFleet" / "status" / "status.json"
    assert status_file_for("~/x.json", tmp_path) == Path.home() / "x.json"


def test_status_file_reader_refuses_what_is_not_a_status_file(tmp_path):
    from dashfleet_agent.status_file import StatusFileError, public_url, read, write

    assert read(tmp_path / "none.json") is None
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(StatusFileError, match="not JSON"):
        read(tmp_path / "junk.json")
    (tmp_path / "big.json").write_text(" " * 70000)
    with pytest.raises(StatusFileError, match="larger than"):
        read(tmp_path / "big.json")
    write(tmp_path / "new" / "status.json", {"version": 1, "running": False})
    assert read(tmp_path / "new" / "status.json") == {"version": 1, "running": False}
    assert stat.S_IMODE((tmp_path / "new" / "status.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o755
    assert public_url("https://user:pw@fleet.example.org:8443/base/?token=x#y") == "https://fleet.example.org:8443/base/"


def test_the_agent_writes_a_secret_free_status_file(tmp_path):
    """A real `dashfleet agent --once` with nothing listening: the report stays spooled, and the
    status file says so, readable by all, without the token or the URL's password."""
    token = "tok-" + "s3cret" * 4
    port = free_port()
    status = tmp_path / "public" / "status.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_"))}
    done = subprocess.run(dashfleet_cmd() + ["agent", "--once", "--server", f"http://user:pw@127.0.0.1:{port}",
                                             "--token", token, "--state-dir", str(tmp_path / "state"),
                                             "--status-file", str(status)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 75, done.stderr
    raw = status.read_text()
    doc = json.loads(raw)
    assert token not in raw and "pw" not in raw and "machine.key" not in raw
    assert doc["running"] is False and doc["spool_depth"] == 1 and doc["last_delivery"] is None
    assert doc["server"] == f"http://127.0.0.1:{port}" and doc["last_error"]["message"]
    assert stat.S_IMODE(status.stat().st_mode) == 0o644


# --- CSV export ----------------------------------------------------------------------------------


def test_default_export_path_is_the_desktop_else_home(tmp_path):
    assert default_export_path(home=tmp_path) == tmp_path / "metrics_desktop.csv"
    (tmp_path / "Desktop").mkdir()
    assert default_export_path(home=tmp_path) == tmp_path / "Desktop" / "metrics_desktop.csv"
    assert default_export_path("~/exports/m.csv") == Path.home() / "exports" / "m.csv"


def _csv_factory():
    settings = settings_from_dict({})
    return exporters(make_plugin_manager(settings), settings)["csv"]


def test_export_appends_only_new_snapshots_and_keeps_the_file(tmp_path):
    exporter = CsvExport(_csv_factory())
    health = Health(score=100, status="ok", findings=[])
    records = [export_record(report(seq=i, hostname="=cmd|' /C calc'!A0"), health) for i in (1, 2, 3)]
    target = tmp_path / "new" / "folder" / "out.csv"
    assert exporter.write(target, records) == 3
    assert exporter.write(target, records) == 0                         # nothing new
    records.append(export_record(report(seq=4), health))
    assert exporter.write(target, records) == 1
    rows = list(csv.reader(target.read_text(encoding="utf-8").splitlines()))
    assert rows[0][:3] == ["machine_id", "seq", "collected_at"] and "cpu.percent" in rows[0]
    assert [r[1] for r in rows[1:]] == ["1", "2", "3", "4"]              # one header, no duplicate
    other = CsvExport(_csv_factory())                                    # a new session, same file
    assert other.write(target, records[:1]) == 1
    assert len(list(csv.reader(target.read_text(encoding="utf-8").splitlines()))) == 6     # appended, nothing lost


def test_export_to_an_unwritable_place_says_why(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="File exists|Not a directory"):
        CsvExport(_csv_factory()).write(tmp_path / "file" / "out.csv", [{"seq": 1, "metrics": {}}])


# --- actions -------------------------------------------------------------------------------------


def _action_settings(tmp_path, **actions):
    return settings_from_dict({"storage": {"url": f"sqlite:///{tmp_path / 'db.sqlite'}"},
                               "actions": actions})


def test_only_allowed_and_supported_actions_are_offered(tmp_path):
    settings = _action_settings(tmp_path, allowed=["cleanup_temp", "cleanup_outlook"])
    names = [e.name for e in selfservice.available(settings, make_plugin_manager(settings))]
    assert names == ["cleanup_temp"]  # cleanup_outlook runs on Windows and macOS only


def test_parameters_typed_in_fields_become_typed_values(tmp_path):
    settings = _action_settings(tmp_path)
    entry = next(e for e in selfservice.available(settings, make_plugin_manager(settings)) if e.name == "cleanup_temp")
    t = Translator("en")
    assert "dry_run" not in selfservice.fields(entry)
    assert selfservice.parse_params(entry, {"older_than_days": " 14 "}, t) == {"older_than_days": 14}
    assert selfservice.parse_params(entry, {"older_than_days": ""}, t) == {}
    with pytest.raises(selfservice.ParamError, match="older_than_days: a whole number is expected"):
        selfservice.parse_params(entry, {"older_than_days": "soon"}, t)


def test_a_dry_run_goes_through_the_action_service_and_is_audited(tmp_path):
    settings = _action_settings(tmp_path, allowed=["cleanup_temp"])
    pm = make_plugin_manager(settings)
    outcome = selfservice.run(settings, pm, "cleanup_temp", {"older_than_days": 30}, dry_run=True)
    assert outcome.ok and outcome.dry_run and not outcome.refused
    refused = selfservice.run(settings, pm, "flush_dns", {}, dry_run=True)
    assert refused.refused and "allow-list" in refused.summary
    with open_storage(settings, pm) as storage:
        rows = storage.audit(limit=10)
    assert [(r.action, r.outcome) for r in rows] == [("flush_dns", "refused"), ("cleanup_temp", "ok")]
    assert rows[1].actor == selfservice.desktop_actor() and rows[1].actor.startswith("desktop:")
    assert rows[1].params["dry_run"] is True and rows[1].params["older_than_days"] == 30
