"""SQLite specifics: URL forms, WAL, schema migrations at start, refusing what it cannot use."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3

import pytest

from dashfleet_core.models import Health, Report
from dashfleet_core.storage import StorageError, open_storage
from dashfleet_plugins.storage._sql.schema import SQLITE, migrations

OK = Health(score=100, status="ok")


@pytest.fixture
def opener(settings_factory):
    from dashfleet_core.plugins import make_plugin_manager

    settings = settings_factory()
    pm = make_plugin_manager(settings)
    opened = []

    def open_(url):
        st = open_storage(settings, pm, url)
        opened.append(st)
        return st

    yield open_
    for st in opened:
        st.close()


def test_relative_and_absolute_urls_and_parent_folders(opener, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opener("sqlite:///data/dashfleet.db").save_report(Report(machine_id="a", seq=1), OK)
    assert (tmp_path / "data" / "dashfleet.db").exists()
    absolute = tmp_path / "deep" / "er" / "x.db"
    opener(f"sqlite:///{absolute}")  # sqlite:////abs/path: four slashes
    assert absolute.exists()


def test_default_url_is_data_dashfleet_db_under_the_working_folder(tmp_path, monkeypatch):
    from dashfleet_core.config import Settings
    from dashfleet_core.plugins import make_plugin_manager

    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.storage.url == "sqlite:///data/dashfleet.db"
    open_storage(settings, make_plugin_manager(settings)).close()
    assert (tmp_path / "data" / "dashfleet.db").exists()


def test_wal_mode_and_full_synchronous_by_default(opener, tmp_path):
    st = opener(f"sqlite:///{tmp_path}/x.db")
    conn = st._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    normal = opener(f"sqlite:///{tmp_path}/y.db?synchronous=normal")
    assert normal._connection().execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(StorageError, match="synchronous"):
        opener(f"sqlite:///{tmp_path}/z.db?synchronous=sometimes")


def test_an_older_schema_is_migrated_at_start_keeping_its_data(opener, tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE dashfleet_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO dashfleet_schema VALUES (1)")
    for statement in migrations(SQLITE)[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO details (digest, body) VALUES ('d', ?)",
                 ('{"hostname":"h","os":"","agent_version":"","facts":{},"extra_names":[]}',))
    conn.execute("INSERT INTO samples (org, machine_id, seq, collected_at, received_at, score, status, "
                 "cpu, detail_id) VALUES ('default', 'old-pc', 5, 1.7e9, 1.7e9, 90, 'ok', 12.5, 1)")
    conn.commit()
    conn.close()
    st = opener(f"sqlite:///{path}")
    assert st.schema_version() == len(migrations(SQLITE))
    assert [(s.seq, s.metrics) for s in st.history("old-pc")] == [(5, {"cpu.percent": 12.5})]
    indexes = {r[0] for r in st._connection().execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "samples_chart" in indexes and "samples_machine_time" not in indexes


def test_a_newer_schema_is_refused_with_advice(opener, tmp_path):
    path = tmp_path / "new.db"
    opener(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE dashfleet_schema SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="upgrade DashFleet"):
        opener(f"sqlite:///{path}")


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(opener, tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError) as err:
        opener(f"sqlite:///{path}")
    assert str(path) in str(err.value) and "restore a backup" in str(err.value)
    assert path.read_bytes() == b"this is not sqlite" * 100


def _open_at_once(path: str, barrier, results) -> None:
    from dashfleet_plugins.storage.sqlite import open_sqlite

    barrier.wait()
    try:
        st = open_sqlite(f"sqlite:///{path}")
        st.save_report(Report(machine_id=f"pc-{os.getpid()}", seq=1), OK)
        st.close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_database_at_once_all_start(tmp_path):
    """gunicorn starts its workers together on a fresh file: none may fail to boot on 'locked'."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(30):
        path = tmp_path / f"fresh{round_}.db"
        barrier, results = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(str(path), barrier, results)) for _ in range(8)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
        assert outcomes == ["ok"] * 8, outcomes
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM machines").fetchone()[0] == 8
        conn.close()
