"""The storage contract's test suite, shipped so that every backend runs the same tests.

DashFleet runs it against its JSON, SQLite and PostgreSQL backends (tests/test_storage_contract.py);
a third-party backend runs it from its own test module by subclassing `StorageContract` in a class
whose name starts with `Test` and giving a `storage_url` fixture, the URL of a fresh, empty storage
of that backend::

    import pytest
    from dashfleet_core.testing import StorageContract

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def storage_url(self, tmp_path):
            return f"mydb:///{tmp_path}/fleet.db"

Each test opens that URL through `open_storage` (as the server does), so the backend is found by
its URL scheme among the installed plugins (the `dashfleet` entry points); a backend that is not
installed is named in `storage_config = {"plugins": {"modules": ["my_backend"]}}`, a class
attribute shaped like dashfleet.toml. Two tests start other processes (three at once opening the
same URL, and a fork of the test process), because the server runs as several processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, ClassVar, Iterator

import pytest

from dashfleet_core.config import Settings, settings_from_dict
from dashfleet_core.models import AuditEntry, Event, Finding, Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import Storage, open_storage

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
OK = Health(score=100, status="ok")


def report(machine: str = "pc-1", seq: int | None = 1, at: datetime = T0, **metrics: float) -> Report:
    """A report of `machine` with these metrics (one cpu figure when none are given)."""
    return Report(machine_id=machine, hostname=f"{machine}.lan", os="Linux", agent_version="1.0",
                  seq=seq, collected_at=at, metrics=metrics or {"cpu.percent": 10.0},
                  facts={"os.release": "12"})


def _brute_force_buckets(samples, since, until, points, metrics):
    """What `history_buckets` must answer, computed from every sample in Python."""
    start, width = since.timestamp(), (until.timestamp() - since.timestamp()) / points
    acc = {}
    for s in samples:
        at = s.collected_at.timestamp()
        if not since.timestamp() <= at < until.timestamp():
            continue
        i = min(int((at - start) / width), points - 1)
        count, stats = acc.setdefault(i, [0, {}])
        acc[i][0] = count + 1
        for name, v in s.metrics.items():
            if name in metrics:
                stats.setdefault(name, []).append(v)
    return {i: (n, {k: (min(v), sum(v) / len(v), max(v)) for k, v in stats.items()})
            for i, (n, stats) in acc.items()}


# one process of the several-processes test; argv: url, lease holder, storage_config and sys.path as JSON
WORKER = r"""
import json
import sys
from datetime import datetime, timedelta, timezone
from dashfleet_core.config import Settings, settings_from_dict
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage
from dashfleet_core.models import Report, Health
url, name, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [p for p in json.loads(sys.argv[4]) if p not in sys.path]  # the test's own modules
settings = settings_from_dict(config, source="<storage contract>")
st = open_storage(settings, make_plugin_manager(settings), url)
soon = datetime.now(timezone.utc) + timedelta(hours=1)
out = []
for i in range(25):
    out.append("s%d" % st.save_report(Report(machine_id="shared", seq=i), Health(score=1, status="ok")))
    out.append("c%d" % st.incr("rate", "k", expires_at=soon))
    out.append("d%d" % st.kv_delete("tokens", "t%d" % i))
    out.append("l%d" % st.try_lease("job", name, 3600))
st.close()
print(" ".join(out))
"""


@lru_cache(maxsize=8)
def _settings_and_plugins(config: str) -> tuple[Settings, Any]:
    """Settings and a plugin manager per `storage_config` (as JSON), built once: building them
    for every test would cost more than many of the tests."""
    settings = settings_from_dict(json.loads(config), source="<storage contract>")
    return settings, make_plugin_manager(settings)


class StorageContract:
    """The storage contract (dashfleet_core.storage.Storage) as pytest tests; subclass it."""

    #: settings for opening the storage, shaped like dashfleet.toml (e.g. `[plugins] modules`)
    storage_config: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def storage_url(self) -> str:
        """The URL of a fresh, empty storage of the backend under test: override it."""
        pytest.fail(f"{type(self).__name__}: define a `storage_url` fixture returning the URL of a "
                    f"fresh, empty storage of your backend (see dashfleet_core.testing.storage_contract)",
                    pytrace=False)

    @pytest.fixture
    def open_storage_url(self) -> Iterator[Callable[[str], Storage]]:
        """Open a URL as the server does; every storage opened is closed after the test."""
        config = json.dumps(self.storage_config, sort_keys=True)
        settings, pm = _settings_and_plugins(config)
        opened: list[Storage] = []

        def open_(url: str) -> Storage:
            st = open_storage(settings, pm, url)
            opened.append(st)
            return st

        yield open_
        for st in opened:
            st.close()

    @pytest.fixture
    def storage(self, storage_url, open_storage_url) -> Storage:
        """The storage under test, opened on `storage_url`."""
        return open_storage_url(storage_url)

    # --- reports and the fleet --------------------------------------------------------------------

    def test_save_report_stores_latest_state(self, storage):
        warn = Health(score=70, status="warn", findings=[
            Finding(metric="disk.percent", value=91, threshold=90, severity="warn", message="disk 91%")])
        first = report(seq=1, **{"cpu.percent": 5.0, "disk.percent": 91.0, "gpu.temp": 60.5})
        assert storage.save_report(first, warn, received_at=T0 + timedelta(seconds=1)) is True
        state = storage.machine("pc-1")
        assert state.hostname == "pc-1.lan" and state.os == "Linux" and state.agent_version == "1.0"
        assert state.metrics == {"cpu.percent": 5.0, "disk.percent": 91.0, "gpu.temp": 60.5}
        assert state.facts == {"os.release": "12"}
        assert state.health == warn
        assert state.last_seq == 1 and state.collected_at == T0
        assert state.first_seen == state.last_seen == T0 + timedelta(seconds=1)
        assert [m.machine_id for m in storage.machines()] == ["pc-1"]

    def test_duplicate_seq_is_acknowledged_not_stored_twice(self, storage):
        assert storage.save_report(report(seq=7), OK) is True
        assert storage.save_report(report(seq=7, **{"cpu.percent": 99.0}), OK) is False
        assert [s.metrics for s in storage.history("pc-1")] == [{"cpu.percent": 10.0}]
        assert storage.machine("pc-1").metrics == {"cpu.percent": 10.0}

    def test_a_report_without_seq_is_stored_once_by_its_content(self, storage):
        r = report(seq=None)
        assert storage.save_report(r, OK) is True
        assert storage.save_report(r, OK) is False, "the same content again is a duplicate"
        other = report(seq=None, at=T0 + timedelta(minutes=1))
        assert storage.save_reports([(other, OK), (other, OK)]) == [True, False]
        assert len(storage.history("pc-1")) == 2
        assert storage.save_report(r, OK, org="acme") is True, \
            "the same content in another org is another report"

    def test_batch_save_reports_one_result_per_item(self, storage):
        items = [(report(seq=1), OK), (report(seq=2, at=T0 + timedelta(minutes=1)), OK), (report(seq=1), OK)]
        assert storage.save_reports(items) == [True, True, False]
        assert storage.save_reports(items[:2]) == [False, False]
        assert storage.machine("pc-1").last_seq == 2

    def test_a_keyed_machine_s_state_follows_the_highest_seq_not_a_late_older_report(self, storage):
        storage.save_reports([(report(seq=2, at=T0 + timedelta(minutes=1), **{"cpu.percent": 20.0}), OK)],
                           received_at=T0 + timedelta(minutes=1), by_seq={"pc-1"})
        storage.save_reports([(report(seq=1, at=T0, **{"cpu.percent": 5.0}), OK)],
                           received_at=T0 + timedelta(minutes=5), by_seq={"pc-1"})
        state = storage.machine("pc-1")
        assert state.metrics == {"cpu.percent": 20.0} and state.last_seq == 2
        assert state.last_seen == T0 + timedelta(minutes=5)
        assert len(storage.history("pc-1")) == 2

    def test_a_keyed_machine_s_state_follows_seq_even_against_a_report_dated_ahead(self, storage):
        ahead = report(seq=1, at=T0 + timedelta(minutes=9), **{"cpu.percent": 99.0})
        storage.save_reports([(ahead, OK)], received_at=T0, by_seq={"pc-1"})
        storage.save_reports([(report(seq=2, at=T0 + timedelta(seconds=10), **{"cpu.percent": 3.0}), OK)],
                           received_at=T0 + timedelta(seconds=10), by_seq={"pc-1"})
        state = storage.machine("pc-1")
        assert (state.last_seq, state.metrics) == (2, {"cpu.percent": 3.0})

    def test_a_machine_without_key_follows_the_report_that_arrived_last(self, storage):
        """Its seq cannot be trusted (anyone with the fleet token can send any), nor its time: a
        report dated minutes ahead must not hold the row on its values."""
        ahead = report(seq=999, at=T0 + timedelta(minutes=9), **{"cpu.percent": 99.0})
        storage.save_report(ahead, OK, received_at=T0)
        storage.save_report(report(seq=2, at=T0 + timedelta(seconds=10), **{"cpu.percent": 3.0}), OK,
                          received_at=T0 + timedelta(seconds=10))
        state = storage.machine("pc-1")
        assert (state.last_seq, state.metrics) == (2, {"cpu.percent": 3.0})
        storage.save_reports([(report(seq=3, at=T0 + timedelta(seconds=20), **{"cpu.percent": 4.0}), OK),
                            (report(seq=4, at=T0 + timedelta(seconds=30), **{"cpu.percent": 5.0}), OK)])
        assert storage.machine("pc-1").last_seq == 4, "within a batch, the last item is the last to arrive"

    def test_stored_report_and_max_seq_tell_a_conflict_from_a_duplicate(self, storage):
        sent = report(seq=7, **{"cpu.percent": 12.0})
        storage.save_reports([(report(seq=3), OK), (sent, OK)])
        again = storage.stored_report("pc-1", 7)
        assert again is not None and again.metrics == sent.metrics and again.hostname == sent.hostname
        assert abs((again.collected_at - sent.collected_at).total_seconds()) < 0.001
        assert storage.stored_report("pc-1", 8) is None
        assert storage.stored_report("pc-1", 7, org="acme") is None
        assert storage.max_seq("pc-1") == 7 and storage.max_seq("pc-2") is None

    def test_kv_add_creates_only_when_absent_or_expired(self, storage):
        assert storage.kv_add("machine_key", "pc-1", {"hash": "a"}) is True
        assert storage.kv_add("machine_key", "pc-1", {"hash": "b"}) is False
        assert storage.kv_get("machine_key", "pc-1") == {"hash": "a"}
        assert storage.kv_add("machine_key", "pc-1", {"hash": "c"}, org="acme") is True
        storage.kv_put("once", "t", {"v": 1}, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        assert storage.kv_add("once", "t", {"v": 2}) is True and storage.kv_get("once", "t") == {"v": 2}

    def test_every_row_is_scoped_to_its_org(self, storage):
        storage.save_report(report(seq=1), OK, org="acme")
        assert storage.machines() == [] and storage.machine("pc-1") is None
        assert storage.history("pc-1") == []
        assert [m.org for m in storage.machines(org="acme")] == ["acme"]
        assert storage.save_report(report(seq=1), OK) is True  # same (machine, seq), other org
        storage.add_event(Event(org="acme", machine_id="pc-1", kind="silent"))
        assert storage.events() == [] and len(storage.events(org="acme")) == 1
        storage.kv_put("maintenance", "*", {"until": "x"}, org="acme")
        assert storage.kv_get("maintenance", "*") is None

    def test_machines_seen_since(self, storage):
        storage.save_report(report("old", seq=1), OK, received_at=T0)
        storage.save_report(report("new", seq=1), OK, received_at=T0 + timedelta(hours=1))
        assert [m.machine_id for m in storage.machines(seen_since=T0 + timedelta(minutes=30))] == ["new"]
        assert {m.machine_id for m in storage.machines()} == {"old", "new"}

    def test_iter_reports_round_trips_everything_oldest_first(self, storage):
        finding = Finding(metric="cpu.percent", value=95, threshold=90, severity="critical", message="hot")
        crit = Health(score=20, status="critical", findings=[finding])
        r2 = report(seq=2, at=T0 + timedelta(minutes=2), **{"cpu.percent": 95.0, "net.rx": 1e9})
        r1 = report(seq=1, at=T0, **{"memory.percent": 50.0})
        other = report("pc-2", seq=1, at=T0 + timedelta(minutes=1))
        storage.save_report(r2, crit, received_at=T0 + timedelta(minutes=3))
        storage.save_report(r1, OK, received_at=T0 + timedelta(minutes=3))
        storage.save_report(other, OK, org="acme", received_at=T0 + timedelta(minutes=3))
        everything = list(storage.iter_reports())
        assert [(s.org, s.report) for s in everything] == [("default", r1), ("acme", other), ("default", r2)]
        assert everything[2].health == crit and everything[2].received_at == T0 + timedelta(minutes=3)
        assert [s.report for s in storage.iter_reports(org="default")] == [r1, r2]
        assert [s.report for s in storage.iter_reports(machine_id="pc-2")] == [other]
        assert [s.report for s in storage.iter_reports(since=T0 + timedelta(minutes=1),
                                                     until=T0 + timedelta(minutes=1))] == [other]
        assert storage.count_reports() == 3 and storage.count_reports(org="acme") == 1

    def test_storage_survives_close_and_reopen(self, storage_url, open_storage_url):
        first = open_storage_url(storage_url)
        first.save_report(report(seq=1), OK)
        first.add_event(Event(machine_id="pc-1", kind="silent"))
        first.close()
        again = open_storage_url(storage_url)
        assert again.machine("pc-1").last_seq == 1
        assert again.save_report(report(seq=1), OK) is False
        assert len(again.events()) == 1

    # --- history ----------------------------------------------------------------------------------

    def test_history_newest_first_with_range_and_limit(self, storage):
        for i in range(10):
            storage.save_report(report(seq=i, at=T0 + timedelta(minutes=i), **{"cpu.percent": float(i)}), OK)
        samples = storage.history("pc-1")
        assert [s.seq for s in samples] == list(range(9, -1, -1))
        assert samples[0].metrics == {"cpu.percent": 9.0} and samples[0].score == 100
        assert samples[0].status == "ok" and samples[0].collected_at == T0 + timedelta(minutes=9)
        ranged = storage.history("pc-1", since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5))
        assert [s.seq for s in ranged] == [5, 4, 3, 2]
        assert [s.seq for s in storage.history("pc-1", limit=3)] == [9, 8, 7]

    def test_history_buckets_min_avg_max_per_bucket(self, storage):
        # 60 samples, one a minute, cpu = minute, custom metric = 2 * minute; 6 buckets of 10 minutes
        for i in range(60):
            storage.save_report(report(seq=i, at=T0 + timedelta(minutes=i),
                                     **{"cpu.percent": float(i), "app.queue": 2.0 * i}), OK)
        buckets = storage.history_buckets("pc-1", since=T0, until=T0 + timedelta(hours=1), points=6)
        assert len(buckets) == 6
        assert [b.count for b in buckets] == [10] * 6
        first, last = buckets[0], buckets[-1]
        assert first.start == T0 and first.end == T0 + timedelta(minutes=10)
        assert first.min == {"cpu.percent": 0.0, "app.queue": 0.0}
        assert first.avg == {"cpu.percent": 4.5, "app.queue": 9.0}
        assert first.max == {"cpu.percent": 9.0, "app.queue": 18.0}
        assert last.max["cpu.percent"] == 59.0
        only_cpu = storage.history_buckets("pc-1", since=T0, until=T0 + timedelta(hours=1), points=6,
                                         metrics=["cpu.percent"])
        assert all(set(b.avg) == {"cpu.percent"} for b in only_cpu)
        only_queue = storage.history_buckets("pc-1", since=T0, until=T0 + timedelta(hours=1), points=6,
                                           metrics=["app.queue"])
        assert all(set(b.max) == {"app.queue"} for b in only_queue) and only_queue[1].count == 10

    def test_history_buckets_at_most_n_points_and_skips_empty_ones(self, storage):
        for i in range(500):
            storage.save_reports([(report(seq=i, at=T0 + timedelta(minutes=i)), OK)])
        buckets = storage.history_buckets("pc-1", since=T0, until=T0 + timedelta(minutes=500), points=7)
        assert len(buckets) == 7 and sum(b.count for b in buckets) == 500
        # samples only in the first half: the empty second half has no buckets
        half = storage.history_buckets("pc-1", since=T0, until=T0 + timedelta(minutes=1000), points=10)
        assert len(half) == 5 and sum(b.count for b in half) == 500
        assert storage.history_buckets("pc-1", since=T0, until=T0, points=10) == []

    def test_long_range_charts_match_a_brute_force_computation(self, storage):
        """Over a long range the SQL backends read 10-minute rollups plus the samples of the slots
        that straddle a bucket edge; the figures must be those of every sample."""
        import random

        rng = random.Random(7)
        base = T0 + timedelta(seconds=17)
        items = []
        for i in range(3 * 1440 // 3):  # 3 days, one report every 3 minutes, some without cpu
            metrics = {"memory.percent": round(rng.uniform(0, 100), 1), "app.queue": float(rng.randrange(50))}
            if i % 7:
                metrics["cpu.percent"] = round(rng.uniform(0, 100), 1)
            items.append((report(seq=i, at=base + timedelta(minutes=3 * i, seconds=rng.randrange(60)),
                                 **metrics), OK))
        for chunk in range(0, len(items), 200):
            storage.save_reports(items[chunk:chunk + 200])
        samples = storage.history("pc-1")
        names = ["cpu.percent", "memory.percent", "app.queue"]
        for since, until, points in [
            (T0 - timedelta(hours=1), T0 + timedelta(days=3, hours=1), 300),
            (T0 + timedelta(hours=5, minutes=7, seconds=3), T0 + timedelta(days=2, minutes=31), 37),
            (T0, T0 + timedelta(days=3), 7),
        ]:
            got = storage.history_buckets("pc-1", since=since, until=until, points=points, metrics=names)
            want = _brute_force_buckets(samples, since, until, points, names)
            width = (until - since) / points
            assert ({round((b.start - since) / width): b.count for b in got}
                    == {i: n for i, (n, _) in want.items()})
            for b in got:
                _, stats = want[round((b.start - since) / width)]
                assert set(b.avg) == set(stats)
                for name, (lo, avg, hi) in stats.items():
                    assert b.min[name] == lo and b.max[name] == hi
                    assert b.avg[name] == pytest.approx(avg, rel=1e-9)
        # retention cuts a rollup slot in two: the charts still match what is left
        cut = T0 + timedelta(days=1, minutes=4, seconds=30)
        storage.purge(cut)
        since, until = T0, T0 + timedelta(days=3)
        got = storage.history_buckets("pc-1", since=since, until=until, points=72, metrics=names)
        want = _brute_force_buckets(storage.history("pc-1"), since, until, 72, names)
        assert sum(b.count for b in got) == sum(n for n, _ in want.values())
        first = min(want)
        assert got[0].min == {k: v[0] for k, v in want[first][1].items()}

    # --- events and audit -------------------------------------------------------------------------

    def test_events_newest_first_and_the_notification_outbox(self, storage):
        a = storage.add_event(Event(machine_id="pc-1", kind="status_changed", at=T0, previous="ok",
                                  status="warn", score=70, message="warn", details={"why": "disk"}))
        b = storage.add_event(Event(machine_id="pc-2", kind="silent", at=T0 + timedelta(minutes=1)))
        c = storage.add_event(Event(org="acme", machine_id="pc-9", kind="back", at=T0 + timedelta(minutes=2)))
        assert a.id is not None and len({a.id, b.id, c.id}) == 3
        assert [e.id for e in storage.events()] == [b.id, a.id]
        assert storage.events(machine_id="pc-1") == [a]
        assert [e.id for e in storage.events(since=T0 + timedelta(seconds=30))] == [b.id]
        assert [e.id for e in storage.events(limit=1)] == [b.id]
        assert [e.id for e in storage.pending_notifications()] == [a.id, b.id, c.id]
        storage.mark_notified([a.id, c.id])
        assert [e.id for e in storage.pending_notifications()] == [b.id]
        storage.mark_notified([])
        assert [e.id for e in storage.pending_notifications(limit=5)] == [b.id]

    def test_audit_rows_newest_first(self, storage):
        first = storage.add_audit(AuditEntry(actor="alice", action="flush_dns", params={"x": 1},
                                           outcome="ok", at=T0))
        second = storage.add_audit(AuditEntry(actor="bob", action="reboot", outcome="refused",
                                            at=T0 + timedelta(seconds=1), details={"why": "token"}))
        storage.add_audit(AuditEntry(org="acme", actor="eve", action="x", outcome="ok"))
        assert storage.audit() == [second, first]
        assert first.id is not None and storage.audit(limit=1) == [second]

    # --- kv, counters, leases ---------------------------------------------------------------------

    def test_kv_put_get_list_delete_and_expiry(self, storage):
        now = datetime.now(timezone.utc)
        storage.kv_put("maintenance", "pc-1",
                       {"until": "2030-01-01T00:00:00Z", "reason": "patch", "by": "me"})
        storage.kv_put("maintenance", "*", {"until": "x"}, expires_at=now + timedelta(hours=1))
        storage.kv_put("maintenance", "gone", {"until": "y"}, expires_at=now - timedelta(seconds=1))
        assert storage.kv_get("maintenance", "pc-1")["reason"] == "patch"
        assert storage.kv_get("maintenance", "gone") is None
        assert set(storage.kv_list("maintenance")) == {"pc-1", "*"}
        storage.kv_put("maintenance", "pc-1", {"until": "z"})
        assert storage.kv_get("maintenance", "pc-1") == {"until": "z"}
        assert storage.kv_delete("maintenance", "pc-1") is True
        assert storage.kv_delete("maintenance", "pc-1") is False
        assert storage.kv_delete("maintenance", "gone") is False  # expired: as if absent
        assert storage.kv_get("other", "*") is None and storage.kv_list("other") == {}

    def test_incr_counts_and_restarts_after_expiry(self, storage):
        soon = datetime.now(timezone.utc) + timedelta(hours=1)
        assert [storage.incr("rate", "1.2.3.4", expires_at=soon) for _ in range(3)] == [1, 2, 3]
        assert storage.incr("rate", "5.6.7.8", expires_at=soon) == 1
        past = datetime.now(timezone.utc) - timedelta(seconds=1)
        storage.incr("rate", "old", expires_at=past)
        assert storage.incr("rate", "old", expires_at=soon) == 1
        assert storage.incr("rate", "old", expires_at=soon) == 2

    def test_try_lease_one_holder_until_it_expires(self, storage):
        assert storage.try_lease("retention", "worker-1", 60) is True
        assert storage.try_lease("retention", "worker-2", 60) is False
        assert storage.try_lease("retention", "worker-1", 60) is True  # renew
        assert storage.try_lease("retention", "worker-1", -1) is True  # renewed into the past: expired
        assert storage.try_lease("retention", "worker-2", 60) is True

    def test_purge_deletes_old_samples_and_events_only(self, storage):
        for i in range(5):
            storage.save_report(report(seq=i, at=T0 + timedelta(days=i)), OK)
        storage.add_event(Event(machine_id="pc-1", kind="silent", at=T0))
        storage.add_event(Event(machine_id="pc-1", kind="back", at=T0 + timedelta(days=4)))
        storage.add_audit(AuditEntry(actor="a", action="b", outcome="ok", at=T0))
        assert storage.purge(T0 + timedelta(days=2)) == 3
        assert [s.seq for s in storage.history("pc-1")] == [4, 3, 2]
        assert [e.kind for e in storage.events()] == ["back"]
        assert len(storage.audit()) == 1
        assert storage.machine("pc-1").last_seq == 4
        assert storage.save_report(report(seq=4, at=T0 + timedelta(days=4)), OK) is False

    # --- concurrency: threads of one process, and several processes -------------------------------

    def test_threads_share_one_storage_safely(self, storage):
        soon = datetime.now(timezone.utc) + timedelta(hours=1)
        results: list[int] = []
        errors: list[BaseException] = []

        def work(n):
            try:
                for i in range(20):
                    storage.save_report(report(f"t{n}", seq=i, at=T0 + timedelta(seconds=i)), OK)
                    results.append(storage.incr("rate", "shared", expires_at=soon))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(results) == list(range(1, 81))
        assert len(storage.machines()) == 4 and all(len(storage.history(f"t{n}")) == 20 for n in range(4))

    def test_several_processes_share_idempotency_counters_tokens_and_leases(self, storage, storage_url):
        for i in range(25):
            storage.kv_put("tokens", f"t{i}", {"one": "time"})
        args = [storage_url, json.dumps(self.storage_config), json.dumps(sys.path)]
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, args[0], f"p{n}", *args[1:]],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(3)]
        outputs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outputs.append(out.split())
        words = [w for out in outputs for w in out]
        assert sum(w == "s1" for w in words) == 25  # each seq stored by exactly one process
        assert sorted(int(w[1:]) for w in words if w[0] == "c") == list(range(1, 76))
        assert sum(w == "d1" for w in words) == 25  # each one-time token used once
        holders = [n for n, out in enumerate(outputs) if "l1" in out]
        assert len(holders) == 1  # the lease never changed hands while held
        assert len(storage.history("shared")) == 25

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
    def test_a_process_forked_after_opening_uses_its_own_connections(self, storage):
        """gunicorn --preload forks workers after the app (and its storage) was built."""
        assert storage.save_report(report(seq=1), OK)
        pid = os.fork()
        if pid == 0:  # the child: save through the inherited object, then leave at once
            code = 1
            try:
                code = 0 if storage.save_report(report(seq=2, at=T0 + timedelta(minutes=1)), OK) else 3
                code = code or (0 if storage.kv_delete("x", "missing") is False else 4)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert storage.save_report(report(seq=3, at=T0 + timedelta(minutes=2)), OK)
        assert storage.save_report(report(seq=2), OK) is False
        assert [s.seq for s in storage.history("pc-1")] == [3, 2, 1]

    def test_machines_read_again_shows_every_change_since_the_last_read(self, storage):
        """The fleet list is read over and over (backends may reuse what did not change): a read after
        a new report of one machine and another org's save shows exactly the stored state."""
        storage.save_report(report("a", seq=1), OK, received_at=T0)
        storage.save_report(report("b", seq=1), OK, received_at=T0)
        first = {m.machine_id: m for m in storage.machines()}
        assert set(first) == {"a", "b"}
        warn = Health(score=60, status="warn", findings=[
            Finding(metric="cpu.percent", value=97, threshold=90, severity="warn", message="cpu 97%")])
        storage.save_report(report("a", seq=2, at=T0 + timedelta(minutes=1), **{"cpu.percent": 97.0}), warn,
                          received_at=T0 + timedelta(minutes=1))
        storage.save_report(report("b", seq=2), OK, org="acme")
        again = {m.machine_id: m for m in storage.machines()}
        assert again["a"].metrics == {"cpu.percent": 97.0} and again["a"].last_seq == 2
        assert again["a"].health == warn and again["a"].last_seen == T0 + timedelta(minutes=1)
        assert again["b"] == first["b"]
        assert [m.machine_id for m in storage.machines(seen_since=T0 + timedelta(seconds=30))] == ["a"]
        assert [m.machine_id for m in storage.machines(org="acme")] == ["b"]
        assert {m.machine_id for m in storage.machines()} == {"a", "b"}

    def test_machines_of_a_large_fleet_each_show_their_own_row(self, storage):
        """A fleet larger than any chunk a backend reads or validates at once: every machine, each
        with its own values, in machine-id order; after one machine changes, only it differs."""
        n = 257
        storage.save_reports([(report(f"pc-{i:03d}", seq=1, **{"cpu.percent": i / 4}), OK) for i in range(n)],
                           received_at=T0)
        listed = storage.machines()
        assert [m.machine_id for m in listed] == [f"pc-{i:03d}" for i in range(n)]
        assert [m.metrics["cpu.percent"] for m in listed] == [i / 4 for i in range(n)]
        storage.save_report(report("pc-200", seq=2, at=T0 + timedelta(minutes=1), **{"cpu.percent": 1.5}), OK,
                          received_at=T0 + timedelta(minutes=1))
        again = storage.machines()
        changed = [(a.machine_id, b.metrics["cpu.percent"]) for a, b in zip(listed, again) if a != b]
        assert changed == [("pc-200", 1.5)]
