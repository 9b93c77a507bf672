"""restart_spooler: restart the print spooler (Windows Spooler service, Linux CUPS via systemctl)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from dashfleet_core import hookimpl
from dashfleet_core.actions import ActionContext, ActionParams, BaseAction
from dashfleet_core.models import ActionResult


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cups_unit: str = "cups.service"


class Params(ActionParams):
    pass


class RestartSpooler(BaseAction):
    name = "restart_spooler"
    description = "Restart the print spooler (Windows Spooler service, CUPS on Linux)"
    platforms = ("windows", "linux")
    changes_machine = True
    Params = Params
    options: Options  # [plugins.restart_spooler], read in register_actions

    def run(self, params: Params, context: ActionContext) -> ActionResult:
        if context.platform == "windows":
            commands = [["net", "stop", "Spooler", "/y"], ["net", "start", "Spooler"]]
            tolerated = {0, 2}  # net stop answers 2 when the service was already stopped
        else:
            unit = self.options.cups_unit
            if not unit.endswith(".service") or not unit.replace("-", "").replace("_", "").replace(".", "").isalnum():
                return self.result(False, f"[plugins.restart_spooler] cups_unit {unit!r} is not a service "
                                          f"unit name like cups.service", params)
            commands = [["systemctl", "restart", unit]]
            tolerated = {0}
        shown = [" ".join(c) for c in commands]
        if params.dry_run:
            return self.result(True, f"would run: {'; '.join(shown)}", params, commands=shown)
        results = []
        for i, argv in enumerate(commands):
            done = context.run_command(argv)
            results.append(done.to_dict())
            last = i == len(commands) - 1
            if done.error or done.returncode not in (tolerated if not last else {0}):
                why = done.error or f"exit code {done.returncode}: {(done.stderr or done.stdout).strip()[:300]}"
                return self.result(False, f"{' '.join(argv)} failed ({why})", params, runs=results)
        return self.result(True, "print spooler restarted", params, runs=results)


@hookimpl
def register_actions(register, settings):
    register(RestartSpooler(settings.plugin_settings("restart_spooler", Options)))
