"""`dashfleet web --export-csv [PATH] --export-jsonl [PATH]`: this machine's snapshots written to
files in the background while the server serves, as the original dashboard's `main.py --web` did.

The exports belong to this process (its command line asked for them), not to the deployment: the
job runs on the fleet's engine whether or not this process runs the fleet's shared jobs. A file
that cannot be written (a full disk, a removed folder) is logged once, retried every snapshot and
its recovery logged: an export never stops the server.
"""

from __future__ import annotations

import logging
from typing import Any

from dashfleet_core.engine import Engine
from dashfleet_core.exporting import export_record

log = logging.getLogger(__name__)

JOB_ID = "local-export"
DEFAULT_INTERVAL = 2.0  # seconds: the original dashboard's and `dashfleet watch`'s period
DEFAULT_NAMES = {"csv": "metrics.csv", "jsonl": "metrics.jsonl"}  # the original's file names


class LocalExport:
    """Writes a snapshot of this machine to every opened export every `interval` seconds.

    `opened` are (path, sink, file) triples from `dashfleet_core.cli.watch.open_exports`; the
    caller closes them after the engine has stopped (`close_exports`)."""

    def __init__(self, engine: Engine, machine_id: str, opened: list[tuple[str, Any, Any]],
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.engine = engine
        self.machine_id = machine_id
        self.opened = opened
        self.interval = interval
        self.seq = 0
        self._failing: dict[str, str] = {}  # path -> the error last logged for it

    def start(self) -> None:
        """Schedule the snapshots (the first one now) and make sure the engine's scheduler runs."""
        if not self.opened:
            return
        self.engine.every(self.interval, self.write_once, job_id=JOB_ID)
        self.engine.start()

    def write_once(self) -> None:
        """One snapshot, written to each export; a failing file does not keep the others from
        theirs. Runs on the engine's scheduler, never two at once (its jobs' `max_instances`)."""
        self.seq += 1
        report, health = self.engine.cycle(self.machine_id, self.seq)
        record = export_record(report, health)
        for path, sink, _ in self.opened:
            try:
                sink.write(record)
            except OSError as exc:
                problem = exc.strerror or str(exc)
                if self._failing.get(path) != problem:
                    log.error("cannot write the export %s: %s; the server goes on and tries again "
                              "every %g s", path, problem, self.interval)
                    self._failing[path] = problem
                continue
            if self._failing.pop(path, None) is not None:
                log.warning("the export %s is written again", path)
