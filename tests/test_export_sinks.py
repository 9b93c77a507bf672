"""The CSV and JSONL exporters (plugins/exporters/csv_sink.py, jsonl_sink.py)."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import datetime, timezone

import pytest

from dashfleet_plugins.exporters.csv_sink import CsvSink
from dashfleet_plugins.exporters.jsonl_sink import JsonlSink

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def record(seq, metrics, facts=None, health=None):
    rec = {"machine_id": "pc-1", "seq": seq, "collected_at": WHEN, "metrics": metrics, "facts": facts or {}}
    if health is not None:
        rec["health"] = health
    return rec


def test_csv_header_then_one_row_per_record():
    out = io.StringIO()
    sink = CsvSink(out)
    health = {"score": 80, "status": "warn", "findings": [{"message": "cpu high"}, {"message": "disk"}]}
    sink.write(record(1, {"cpu.percent": 85.0, "a.b": 1.0}, {"os.name": "Linux"}, health))
    sink.write(record(2, {"cpu.percent": 10.0}, {}, health))
    sink.close()
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["machine_id", "seq", "collected_at", "health.score", "health.status",
                       "health.findings", "a.b", "cpu.percent", "fact:os.name"]
    assert rows[1] == ["pc-1", "1", "2026-01-02T03:04:05+00:00", "80", "warn", "cpu high; disk",
                       "1.0", "85.0", "Linux"]
    assert rows[2][6:] == ["", "10.0", ""]  # a metric missing from a later record is an empty cell


def test_csv_keeps_its_columns_and_says_what_it_left_out(caplog):
    out = io.StringIO()
    sink = CsvSink(out)
    sink.write(record(1, {"x": 1.0}))
    with caplog.at_level(logging.WARNING):
        sink.write(record(2, {"x": 2.0, "late.metric": 3.0}))
        sink.write(record(3, {"x": 2.0, "late.metric": 3.0}))
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert [len(r) for r in rows] == [4, 4, 4, 4]  # header + 3 rows, no column added
    assert caplog.text.count("late.metric") == 1  # logged once, not every row


def test_csv_neutralises_spreadsheet_formulas_in_text():
    out = io.StringIO()
    CsvSink(out).write(record(1, {"n": -5.0}, {"evil": "=HYPERLINK(\"http://x\")", "ok": "plain"}))
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    cells = dict(zip(rows[0], rows[1]))
    assert cells["fact:evil"].startswith("'=") and cells["fact:ok"] == "plain"
    assert cells["n"] == "-5.0"  # numbers are left alone


def test_csv_appending_reuses_the_existing_header(tmp_path):
    path = tmp_path / "a.csv"
    with open(path, "w", newline="") as fh:
        CsvSink(fh).write(record(1, {"b": 1.0, "a": 2.0}))
    with open(path, "a", newline="") as fh, open(path, newline="") as existing:
        sink = CsvSink(fh)
        sink.resume(existing)
        sink.write(record(2, {"a": 5.0, "b": 6.0, "c": 7.0}))
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == 3  # one header: the file's own
    assert rows[0][3:] == ["a", "b"] and rows[2][3:] == ["5.0", "6.0"]


def test_csv_prepare_takes_the_columns_of_every_record():
    out = io.StringIO()
    sink = CsvSink(out)
    records = [record(1, {"a": 1.0}), record(2, {"b": 2.0}, {"os": "x"})]
    sink.prepare(iter(records))
    for rec in records:
        sink.write(rec)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["machine_id", "seq", "collected_at", "a", "b", "fact:os"]
    assert rows[2][3:] == ["", "2.0", "x"]  # the later record's metric is not left out


def test_jsonl_one_object_per_line():
    out = io.StringIO()
    sink = JsonlSink(out)
    sink.write(record(1, {"cpu.percent": 1.5}, {"f": "ü"}))
    sink.write(record(2, {}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {"machine_id": "pc-1", "seq": 1, "collected_at": "2026-01-02T03:04:05+00:00",
                     "metrics": {"cpu.percent": 1.5}, "facts": {"f": "ü"}}


def test_jsonl_refuses_values_json_cannot_hold():
    with pytest.raises(ValueError):
        JsonlSink(io.StringIO()).write(record(1, {"x": float("nan")}))
