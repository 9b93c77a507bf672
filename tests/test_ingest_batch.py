"""The batched ingest path: a request's reports stored set-wise in one transaction, and alerting
reading the state of a whole batch at once, must behave exactly like one report at a time.
Real SQLite files (and PostgreSQL for the storage part) through `Fleet.ingest`."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import pytest

from dashfleet_core.alerting import STATE, Alerting
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Report, utcnow
from dashfleet_core.storage import open_storage


@pytest.fixture
def two_fleets(settings_factory, tmp_path):
    fleets = [Fleet(settings_factory({"server.report_self": False,
                                      "storage.url": f"sqlite:///{tmp_path}/{name}.db"}))
              for name in ("batched", "one_by_one")]
    try:
        yield fleets
    finally:
        for fleet in fleets:
            fleet.stop()


def stream() -> list[Report]:
    """Two machines crossing the CPU thresholds (sustain 3), a repeat, a machine without seq."""
    t0 = utcnow() - timedelta(minutes=30)
    cpus = [10, 97, 98, 99, 99, 20, 15, 10, 96, 97, 98]
    reports = []
    for i, cpu in enumerate(cpus):
        for machine in ("web-01", "db-01"):
            reports.append(Report(machine_id=machine, hostname=f"{machine}.lan", seq=i + 1,
                                  collected_at=t0 + timedelta(seconds=10 * i),
                                  metrics={"cpu.percent": cpu if machine == "web-01" else 100 - cpu,
                                           "memory.percent": 40.0, "net.bytes_sent": float(i)},
                                  facts={"os.release": "22H2"}))
    reports.append(reports[3])  # the same (machine, seq) again: a duplicate within the batch
    reports.append(Report(machine_id="no-seq", metrics={"cpu.percent": 5}))
    reports.append(Report(machine_id="no-seq", metrics={"cpu.percent": 6}))
    return reports


def test_a_batch_is_stored_and_alerted_like_reports_one_by_one(two_fleets):
    batched, one_by_one = two_fleets
    reports = stream()
    got = batched.ingest(reports)
    expected = [one_by_one.ingest([r])[0] for r in reports]
    assert got == expected
    assert got.count(False) == 1 and got[-3] is False, "only the repeated (machine, seq) is a duplicate"
    assert batched.ingest(reports[:5]) == [False] * 5, "a second delivery stores nothing"

    def view(fleet: Fleet):
        storage = fleet.storage
        machines = {m.machine_id: (m.last_seq, m.metrics, m.facts, m.health.status, m.first_seen <= m.last_seen)
                    for m in storage.machines()}
        samples = sorted((s.report.machine_id, s.report.seq, s.report.metrics["cpu.percent"],
                          s.health.status, tuple(sorted(s.report.metrics)), tuple(s.report.facts.items()))
                         for s in storage.iter_reports())
        events = [(e.machine_id, e.kind, e.previous, e.status) for e in reversed(storage.events(limit=100))]
        states = storage.kv_list(STATE)
        return machines, samples, events, states

    assert view(batched) == view(one_by_one)
    machines, _, events, states = view(batched)
    assert ("web-01", "status_changed", "ok", "critical") in events
    assert ("web-01", "status_changed", "critical", "ok") in events
    assert states["web-01"]["status"] == "critical", "web-01 ends on three critical samples"


def test_alerting_reads_a_batch_state_once(two_fleets, monkeypatch):
    fleet = two_fleets[0]
    storage = fleet.storage
    reads = {"kv_get": 0, "kv_get_many": 0}
    for name in reads:
        real = getattr(storage, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            reads[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(storage, name, counted)
    reports = [Report(machine_id=f"pc-{i}", seq=1, metrics={"cpu.percent": 10}) for i in range(50)]
    assert fleet.ingest(reports) == [True] * 50
    assert reads == {"kv_get": 0, "kv_get_many": 1}
    assert fleet.ingest([Report(machine_id="pc-0", seq=2, metrics={"cpu.percent": 10})]) == [True]
    assert reads == {"kv_get": 1, "kv_get_many": 1}, "a single report reads its one state"
    alerting = fleet.alerting
    assert isinstance(alerting, Alerting) and getattr(alerting._batch, "states", None) is None


@pytest.fixture(scope="module")
def pm():
    from dashfleet_core.config import Settings
    from dashfleet_core.plugins import make_plugin_manager

    return make_plugin_manager(Settings())


@pytest.fixture(params=["sqlite", "json", "postgresql"])
def store(request, tmp_path, settings_factory, pm):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    elif request.param == "json":
        url = f"json:///{tmp_path}/state.json"
    else:
        url = f"sqlite:///{tmp_path}/kv.db"
    storage = open_storage(settings_factory(), pm, url)
    try:
        yield storage
    finally:
        for key in ("a", "b", "gone"):
            storage.kv_delete("batch_test", key)
        storage.close()


def test_kv_get_many_leaves_out_absent_and_expired_keys(store):
    store.kv_put("batch_test", "a", {"n": 1})
    store.kv_put("batch_test", "b", {"n": 2}, expires_at=utcnow() + timedelta(hours=1))
    store.kv_put("batch_test", "gone", {"n": 3}, expires_at=utcnow() - timedelta(seconds=1))
    store.kv_put("other_namespace", "a", {"n": 9})
    got = store.kv_get_many("batch_test", ["a", "b", "gone", "missing", "a"])
    assert got == {"a": {"n": 1}, "b": {"n": 2}}
    assert store.kv_get_many("batch_test", []) == {}
    assert store.kv_get_many("batch_test", ["a"], org="another-org") == {}
    store.kv_delete("other_namespace", "a")


@pytest.mark.skipif(sys.platform == "win32", reason="the writer lock is a POSIX file lock")
def test_sqlite_writers_queue_on_the_writer_lock_file(tmp_path, settings_factory, pm):
    import fcntl
    import stat
    import threading

    storage = open_storage(settings_factory(), pm, f"sqlite:///{tmp_path}/w.db")
    try:
        lock_path = tmp_path / "w.db-writer"
        assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600, "created by the migration, owner only"
        fd = os.open(lock_path, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer holds its turn
        writer = threading.Thread(target=storage.kv_put, args=("batch_test", "a", {"n": 1}))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive(), "a write waits for its turn"
        assert storage.kv_get("batch_test", "a") is None, "reads do not wait, and see nothing yet"
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        writer.join(30)
        assert not writer.is_alive() and storage.kv_get("batch_test", "a") == {"n": 1}
    finally:
        storage.close()
