"""A test plugin for the serving tests: schedules a fleet job that appends this process's PID to
$DASHFLEET_PROBE_FILE, so a test can see which processes ran the job (once per deployment)."""

from __future__ import annotations

import os

from dashfleet_core import hookimpl


@hookimpl
def register_routes(app):
    path = os.environ["DASHFLEET_PROBE_FILE"]
    fleet = app.extensions["dashfleet"]

    def probe() -> None:
        with open(path, "a", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")

    fleet.schedule("probe", 0.2, probe)
