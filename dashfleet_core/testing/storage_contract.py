"""The storage contract (dashfleet_core/storage.py), the same tests for every backend: a real SQLite
file, a real JSON file and a real PostgreSQL schema (the `pg_url` fixture)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest

from dashfleet_core.models import AuditEntry, Event, Finding, Health, Report
from dashfleet_core.storage import open_storage

BACKENDS = ["sqlite", "json", "postgresql"]
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
OK = Health(score=100, status="ok")


@pytest.fixture(scope="module")
def pm():
    from dashfleet_core.config import Settings
    from dashfleet_core.plugins import make_plugin_manager

    return make_plugin_manager(Settings())


@pytest.fixture(params=BACKENDS)
def storage_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/dashfleet.db"
    if request.param == "json":
        return f"json:///{tmp_path}/logs/fleet_state.json"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def open_url(pm, settings_factory):
    opened = []

    def open_(url):
        st = open_storage(settings_factory(), pm, url)
        opened.append(st)
        return st

    yield open_
    for st in opened:
        st.close()


@pytest.fixture
def store(storage_url, open_url):
    return open_url(storage_url)


def report(machine="pc-1", seq=1, at=T0, **metrics):
    return Report(machine_id=machine, hostname=f"{machine}.lan", os="Linux", agent_version="1.0",
                  seq=seq, collected_at=at, metrics=metrics or {"cpu.percent": 10.0},
                  facts={"os.release": "12"})


# --- reports and the fleet ---------------------------------------------------------------------


def test_save_report_stores_latest_state(store):
    warn = Health(score=70, status="warn", findings=[
        Finding(metric="disk.percent", value=91, threshold=90, severity="warn", message="disk 91%")])
    assert store.save_report(report(seq=1, **{"cpu.percent": 5.0, "disk.percent": 91.0, "gpu.temp": 60.5}),
                             warn, received_at=T0 + timedelta(seconds=1)) is True
    state = store.machine("pc-1")
    assert state.hostname == "pc-1.lan" and state.os == "Linux" and state.agent_version == "1.0"
    assert state.metrics == {"cpu.percent": 5.0, "disk.percent": 91.0, "gpu.temp": 60.5}
    assert state.facts == {"os.release": "12"}
    assert state.health == warn
    assert state.last_seq == 1 and state.collected_at == T0
    assert state.first_seen == state.last_seen == T0 + timedelta(seconds=1)
    assert [m.machine_id for m in store.machines()] == ["pc-1"]


def test_duplicate_seq_is_acknowledged_not_stored_twice(store):
    assert store.save_report(report(seq=7), OK) is True
    assert store.save_report(report(seq=7, **{"cpu.percent": 99.0}), OK) is False
    assert [s.metrics for s in store.history("pc-1")] == [{"cpu.percent": 10.0}]
    assert store.machine("pc-1").metrics == {"cpu.percent": 10.0}


def test_a_report_without_seq_is_stored_once_by_its_content(store):
    r = report(seq=None)
    assert store.save_report(r, OK) is True
    assert store.save_report(r, OK) is False, "the same content again is a duplicate"
    other = report(seq=None, at=T0 + timedelta(minutes=1))
    assert store.save_reports([(other, OK), (other, OK)]) == [True, False]
    assert len(store.history("pc-1")) == 2
    assert store.save_report(r, OK, org="acme") is True, "the same content in another org is another report"


def test_batch_save_reports_one_result_per_item(store):
    items = [(report(seq=1), OK), (report(seq=2, at=T0 + timedelta(minutes=1)), OK), (report(seq=1), OK)]
    assert store.save_reports(items) == [True, True, False]
    assert store.save_reports(items[:2]) == [False, False]
    assert store.machine("pc-1").last_seq == 2


def test_a_keyed_machine_s_state_follows_the_highest_seq_not_a_late_older_report(store):
    store.save_reports([(report(seq=2, at=T0 + timedelta(minutes=1), **{"cpu.percent": 20.0}), OK)],
                       received_at=T0 + timedelta(minutes=1), by_seq={"pc-1"})
    store.save_reports([(report(seq=1, at=T0, **{"cpu.percent": 5.0}), OK)],
                       received_at=T0 + timedelta(minutes=5), by_seq={"pc-1"})
    state = store.machine("pc-1")
    assert state.metrics == {"cpu.percent": 20.0} and state.last_seq == 2
    assert state.last_seen == T0 + timedelta(minutes=5)
    assert len(store.history("pc-1")) == 2


def test_a_keyed_machine_s_state_follows_seq_even_against_a_report_dated_ahead(store):
    ahead = report(seq=1, at=T0 + timedelta(minutes=9), **{"cpu.percent": 99.0})
    store.save_reports([(ahead, OK)], received_at=T0, by_seq={"pc-1"})
    store.save_reports([(report(seq=2, at=T0 + timedelta(seconds=10), **{"cpu.percent": 3.0}), OK)],
                       received_at=T0 + timedelta(seconds=10), by_seq={"pc-1"})
    state = store.machine("pc-1")
    assert (state.last_seq, state.metrics) == (2, {"cpu.percent": 3.0})


def test_a_machine_without_key_follows_the_report_that_arrived_last(store):
    """Its seq cannot be trusted (anyone with the fleet token can send any), nor its time: a
    report dated minutes ahead must not hold the row on its values."""
    ahead = report(seq=999, at=T0 + timedelta(minutes=9), **{"cpu.percent": 99.0})
    store.save_report(ahead, OK, received_at=T0)
    store.save_report(report(seq=2, at=T0 + timedelta(seconds=10), **{"cpu.percent": 3.0}), OK,
                      received_at=T0 + timedelta(seconds=10))
    state = store.machine("pc-1")
    assert (state.last_seq, state.metrics) == (2, {"cpu.percent": 3.0})
    store.save_reports([(report(seq=3, at=T0 + timedelta(seconds=20), **{"cpu.percent": 4.0}), OK),
                        (report(seq=4, at=T0 + timedelta(seconds=30), **{"cpu.percent": 5.0}), OK)])
    assert store.machine("pc-1").last_seq == 4, "within a batch, the last item is the last to arrive"


def test_stored_report_and_max_seq_tell_a_conflict_from_a_duplicate(store):
    sent = report(seq=7, **{"cpu.percent": 12.0})
    store.save_reports([(report(seq=3), OK), (sent, OK)])
    again = store.stored_report("pc-1", 7)
    assert again is not None and again.metrics == sent.metrics and again.hostname == sent.hostname
    assert abs((again.collected_at - sent.collected_at).total_seconds()) < 0.001
    assert store.stored_report("pc-1", 8) is None and store.stored_report("pc-1", 7, org="acme") is None
    assert store.max_seq("pc-1") == 7 and store.max_seq("pc-2") is None


def test_kv_add_creates_only_when_absent_or_expired(store):
    assert store.kv_add("machine_key", "pc-1", {"hash": "a"}) is True
    assert store.kv_add("machine_key", "pc-1", {"hash": "b"}) is False
    assert store.kv_get("machine_key", "pc-1") == {"hash": "a"}
    assert store.kv_add("machine_key", "pc-1", {"hash": "c"}, org="acme") is True
    store.kv_put("once", "t", {"v": 1}, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert store.kv_add("once", "t", {"v": 2}) is True and store.kv_get("once", "t") == {"v": 2}


def test_every_row_is_scoped_to_its_org(store):
    store.save_report(report(seq=1), OK, org="acme")
    assert store.machines() == [] and store.machine("pc-1") is None
    assert store.history("pc-1") == []
    assert [m.org for m in store.machines(org="acme")] == ["acme"]
    assert store.save_report(report(seq=1), OK) is True  # same (machine, seq), other org
    store.add_event(Event(org="acme", machine_id="pc-1", kind="silent"))
    assert store.events() == [] and len(store.events(org="acme")) == 1
    store.kv_put("maintenance", "*", {"until": "x"}, org="acme")
    assert store.kv_get("maintenance", "*") is None


def test_machines_seen_since(store):
    store.save_report(report("old", seq=1), OK, received_at=T0)
    store.save_report(report("new", seq=1), OK, received_at=T0 + timedelta(hours=1))
    assert [m.machine_id for m in store.machines(seen_since=T0 + timedelta(minutes=30))] == ["new"]
    assert {m.machine_id for m in store.machines()} == {"old", "new"}


def test_iter_reports_round_trips_everything_oldest_first(store):
    finding = Finding(metric="cpu.percent", value=95, threshold=90, severity="critical", message="hot")
    crit = Health(score=20, status="critical", findings=[finding])
    r2 = report(seq=2, at=T0 + timedelta(minutes=2), **{"cpu.percent": 95.0, "net.rx": 1e9})
    r1 = report(seq=1, at=T0, **{"memory.percent": 50.0})
    other = report("pc-2", seq=1, at=T0 + timedelta(minutes=1))
    store.save_report(r2, crit, received_at=T0 + timedelta(minutes=3))
    store.save_report(r1, OK, received_at=T0 + timedelta(minutes=3))
    store.save_report(other, OK, org="acme", received_at=T0 + timedelta(minutes=3))
    everything = list(store.iter_reports())
    assert [(s.org, s.report) for s in everything] == [("default", r1), ("acme", other), ("default", r2)]
    assert everything[2].health == crit and everything[2].received_at == T0 + timedelta(minutes=3)
    assert [s.report for s in store.iter_reports(org="default")] == [r1, r2]
    assert [s.report for s in store.iter_reports(machine_id="pc-2")] == [other]
    assert [s.report for s in store.iter_reports(since=T0 + timedelta(minutes=1),
                                                 until=T0 + timedelta(minutes=1))] == [other]
    assert store.count_reports() == 3 and store.count_reports(org="acme") == 1


def test_storage_survives_close_and_reopen(storage_url, open_url):
    first = open_url(storage_url)
    first.save_report(report(seq=1), OK)
    first.add_event(Event(machine_id="pc-1", kind="silent"))
    first.close()
    again = open_url(storage_url)
    assert again.machine("pc-1").last_seq == 1
    assert again.save_report(report(seq=1), OK) is False
    assert len(again.events()) == 1


# --- history -----------------------------------------------------------------------------------


def test_history_newest_first_with_range_and_limit(store):
    for i in range(10):
        store.save_report(report(seq=i, at=T0 + timedelta(minutes=i), **{"cpu.percent": float(i)}), OK)
    samples = store.history("pc-1")
    assert [s.seq for s in samples] == list(range(9, -1, -1))
    assert samples[0].metrics == {"cpu.percent": 9.0} and samples[0].score == 100
    assert samples[0].status == "ok" and samples[0].collected_at == T0 + timedelta(minutes=9)
    ranged = store.history("pc-1", since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5))
    assert [s.seq for s in ranged] == [5, 4, 3, 2]
    assert [s.seq for s in store.history("pc-1", limit=3)] == [9, 8, 7]


def test_history_buckets_min_avg_max_per_bucket(store):
    # 60 samples, one a minute, cpu = minute, custom metric = 2 * minute; 6 buckets of 10 minutes
    for i in range(60):
        store.save_report(report(seq=i, at=T0 + timedelta(minutes=i),
                                 **{"cpu.percent": float(i), "app.queue": 2.0 * i}), OK)
    buckets = store.history_buckets("pc-1", since=T0, until=T0 + timedelta(hours=1), points=6)
    assert len(buckets) == 6
    assert [b.count for b in buckets] == [10] * 6
    first, last = buckets[0], buckets[-1]
    assert first.start == T0 and first.end == T0 + timedelta(minutes=10)
    assert first.min == {"cpu.percent": 0.0, "app.queue": 0.0}
    assert first.avg == {"cpu.percent": 4.5, "app.queue": 9.0}
    assert first.max == {"cpu.percent": 9.0, "app.queue": 18.0}
    assert last.max["cpu.percent"] == 59.0
    only_cpu = store.history_buckets("pc-1", since=T0, until=T0 + timedelta(hours=1), points=6,
                                     metrics=["cpu.percent"])
    assert all(set(b.avg) == {"cpu.percent"} for b in only_cpu)
    only_queue = store.history_buckets("pc-1", since=T0, until=T0 + timedelta(hours=1), points=6,
                                       metrics=["app.queue"])
    assert all(set(b.max) == {"app.queue"} for b in only_queue) and only_queue[1].count == 10


def test_history_buckets_at_most_n_points_and_skips_empty_ones(store):
    for i in range(500):
        store.save_reports([(report(seq=i, at=T0 + timedelta(minutes=i)), OK)])
    buckets = store.history_buckets("pc-1", since=T0, until=T0 + timedelta(minutes=500), points=7)
    assert len(buckets) == 7 and sum(b.count for b in buckets) == 500
    # samples only in the first half: the empty second half has no buckets
    half = store.history_buckets("pc-1", since=T0, until=T0 + timedelta(minutes=1000), points=10)
    assert len(half) == 5 and sum(b.count for b in half) == 500
    assert store.history_buckets("pc-1", since=T0, until=T0, points=10) == []


def _brute_force_buckets(samples, since, until, points, metrics):
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


def test_long_range_charts_match_a_brute_force_computation(store):
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
        store.save_reports(items[chunk:chunk + 200])
    samples = store.history("pc-1")
    names = ["cpu.percent", "memory.percent", "app.queue"]
    for since, until, points in [
        (T0 - timedelta(hours=1), T0 + timedelta(days=3, hours=1), 300),
        (T0 + timedelta(hours=5, minutes=7, seconds=3), T0 + timedelta(days=2, minutes=31), 37),
        (T0, T0 + timedelta(days=3), 7),
    ]:
        got = store.history_buckets("pc-1", since=since, until=until, points=points, metrics=names)
        want = _brute_force_buckets(samples, since, until, points, names)
        width = (until - since) / points
        assert {round((b.start - since) / width): b.count for b in got} == {i: n for i, (n, _) in want.items()}
        for b in got:
            _, stats = want[round((b.start - since) / width)]
            assert set(b.avg) == set(stats)
            for name, (lo, avg, hi) in stats.items():
                assert b.min[name] == lo and b.max[name] == hi
                assert b.avg[name] == pytest.approx(avg, rel=1e-9)
    # retention cuts a rollup slot in two: the charts still match what is left
    cut = T0 + timedelta(days=1, minutes=4, seconds=30)
    store.purge(cut)
    since, until = T0, T0 + timedelta(days=3)
    got = store.history_buckets("pc-1", since=since, until=until, points=72, metrics=names)
    want = _brute_force_buckets(store.history("pc-1"), since, until, 72, names)
    assert sum(b.count for b in got) == sum(n for n, _ in want.values())
    first = min(want)
    assert got[0].min == {k: v[0] for k, v in want[first][1].items()}


# --- events and audit --------------------------------------------------------------------------


def test_events_newest_first_and_the_notification_outbox(store):
    a = store.add_event(Event(machine_id="pc-1", kind="status_changed", at=T0, previous="ok",
                              status="warn", score=70, message="warn", details={"why": "disk"}))
    b = store.add_event(Event(machine_id="pc-2", kind="silent", at=T0 + timedelta(minutes=1)))
    c = store.add_event(Event(org="acme", machine_id="pc-9", kind="back", at=T0 + timedelta(minutes=2)))
    assert a.id is not None and len({a.id, b.id, c.id}) == 3
    assert [e.id for e in store.events()] == [b.id, a.id]
    assert store.events(machine_id="pc-1") == [a]
    assert [e.id for e in store.events(since=T0 + timedelta(seconds=30))] == [b.id]
    assert [e.id for e in store.events(limit=1)] == [b.id]
    assert [e.id for e in store.pending_notifications()] == [a.id, b.id, c.id]
    store.mark_notified([a.id, c.id])
    assert [e.id for e in store.pending_notifications()] == [b.id]
    store.mark_notified([])
    assert [e.id for e in store.pending_notifications(limit=5)] == [b.id]


def test_audit_rows_newest_first(store):
    first = store.add_audit(AuditEntry(actor="alice", action="flush_dns", params={"x": 1},
                                       outcome="ok", at=T0))
    second = store.add_audit(AuditEntry(actor="bob", action="reboot", outcome="refused",
                                        at=T0 + timedelta(seconds=1), details={"why": "token"}))
    store.add_audit(AuditEntry(org="acme", actor="eve", action="x", outcome="ok"))
    assert store.audit() == [second, first]
    assert first.id is not None and store.audit(limit=1) == [second]


# --- kv, counters, leases ----------------------------------------------------------------------


def test_kv_put_get_list_delete_and_expiry(store):
    now = datetime.now(timezone.utc)
    store.kv_put("maintenance", "pc-1", {"until": "2030-01-01T00:00:00Z", "reason": "patch", "by": "me"})
    store.kv_put("maintenance", "*", {"until": "x"}, expires_at=now + timedelta(hours=1))
    store.kv_put("maintenance", "gone", {"until": "y"}, expires_at=now - timedelta(seconds=1))
    assert store.kv_get("maintenance", "pc-1")["reason"] == "patch"
    assert store.kv_get("maintenance", "gone") is None
    assert set(store.kv_list("maintenance")) == {"pc-1", "*"}
    store.kv_put("maintenance", "pc-1", {"until": "z"})
    assert store.kv_get("maintenance", "pc-1") == {"until": "z"}
    assert store.kv_delete("maintenance", "pc-1") is True
    assert store.kv_delete("maintenance", "pc-1") is False
    assert store.kv_delete("maintenance", "gone") is False  # expired: as if absent
    assert store.kv_get("other", "*") is None and store.kv_list("other") == {}


def test_incr_counts_and_restarts_after_expiry(store):
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    assert [store.incr("rate", "1.2.3.4", expires_at=soon) for _ in range(3)] == [1, 2, 3]
    assert store.incr("rate", "5.6.7.8", expires_at=soon) == 1
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    store.incr("rate", "old", expires_at=past)
    assert store.incr("rate", "old", expires_at=soon) == 1
    assert store.incr("rate", "old", expires_at=soon) == 2


def test_try_lease_one_holder_until_it_expires(store):
    assert store.try_lease("retention", "worker-1", 60) is True
    assert store.try_lease("retention", "worker-2", 60) is False
    assert store.try_lease("retention", "worker-1", 60) is True  # renew
    assert store.try_lease("retention", "worker-1", -1) is True  # renewed into the past: expired
    assert store.try_lease("retention", "worker-2", 60) is True


def test_purge_deletes_old_samples_and_events_only(store):
    for i in range(5):
        store.save_report(report(seq=i, at=T0 + timedelta(days=i)), OK)
    store.add_event(Event(machine_id="pc-1", kind="silent", at=T0))
    store.add_event(Event(machine_id="pc-1", kind="back", at=T0 + timedelta(days=4)))
    store.add_audit(AuditEntry(actor="a", action="b", outcome="ok", at=T0))
    assert store.purge(T0 + timedelta(days=2)) == 3
    assert [s.seq for s in store.history("pc-1")] == [4, 3, 2]
    assert [e.kind for e in store.events()] == ["back"]
    assert len(store.audit()) == 1
    assert store.machine("pc-1").last_seq == 4
    assert store.save_report(report(seq=4, at=T0 + timedelta(days=4)), OK) is False


# --- concurrency: threads of one process, and several processes ---------------------------------


def test_threads_share_one_storage_safely(store):
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    results: list[int] = []
    errors: list[BaseException] = []

    def work(n):
        try:
            for i in range(20):
                store.save_report(report(f"t{n}", seq=i, at=T0 + timedelta(seconds=i)), OK)
                results.append(store.incr("rate", "shared", expires_at=soon))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == list(range(1, 81))
    assert len(store.machines()) == 4 and all(len(store.history(f"t{n}")) == 20 for n in range(4))


WORKER = r"""
import sys
from datetime import datetime, timedelta, timezone
from dashfleet_core.config import Settings
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage
from dashfleet_core.models import Report, Health
url, name = sys.argv[1], sys.argv[2]
settings = Settings()
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


def test_several_processes_share_idempotency_counters_tokens_and_leases(store, storage_url):
    for i in range(25):
        store.kv_put("tokens", f"t{i}", {"one": "time"})
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, storage_url, f"p{n}"],
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
    assert len(store.history("shared")) == 25


def test_a_process_forked_after_opening_uses_its_own_connections(store):
    """gunicorn --preload forks workers after the app (and its storage) was built."""
    import os

    assert store.save_report(report(seq=1), OK)
    pid = os.fork()
    if pid == 0:  # the child: save through the inherited object, then leave at once
        code = 1
        try:
            code = 0 if store.save_report(report(seq=2, at=T0 + timedelta(minutes=1)), OK) else 3
            code = code or (0 if store.kv_delete("x", "missing") is False else 4)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.save_report(report(seq=3, at=T0 + timedelta(minutes=2)), OK)
    assert store.save_report(report(seq=2), OK) is False
    assert [s.seq for s in store.history("pc-1")] == [3, 2, 1]


def test_postgresql_tables_live_in_the_schema_named_by_the_url(pg_url, pg_dsn, open_url):
    import psycopg

    open_url(pg_url).close()
    schema = pg_url.rsplit("%3D", 1)[1]
    with psycopg.connect(pg_dsn) as conn:
        found = conn.execute("SELECT table_schema FROM information_schema.tables "
                             "WHERE table_name = 'samples'").fetchall()
    assert found == [(schema,)]


def test_postgresql_without_a_server_is_a_clear_error(open_url):
    from tests.conftest import free_port

    from dashfleet_core.storage import StorageError

    with pytest.raises(StorageError) as err:
        open_url(f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nowhere?pool_max=2")
    assert "cannot connect to PostgreSQL" in str(err.value) and "secret" not in str(err.value)


def test_machines_read_again_shows_every_change_since_the_last_read(store):
    """The fleet list is read over and over (backends may reuse what did not change): a read after
    a new report of one machine and another org's save shows exactly the stored state."""
    store.save_report(report("a", seq=1), OK, received_at=T0)
    store.save_report(report("b", seq=1), OK, received_at=T0)
    first = {m.machine_id: m for m in store.machines()}
    assert set(first) == {"a", "b"}
    warn = Health(score=60, status="warn", findings=[
        Finding(metric="cpu.percent", value=97, threshold=90, severity="warn", message="cpu 97%")])
    store.save_report(report("a", seq=2, at=T0 + timedelta(minutes=1), **{"cpu.percent": 97.0}), warn,
                      received_at=T0 + timedelta(minutes=1))
    store.save_report(report("b", seq=2), OK, org="acme")
    again = {m.machine_id: m for m in store.machines()}
    assert again["a"].metrics == {"cpu.percent": 97.0} and again["a"].last_seq == 2
    assert again["a"].health == warn and again["a"].last_seen == T0 + timedelta(minutes=1)
    assert again["b"] == first["b"]
    assert [m.machine_id for m in store.machines(seen_since=T0 + timedelta(seconds=30))] == ["a"]
    assert [m.machine_id for m in store.machines(org="acme")] == ["b"]
    assert {m.machine_id for m in store.machines()} == {"a", "b"}


def test_machines_of_a_large_fleet_each_show_their_own_row(store):
    """A fleet larger than any chunk a backend reads or validates at once: every machine, each
    with its own values, in machine-id order; after one machine changes, only it differs."""
    n = 257
    store.save_reports([(report(f"pc-{i:03d}", seq=1, **{"cpu.percent": i / 4}), OK) for i in range(n)],
                       received_at=T0)
    listed = store.machines()
    assert [m.machine_id for m in listed] == [f"pc-{i:03d}" for i in range(n)]
    assert [m.metrics["cpu.percent"] for m in listed] == [i / 4 for i in range(n)]
    store.save_report(report("pc-200", seq=2, at=T0 + timedelta(minutes=1), **{"cpu.percent": 1.5}), OK,
                      received_at=T0 + timedelta(minutes=1))
    again = store.machines()
    changed = [(a.machine_id, b.metrics["cpu.percent"]) for a, b in zip(listed, again) if a != b]
    assert changed == [("pc-200", 1.5)]
