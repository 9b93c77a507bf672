"""flush_dns: empty the operating system's DNS cache.

Windows: `ipconfig /flushdns`. Linux: `resolvectl flush-caches`, where systemd-resolved runs (other
resolvers keep no system-wide cache DashFleet can flush). macOS: `dscacheutil -flushcache`, then
`killall -HUP mDNSResponder`.
"""

from __future__ import annotations

from dashfleet_core import hookimpl
from dashfleet_core.actions import ActionContext, ActionParams, BaseAction
from dashfleet_core.models import ActionResult

from ._common import running_processes

COMMANDS: dict[str, list[list[str]]] = {
    "windows": [["ipconfig", "/flushdns"]],
    "linux": [["resolvectl", "flush-caches"]],
    "macos": [["dscacheutil", "-flushcache"], ["killall", "-HUP", "mDNSResponder"]],
}


class Params(ActionParams):
    pass


class FlushDns(BaseAction):
    name = "flush_dns"
    description = "Flush the operating system's DNS cache"
    platforms = ("windows", "linux", "macos")
    changes_machine = True
    Params = Params

    def run(self, params: Params, context: ActionContext) -> ActionResult:
        commands = COMMANDS[context.platform]
        shown = [" ".join(c) for c in commands]
        # Linux truncates process names to 15 characters: "systemd-resolve" is the same daemon.
        if context.platform == "linux" and not running_processes(["systemd-resolved", "systemd-resolve"]):
            return self.result(False, "systemd-resolved is not running on this machine, so there is no "
                                      "system DNS cache to flush", params, commands=shown)
        if params.dry_run:
            return self.result(True, f"would run: {'; '.join(shown)}", params, commands=shown)
        results = []
        for argv in commands:
            done = context.run_command(argv)
            results.append(done.to_dict())
            if not done.ok:
                why = done.error or f"exit code {done.returncode}: {(done.stderr or done.stdout).strip()[:300]}"
                return self.result(False, f"{' '.join(argv)} failed ({why})", params, runs=results)
        return self.result(True, "DNS cache flushed", params, runs=results)


@hookimpl
def register_actions(register):
    register(FlushDns())
