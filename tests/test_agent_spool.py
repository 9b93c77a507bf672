"""The agent's building blocks on real files: spool (SQLite), machine id, state folder, backoff."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashfleet_agent.backoff import Backoff, parse_retry_after
from dashfleet_agent.identity import IdentityError, machine_id
from dashfleet_agent.paths import default_state_dir
from dashfleet_agent.spool import Spool, SpoolError, StateLock


def body(seq: int, dropped: int, size: int = 100) -> bytes:
    return json.dumps({"machine_id": "m1", "seq": seq, "spool_dropped": dropped, "pad": "x" * size}).encode()


def put(spool: Spool, size: int = 100) -> int:
    seq = spool.next_seq()
    spool.put(seq, lambda dropped: body(seq, dropped, size))
    return seq


def test_spool_keeps_order_and_survives_reopen(tmp_path):
    spool = Spool(tmp_path)
    seqs = [put(spool) for _ in range(5)]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    spool.close()
    again = Spool(tmp_path)
    assert [i.seq for i in again.peek(10)] == seqs
    assert again.next_seq() == seqs[-1] + 1  # seq survives a restart
    again.ack(seqs[:2])
    assert [i.seq for i in again.peek(10)] == seqs[2:]
    assert again.depth() == 3


def test_new_spool_starts_seq_above_earlier_runs(tmp_path):
    """A wiped state folder must not restart at 0, or the server would take new reports as duplicates."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Spool(tmp_path / "a").next_seq()
    second = Spool(tmp_path / "b").next_seq()
    assert first > 1_600_000_000_000 and second >= first


def test_spool_bytes_bound_drops_oldest_and_counts(tmp_path):
    spool = Spool(tmp_path, max_bytes=2000)
    seqs = [put(spool, size=300) for _ in range(12)]
    kept = [i.seq for i in spool.peek(100)]
    assert kept == seqs[-len(kept):]               # the newest survive, in order
    assert spool.bytes_queued() <= 2000
    assert spool.dropped_total == 12 - len(kept)
    newest = json.loads(spool.peek(100)[-1].body)
    assert newest["spool_dropped"] == spool.dropped_total  # the server is told the count


def test_spool_age_bound(tmp_path):
    spool = Spool(tmp_path, max_age=3600)
    old = put(spool)
    spool._db.execute("UPDATE queue SET enqueued_at = enqueued_at - 7200 WHERE seq = ?", (old,))
    new = put(spool)
    assert [i.seq for i in spool.peek(10)] == [new]
    assert spool.dropped_total == 1


def test_spool_refuses_a_seq_out_of_turn(tmp_path):
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError, match="not the next one"):
        spool.put(spool.next_seq() + 1, lambda d: b"{}")
    assert spool.depth() == 0


def test_failed_build_leaves_nothing_half_written(tmp_path):
    spool = Spool(tmp_path)
    seq = spool.next_seq()

    def boom(dropped):
        raise RuntimeError("collector exploded while serialising")

    with pytest.raises(RuntimeError):
        spool.put(seq, boom)
    assert spool.depth() == 0 and spool.next_seq() == seq


def test_dead_letter_file(tmp_path):
    spool = Spool(tmp_path)
    seq = put(spool)
    item = spool.peek(1)[0]
    spool.dead_letter(item, 422, "metrics.cpu.percent: not a number", ["metrics.cpu.percent"])
    line = json.loads((tmp_path / "dead-letter.jsonl").read_text().splitlines()[0])
    assert line["seq"] == seq and line["status"] == 422 and line["fields"] == ["metrics.cpu.percent"]
    assert line["report"]["seq"] == seq
    assert spool.get("dead_lettered_total") == 1


def test_state_lock_allows_one_agent(tmp_path):
    lock = StateLock(tmp_path)
    lock.acquire()
    code = ("import sys; from pathlib import Path; from dashfleet_agent.spool import StateLock, SpoolError\n"
            "try:\n    StateLock(Path(sys.argv[1])).acquire()\nexcept SpoolError as e:\n    print(e); sys.exit(3)\n")
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert other.returncode == 3 and "another dashfleet agent is running" in other.stdout
    lock.release()
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)]).returncode == 0


def test_machine_id_created_once_and_overridable(tmp_path):
    first = machine_id(tmp_path)
    assert machine_id(tmp_path) == first
    assert (tmp_path / "machine_id").read_text().strip() == first
    assert machine_id(tmp_path, "ws-042") == "ws-042"
    assert machine_id(tmp_path) == first  # the override is not written
    with pytest.raises(IdentityError, match="--machine-id"):
        machine_id(tmp_path, "bad id with spaces")
    (tmp_path / "machine_id").write_text("../etc\n")
    with pytest.raises(IdentityError, match="machine_id"):
        machine_id(tmp_path)


def test_default_state_dirs():
    assert default_state_dir({}, "linux", True) == Path("/var/lib/dashfleet-agent")
    assert default_state_dir({"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}, "linux", False) == \
        Path("/x/state/dashfleet-agent")
    assert default_state_dir({"HOME": "/home/u"}, "linux", False) == Path("/home/u/.local/state/dashfleet-agent")
    assert default_state_dir({"ProgramData": "D:\\PD"}, "win32") == Path("D:\\PD") / "DashFleet" / "agent"


def test_backoff_doubles_with_jitter_up_to_the_cap():
    b = Backoff(cap=30, rng=random.Random(7))
    nominal = []
    for _ in range(8):
        nominal.append(b.nominal())
        delay = b.next_delay()
        assert nominal[-1] / 2 <= delay <= nominal[-1]
    assert nominal == [1, 2, 4, 8, 16, 30, 30, 30]
    b.reset()
    assert b.nominal() == 1


def test_retry_after_forms():
    assert parse_retry_after("7") == 7
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    http_date = (now + timedelta(seconds=20)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now=now) == 20
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("999999") == 300  # a broken proxy cannot silence the agent for hours
