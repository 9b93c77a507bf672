"""The `example_actions` plugin: a third-party remediation action, `example_top_processes`.

It lists the processes using the most memory, a first look before deciding what to restart. It
changes nothing, so its dry run only says what it would list. Like every action it runs only
through DashFleet's action service (allow-list, strict parameters, time limit, audit).
"""

from __future__ import annotations

import psutil
from pydantic import Field

from dashfleet_core import hookimpl
from dashfleet_core.actions import ActionParams, BaseAction

PLUGIN_NAME = "example_actions"


class TopParams(ActionParams):
    count: int = Field(default=5, ge=1, le=50, description="How many processes to list")


class TopProcesses(BaseAction):
    name = "example_top_processes"
    description = "List the processes using the most memory (example third-party action)"
    platforms = ("windows", "linux", "macos")
    changes_machine = False
    Params = TopParams

    def run(self, params, context):
        if params.dry_run:
            return self.result(True, f"would list the {params.count} processes using the most memory", params)
        procs = []
        for proc in psutil.process_iter(["pid", "name", "memory_info"]):
            context.check_time()
            mem = proc.info.get("memory_info")
            if mem is not None:
                procs.append({"pid": proc.info["pid"], "name": proc.info.get("name") or "?", "rss": mem.rss})
        top = sorted(procs, key=lambda p: p["rss"], reverse=True)[:params.count]
        names = ", ".join(f"{p['name']} ({p['rss'] // 2**20} MiB)" for p in top)
        return self.result(True, f"top {len(top)} by memory: {names}", params, processes=top)


@hookimpl
def register_actions(register):
    register(TopProcesses())
