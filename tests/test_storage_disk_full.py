"""A full disk loses nothing: a save that does not fit raises StorageFull, stores nothing of
itself (not even in memory: a retry is not taken for a duplicate), leaves what was stored intact,
and succeeds once there is room. On a real filesystem that fills up (see `small_disk`)."""

from __future__ import annotations

import sqlite3

import pytest

from dashfleet_core.config import Settings
from dashfleet_core.models import Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import StorageFull, open_storage

OK = Health(score=100, status="ok")


def _open(url: str):
    settings = Settings()
    return open_storage(settings, make_plugin_manager(settings), url)


def _batch(start: int, n: int = 50) -> list[tuple[Report, Health]]:
    return [(Report(machine_id=f"pc-{i % 7}", seq=start + i,
                    metrics={f"app.m{k}": float(start + i + k) for k in range(60)}), OK) for i in range(n)]


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_a_save_that_does_not_fit_stores_nothing_and_succeeds_once_there_is_room(small_disk, scheme):
    url = f"{scheme}:///{small_disk.path}/dashfleet.{'db' if scheme == 'sqlite' else 'json'}"
    store = _open(url)
    acked = []
    for start in range(0, 500, 50):  # what fits before the disk fills
        acked += [r.seq for r, _ in _batch(start)] if all(store.save_reports(_batch(start))) else []
    small_disk.fill(leave=4096)
    refused = None
    start = 500
    while refused is None and start < 50_000:
        try:
            assert all(store.save_reports(_batch(start)))
            acked += [r.seq for r, _ in _batch(start)]
            start += 50
        except StorageFull as exc:
            refused = exc
    assert refused is not None, "the disk never filled"
    assert "disk is full" in str(refused) and "Free space" in str(refused)
    stored = {s.seq for m in range(7) for s in store.history(f"pc-{m}", limit=100_000)}
    assert set(acked) <= stored and not stored & {r.seq for r, _ in _batch(start)}
    small_disk.free()
    assert store.save_reports(_batch(start)) == [True] * 50  # stored now, not taken for duplicates
    store.close()
    again = _open(url)
    stored = [s.seq for m in range(7) for s in again.history(f"pc-{m}", limit=100_000)]
    assert sorted(stored) == sorted(set(stored)) and set(acked) | {r.seq for r, _ in _batch(start)} <= set(stored)
    again.close()
    if scheme == "sqlite":
        with sqlite3.connect(small_disk.path / "dashfleet.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
