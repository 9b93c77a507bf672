"""A report whose save returned survives `kill -9` of the process that saved it (SQLite)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from dashfleet_core.config import Settings
from dashfleet_core.models import Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

WRITER = r"""
import sys
from dashfleet_core.config import Settings
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage
from dashfleet_core.models import Report, Health
url, machine, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = Settings()
st = open_storage(settings, make_plugin_manager(settings), url)
ok = Health(score=100, status="ok")
seq = 0
while True:
    items = [(Report(machine_id=machine, seq=seq + i, metrics={"cpu.percent": float(i), "x.y": 1.5}), ok)
             for i in range(batch)]
    st.save_reports(items)
    for i in range(batch):  # acknowledged only after the save returned
        sys.stdout.write("%d\n" % (seq + i))
    sys.stdout.flush()
    seq += batch
"""


def _acked(proc, want: int) -> None:
    """Wait until the writer has acknowledged at least `want` reports."""
    deadline = time.monotonic() + 120
    seen = 0
    while seen < want and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += 1


def test_sigkill_loses_no_acknowledged_report_and_stores_none_twice(tmp_path):
    db = tmp_path / "data" / "dashfleet.db"
    url = f"sqlite:///{db}"
    open_storage(Settings(), make_plugin_manager(Settings()), url).close()  # schema in place
    writers = {
        "single": subprocess.Popen([sys.executable, "-c", WRITER, url, "single", "1"],
                                   stdout=subprocess.PIPE, text=True),
        "batched": subprocess.Popen([sys.executable, "-c", WRITER, url, "batched", "7"],
                                    stdout=subprocess.PIPE, text=True),
    }
    for proc in writers.values():
        _acked(proc, 150)
    for proc in writers.values():
        os.kill(proc.pid, signal.SIGKILL)
    acked: dict[str, list[int]] = {}
    for name, proc in writers.items():
        rest, _ = proc.communicate(timeout=30)  # acknowledgements still in the pipe
        assert proc.returncode == -signal.SIGKILL
        acked[name] = [int(x) for x in rest.split()]

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    settings = Settings()
    st = open_storage(settings, make_plugin_manager(settings), url)
    try:
        for name in writers:
            seqs = [s.seq for s in st.history(name)]
            assert len(seqs) == len(set(seqs))  # stored exactly once
            assert len(seqs) >= 150
            # every acknowledged seq is there; what was not acknowledged may or may not be
            assert set(range(150)) | set(acked[name]) <= set(seqs)
            assert sorted(seqs) == list(range(len(seqs)))  # no gaps: saves committed in order
            state = st.machine(name)
            assert state.last_seq == max(seqs)
            assert st.save_report(Report(machine_id=name, seq=0), Health(score=1, status="ok")) is False
    finally:
        st.close()
